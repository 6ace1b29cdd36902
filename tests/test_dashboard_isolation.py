"""Tenant isolation and access control of the supervisors' dashboard and the JSON API.

A seeded call log gives each organisation its own calls, transfers and callback requests. A
supervisor of a municipality sees the calls its staff made, a supervisor of an agency the
calls its lines received, an admin everything: on every page, with every filter, in the
export and in the API; another organisation's object is a 404 and cannot be changed. Beside
that: every dashboard and API route refuses an anonymous visitor, every form carries a CSRF
token and every POST without a valid one is refused, a logged-out or foreign session cookie is
worthless, and API tokens are stored hashed, revocable and audited.

Everything runs against the real app and database (`app`, parametrised over SQLite and
PostgreSQL); rows are written with `dashboard_helpers.add_call`.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import itertools
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode, urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from callrouter import create_app
from callrouter.models import ApiToken, AuditEntry, Base, CallbackRequest, WebSession
from callrouter.privacy import mask

from dashboard_helpers import PASSWORD, add_call, csrf_of, login, make_token, make_user

TZ = ZoneInfo("Europe/Amsterdam")
COOKIE = "callrouter_session"
CALLERS = {"utrecht": "Gemeente Utrecht", "amsterdam": "Gemeente Amsterdam"}
ORGS = {"toeslagen": "Belastingdienst/Toeslagen", "svb": "SVB", "ind": "IND"}
LINES = {
    "toeslagen-algemeen": ("toeslagen", "toeslagen"),
    "svb-aow": ("svb", "AOW"),
    "svb-kinderbijslag": ("svb", "kinderbijslag"),
    "ind-verblijf": ("ind", "verblijfsvergunning"),
}
OPEN_STATES = {"pending", "dialling", "connecting", "connected"}
# Who looks: a municipality (A = utrecht, B = amsterdam), an agency (A = svb, B = ind), admin.
VIEWERS = {"utrecht": "utrecht", "svb": "svb", "admin": None}
OWN_PENDING = {"utrecht": "u_svb", "svb": "a_svb"}  # a pending request in each one's scope


# --------------------------------------------------------------------------- the call log


@dataclass
class Seed:
    """One seeded call (with its transfer, leg and maybe callback request)."""

    name: str
    caller: str
    target: str
    line: str
    outcome: str | None
    urgent: bool
    number: str
    callback: str | None  # the callback request's state, None: no request
    live: bool
    at: datetime
    ids: dict = field(default_factory=dict)

    @property
    def masked(self) -> str:
        return mask(self.number)

    @property
    def markers(self) -> list[str]:
        """What must never appear in an answer to someone outside this call's scope."""
        return [*self.ids.values(), "****" + self.number[-4:]]

    @property
    def day(self) -> date:
        return self.at.astimezone(TZ).date()

    def visible_to(self, org: str | None) -> bool:
        return org is None or org in (self.caller, self.target)


# name, caller, target, line, outcome, urgent, number, callback state, live, age
SEEDS = (
    (
        "u_svb",
        "utrecht",
        "svb",
        "svb-aow",
        "connected",
        False,
        "+31302861101",
        "pending",
        False,
        timedelta(days=2),
    ),
    (
        "u_svb_live",
        "utrecht",
        "svb",
        "svb-kinderbijslag",
        None,
        False,
        "+31302861102",
        None,
        True,
        timedelta(minutes=5),
    ),
    (
        "u_toe",
        "utrecht",
        "toeslagen",
        "toeslagen-algemeen",
        "callback-requested",
        False,
        "+31302861103",
        "cancelled",
        False,
        timedelta(days=2, hours=1),
    ),
    (
        "u_old",
        "utrecht",
        "svb",
        "svb-aow",
        "connected",
        False,
        "+31302861104",
        "done",
        False,
        timedelta(days=10),
    ),
    (
        "a_ind",
        "amsterdam",
        "ind",
        "ind-verblijf",
        "callback-requested",
        True,
        "+31205552201",
        "pending",
        False,
        timedelta(days=2, hours=2),
    ),
    (
        "a_ind_live",
        "amsterdam",
        "ind",
        "ind-verblijf",
        None,
        True,
        "+31205552202",
        None,
        True,
        timedelta(minutes=3),
    ),
    (
        "a_svb",
        "amsterdam",
        "svb",
        "svb-aow",
        "no-answer",
        False,
        "+31205552203",
        "pending",
        False,
        timedelta(days=2, hours=3),
    ),
    (
        "a_toe",
        "amsterdam",
        "toeslagen",
        "toeslagen-algemeen",
        "busy",
        False,
        "+31205552204",
        "done",
        False,
        timedelta(days=1, hours=4),
    ),
    (
        "a_old",
        "amsterdam",
        "ind",
        "ind-verblijf",
        "connected",
        False,
        "+31205552205",
        None,
        False,
        timedelta(days=12),
    ),
)


@pytest.fixture
def seeds(app) -> dict[str, Seed]:
    """The call log of two municipalities calling three agencies, in the last two weeks."""
    now = datetime.now(UTC).replace(microsecond=0)
    out = {}
    for name, caller, target, line, outcome, urgent, number, cb, live, age in SEEDS:
        seed = Seed(name, caller, target, line, outcome, urgent, number, cb, live, now - age)
        seed.ids = add_call(
            app,
            caller=caller,
            target=target,
            line=line,
            outcome=outcome,
            at=seed.at,
            urgent=urgent,
            number=number,
            callback_state=cb,
            active=live,
            tta=None if live else 12.0,
            professional="+31883001001",
        )
        out[name] = seed
    return out


def visible(seeds, org) -> set[str]:
    return {s.name for s in seeds.values() if s.visible_to(org)}


def hidden(seeds, org) -> list[Seed]:
    return [s for s in seeds.values() if not s.visible_to(org)]


def assert_no_trace(body: str, others: list[Seed], where: str) -> None:
    """None of the others' ids, references or masked numbers is in `body` (an id that the
    request itself carried, `where`, may be echoed: in a redirect's `next`, say)."""
    for seed in others:
        for marker in seed.markers:
            if marker not in where:
                assert marker not in body, f"{where}: {seed.name}'s {marker!r} is shown"


# --------------------------------------------------------------------------- HTML


@dataclass
class Row:
    cells: list[str]
    links: list[str]


class Page(HTMLParser):
    """The body rows of every table (by id), the links and the forms of an HTML page."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[Row]] = {}
        self.forms: list[dict] = []
        self.links: list[str] = []
        self.next_link: str | None = None  # the pager's rel="next"
        self._table = ""  # a fragment's rows (no <table>) go under ""
        self._thead = False
        self._row: Row | None = None
        self._cell: list[str] | None = None
        self._form: dict | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id") or "?"
        elif tag == "thead":
            self._thead = True
        elif tag == "tr" and not self._thead:
            self._row = Row([], [])
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
            if a.get("rel") == "next":
                self.next_link = a["href"]
            if self._row is not None:
                self._row.links.append(a["href"])
        elif tag == "form":
            self._form = {
                "method": (a.get("method") or "get").lower(),
                "action": a.get("action") or "",
                "inputs": [],
            }
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append(a)

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = ""
        elif tag == "thead":
            self._thead = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if len(self._row.cells) > 1:  # not the "nothing found" row
                self.tables.setdefault(self._table, []).append(self._row)
            self._row = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def rows(self, table: str) -> list[Row]:
        return self.tables.get(table, [])


def html_of(resp) -> str:
    assert resp.status_code == 200, (resp.status_code, resp.headers.get("Location"))
    return resp.get_data(as_text=True)


def call_ids_on(page: Page) -> list[str]:
    """The call ids linked from the call log's rows."""
    out = []
    for row in page.rows("call-log"):
        out += [h.rsplit("/", 1)[-1] for h in row.links if h.startswith("/dashboard/calls/")]
    return out


def names_of(seeds, call_ids) -> list[str]:
    by_id = {s.ids["call"]: s.name for s in seeds.values()}
    return [by_id.get(i, i) for i in call_ids]


def redirected_to_login(resp) -> bool:
    return (
        resp.status_code in (301, 302, 303, 307, 308)
        and urlparse(resp.headers.get("Location", "")).path == "/dashboard/login"
    )


def cursor_of(moment: datetime, ident: str) -> str:
    """A cursor as the pages hand them out: base64url of 'ISO instant|id'."""
    raw = f"{moment.astimezone(UTC).isoformat()}|{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --------------------------------------------------------------------------- accounts


def signed_in(app, viewer: str):
    """A test client logged in through the real form as the supervisor (or admin) `viewer`."""
    email = f"{viewer}@toezicht.example.nl"
    org = VIEWERS.get(viewer, viewer)
    make_user(app, email, "admin" if viewer == "admin" else "supervisor", org)
    client = app.test_client()
    resp = login(client, email)
    assert (
        resp.status_code == 302 and urlparse(resp.headers["Location"]).path == "/dashboard/calls"
    ), resp.status_code
    return client


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def callback_row(app, request_id: str) -> tuple:
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        r = s.get(CallbackRequest, request_id)
        return r.state, r.planned_at, r.outcome, r.done_at, r.updated_at


def session_count(app) -> int:
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        return len(s.scalars(select(WebSession.token_hash)).all())


# --------------------------------------------------------------------------- filters


FILTERS_KNOWN = {"caller": set(CALLERS) | set(ORGS), "target": set(ORGS), "line": set(LINES)}


def matches(seed: Seed, args: dict) -> bool:
    """What a call log filter should keep (unknown ids are ignored, as documented)."""
    for key, value in args.items():
        if key in FILTERS_KNOWN and value not in FILTERS_KNOWN[key]:
            continue
        ok = {
            "caller": lambda v: seed.caller == v,
            "target": lambda v: seed.target == v,
            "line": lambda v: seed.line == v,
            "outcome": lambda v: seed.outcome == v,
            "urgent": lambda v: seed.urgent == (v == "1"),
            "from": lambda v: seed.day >= date.fromisoformat(v),
            "to": lambda v: seed.day <= date.fromisoformat(v),
        }[key](value)
        if not ok:
            return False
    return True


def filter_cases(seeds) -> list[dict]:
    """Filters on the other organisation's callers, agencies, lines, outcomes and days too."""
    recent, old = seeds["u_svb"].day, seeds["a_old"].day
    return [
        {},
        {"caller": "amsterdam"},
        {"caller": "utrecht"},
        {"caller": "ind"},
        {"target": "ind"},
        {"target": "svb"},
        {"target": "toeslagen"},
        {"line": "ind-verblijf"},
        {"line": "svb-aow"},
        {"outcome": "no-answer"},
        {"outcome": "busy"},
        {"outcome": "connected"},
        {"urgent": "1"},
        {"urgent": "0"},
        {
            "from": (recent - timedelta(days=1)).isoformat(),
            "to": (recent + timedelta(days=1)).isoformat(),
        },
        {"from": old.isoformat(), "to": old.isoformat()},
        {"caller": "amsterdam", "target": "ind", "urgent": "1"},
        {"caller": "nobody"},
        {"target": "utrecht"},
    ]


# =========================================================================== 1. isolation


def test_call_log_shows_exactly_the_viewers_scope(app, seeds):
    """The call log lists every call in the viewer's scope and none outside it."""
    for viewer in VIEWERS:
        client = signed_in(app, viewer)
        body = html_of(client.get("/dashboard/calls"))
        shown = names_of(seeds, call_ids_on(Page(body)))
        assert sorted(shown) == sorted(visible(seeds, VIEWERS[viewer])), viewer
        assert_no_trace(body, hidden(seeds, VIEWERS[viewer]), f"{viewer}: /dashboard/calls")


def test_municipality_supervisor_sees_the_calls_its_staff_made(app, seeds):
    """Utrecht sees its calls to every agency, and none of Amsterdam's, even to the same line."""
    shown = set(
        names_of(
            seeds, call_ids_on(Page(html_of(signed_in(app, "utrecht").get("/dashboard/calls"))))
        )
    )
    assert {"u_svb", "u_svb_live", "u_toe", "u_old"} <= shown
    assert not shown & {"a_svb", "a_ind", "a_ind_live", "a_toe", "a_old"}


def test_agency_supervisor_sees_the_calls_its_lines_received(app, seeds):
    """SVB sees the calls to its lines from every municipality, and none to IND or Toeslagen."""
    shown = set(
        names_of(seeds, call_ids_on(Page(html_of(signed_in(app, "svb").get("/dashboard/calls")))))
    )
    assert shown == {"u_svb", "u_svb_live", "u_old", "a_svb"}


def test_no_call_log_filter_reaches_outside_the_scope(app, seeds):
    """Filtering on the other side's caller, agency, line, outcome or days shows none of it."""
    for viewer in ("utrecht", "svb"):
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        for args in filter_cases(seeds):
            body = html_of(client.get("/dashboard/calls?" + urlencode(args)))
            shown = names_of(seeds, call_ids_on(Page(body)))
            expected = {s.name for s in seeds.values() if s.visible_to(org) and matches(s, args)}
            assert sorted(shown) == sorted(expected), (viewer, args)
            assert_no_trace(
                body, hidden(seeds, org), f"{viewer}: /dashboard/calls?{urlencode(args)}"
            )


def test_call_log_cursors_stay_inside_the_scope(app, seeds):
    """A cursor made from another organisation's call, or forged, pages only the own calls."""
    for viewer in ("utrecht", "svb"):
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        own = [s for s in seeds.values() if s.visible_to(org)]
        for other in hidden(seeds, org):
            cursor = cursor_of(other.at, other.ids["call"])
            body = html_of(client.get(f"/dashboard/calls?cursor={cursor}"))
            shown = names_of(seeds, call_ids_on(Page(body)))
            assert sorted(shown) == sorted(s.name for s in own if s.at < other.at), (
                viewer,
                other.name,
            )
            assert_no_trace(body, hidden(seeds, org), f"{viewer}: cursor of {other.name}")
        future = cursor_of(datetime.now(UTC) + timedelta(days=1), "f" * 32)
        for cursor in (future, "not-a-cursor", base64.urlsafe_b64encode(b"x|y").decode()):
            body = html_of(client.get("/dashboard/calls", query_string={"cursor": cursor}))
            assert sorted(names_of(seeds, call_ids_on(Page(body)))) == sorted(
                s.name for s in own
            ), (viewer, cursor)
            assert_no_trace(body, hidden(seeds, org), f"{viewer}: cursor {cursor}")


def test_call_detail_of_another_organisations_call_is_404(app, seeds):
    """Another organisation's call is not found (and shows nothing of it); an own call is."""
    for viewer in ("utrecht", "svb"):
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        for other in hidden(seeds, org):
            resp = client.get(f"/dashboard/calls/{other.ids['call']}")
            assert resp.status_code == 404, (viewer, other.name)
            assert_no_trace(resp.get_data(as_text=True), [other], f"{viewer}: call detail")
        for own in seeds.values():
            if own.visible_to(org):
                body = html_of(client.get(f"/dashboard/calls/{own.ids['call']}"))
                assert own.masked in body, (viewer, own.name)
                assert_no_trace(body, hidden(seeds, org), f"{viewer}: detail of {own.name}")


def test_admin_sees_every_call_and_its_detail(app, seeds):
    """An admin's call log, detail pages and export hold the calls of every organisation."""
    client = signed_in(app, "admin")
    assert sorted(
        names_of(seeds, call_ids_on(Page(html_of(client.get("/dashboard/calls")))))
    ) == sorted(seeds)
    for seed in seeds.values():
        assert seed.masked in html_of(client.get(f"/dashboard/calls/{seed.ids['call']}"))
    rows = export_rows(client.get("/dashboard/calls.csv"))
    assert sorted(r["seed"] for r in rows) == sorted(seeds)


def export_rows(resp) -> list[dict]:
    assert resp.status_code == 200 and resp.mimetype == "text/csv", resp.status_code
    body = resp.get_data(as_text=True)
    reader = list(csv.reader(io.StringIO(body), delimiter=";"))
    header, rows = reader[0], reader[1:]
    out = []
    for row in rows:
        cells = dict(zip(header, row, strict=True))
        number = cells["nummer (gemaskeerd)"]
        cells["seed"] = next((s for s, n in _NUMBER_TAILS.items() if number.endswith(n)), number)
        out.append(cells)
    return out


_NUMBER_TAILS = {name: "****" + number[-4:] for name, _, _, _, _, _, number, *_ in SEEDS}


def test_export_holds_only_the_viewers_calls_under_every_filter(app, seeds):
    """The CSV export, with or without filters, has no row or trace of another organisation."""
    for viewer in ("utrecht", "svb"):
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        for args in filter_cases(seeds):
            resp = client.get("/dashboard/calls.csv?" + urlencode(args))
            rows = export_rows(resp)
            expected = {s.name for s in seeds.values() if s.visible_to(org) and matches(s, args)}
            assert sorted(r["seed"] for r in rows) == sorted(expected), (viewer, args)
            for r in rows:
                assert org in (r["gemeente"], r["organisatie"]), (viewer, r)
            assert_no_trace(
                resp.get_data(as_text=True), hidden(seeds, org), f"{viewer}: csv {args}"
            )


def test_callbacks_page_lists_only_the_viewers_requests(app, seeds):
    """Open, done and all callback requests: exactly the viewer's, by reference."""
    for viewer in VIEWERS:
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        for state, keep in (
            ("open", lambda s: s in OPEN_STATES),
            ("done", lambda s: s not in OPEN_STATES),
            ("all", lambda s: True),
        ):
            body = html_of(client.get(f"/dashboard/callbacks?state={state}"))
            refs = [row.cells[0] for row in Page(body).rows("callbacks")]
            expected = [
                s.ids["reference"]
                for s in seeds.values()
                if s.callback and s.visible_to(org) and keep(s.callback)
            ]
            assert sorted(refs) == sorted(expected), (viewer, state)
            assert_no_trace(
                body, hidden(seeds, org), f"{viewer}: /dashboard/callbacks?state={state}"
            )


def test_callbacks_page_cursors_stay_inside_the_scope(app, seeds):
    """A callbacks cursor made from another organisation's request pages only the own ones."""
    for viewer in ("utrecht", "svb"):
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        svc = app.extensions["callrouter"]
        with svc.sessions() as s:
            requested = {r.id: r.requested_at for r in s.scalars(select(CallbackRequest))}
        for other in hidden(seeds, org):
            if not other.callback:
                continue
            moment = requested[other.ids["callback"]]
            cursor = cursor_of(moment, other.ids["callback"])
            body = html_of(client.get(f"/dashboard/callbacks?state=all&cursor={cursor}"))
            refs = sorted(row.cells[0] for row in Page(body).rows("callbacks"))
            assert refs == sorted(
                s.ids["reference"]
                for s in seeds.values()
                if s.callback and s.visible_to(org) and requested[s.ids["callback"]] < moment
            ), (viewer, other.name)
            assert_no_trace(body, hidden(seeds, org), f"{viewer}: callbacks cursor of {other.name}")


def test_cancel_or_reschedule_of_another_organisations_callback_is_404(app, seeds):
    """POSTs with a valid CSRF token on another organisation's request: 404, request unchanged."""
    for viewer in ("utrecht", "svb"):
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        token = csrf_of(html_of(client.get("/dashboard/callbacks")))
        at = (datetime.now(TZ) + timedelta(days=3)).replace(
            hour=10, minute=0, second=0, microsecond=0, tzinfo=None
        )
        others = [s for s in hidden(seeds, org) if s.callback]
        assert any(s.callback == "pending" for s in others)
        before = {s.name: callback_row(app, s.ids["callback"]) for s in others}
        for other in others:
            rid = other.ids["callback"]
            resp = client.post(f"/dashboard/callbacks/{rid}/cancel", data={"csrf_token": token})
            assert resp.status_code == 404, (viewer, other.name, resp.status_code)
            resp = client.post(
                f"/dashboard/callbacks/{rid}/reschedule",
                data={"csrf_token": token, "at": at.isoformat(timespec="minutes")},
            )
            assert resp.status_code == 404, (viewer, other.name, resp.status_code)
            assert_no_trace(resp.get_data(as_text=True), [other], f"{viewer}: 404 page")
        assert {s.name: callback_row(app, s.ids["callback"]) for s in others} == before, viewer
        assert all(
            callback_row(app, s.ids["callback"])[0] == "pending"
            for s in others
            if s.callback == "pending"
        ), viewer
        # The same form works on an own pending request (for SVB: Amsterdam's request to
        # its line): the 404s above are about the scope.
        own = seeds[OWN_PENDING[viewer]]
        assert callback_row(app, own.ids["callback"])[0] == "pending"
        resp = client.post(
            f"/dashboard/callbacks/{own.ids['callback']}/cancel", data={"csrf_token": token}
        )
        assert resp.status_code == 302, viewer
        assert callback_row(app, own.ids["callback"])[0] == "cancelled", viewer


def transfer_result(app, transfer_id: str) -> tuple:
    from callrouter.models import Transfer

    with app.extensions["callrouter"].sessions() as s:
        t = s.get(Transfer, transfer_id)
        return t.result, t.right_org, t.right_line


def test_marking_another_organisations_transfer_as_wrong_line_is_404(app, seeds):
    """A wrong-line mark on a transfer outside the scope is a 404 and changes nothing."""
    for viewer in ("utrecht", "svb"):
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        token = csrf_of(html_of(client.get("/dashboard/calls")))
        others = hidden(seeds, org)
        for other in others:
            resp = client.post(
                f"/dashboard/transfers/{other.ids['transfer']}/wrong-line",
                data={"csrf_token": token, "line": "toeslagen-algemeen"},
            )
            assert resp.status_code == 404, (viewer, other.name, resp.status_code)
            assert_no_trace(resp.get_data(as_text=True), [other], f"{viewer}: 404 page")
        assert all(transfer_result(app, o.ids["transfer"]) == (None, None, None) for o in others), (
            viewer
        )
        if viewer == "svb":  # the receiving agency may mark a transfer to its own line
            own = seeds["a_svb"].ids["transfer"]
            resp = client.post(
                f"/dashboard/transfers/{own}/wrong-line",
                data={"csrf_token": token, "line": "toeslagen-algemeen"},
            )
            assert resp.status_code == 302
            assert transfer_result(app, own) == ("wrong-line", "toeslagen", "toeslagen-algemeen")


def figure_table(page: Page, table: str) -> dict[str, tuple[int, int]]:
    """label -> (calls, callbacks) of a figures table."""
    return {r.cells[0]: (int(r.cells[1]), int(r.cells[4])) for r in page.rows(table)}


def expected_figures(seeds, org, first: date, last: date):
    per_org: dict[str, list[int]] = {}
    per_line: dict[str, list[int]] = {}
    for s in seeds.values():
        if not s.visible_to(org) or not first <= s.day <= last:
            continue
        org_id, topic = LINES[s.line]
        for key, table in ((ORGS[s.target], per_org), (f"{ORGS[org_id]}: {topic}", per_line)):
            counts = table.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += 1 if s.callback else 0
    return ({k: tuple(v) for k, v in per_org.items()}, {k: tuple(v) for k, v in per_line.items()})


def test_figures_count_only_the_viewers_calls(app, seeds):
    """Figures per day and week, per organisation and per line count the viewer's calls only."""
    for viewer in VIEWERS:
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        today = datetime.now(TZ).date()
        windows = [
            ({}, today - timedelta(days=27), today),  # the default: the last four weeks
            (
                {"from": seeds["a_old"].day.isoformat(), "to": seeds["a_old"].day.isoformat()},
                seeds["a_old"].day,
                seeds["a_old"].day,
            ),  # a day of another's call only
            ({"from": seeds["u_old"].day.isoformat()}, seeds["u_old"].day, today),
        ]
        for (window, first, last), per in itertools.product(windows, ("day", "week")):
            args = {"per": per} | window
            page = Page(html_of(client.get("/dashboard/figures?" + urlencode(args))))
            per_org, per_line = expected_figures(seeds, org, first, last)
            assert figure_table(page, "per-organisation") == per_org, (viewer, args)
            assert figure_table(page, "per-line") == per_line, (viewer, args)
            periods = figure_table(page, "per-period")
            assert sum(c for c, _ in periods.values()) == sum(c for c, _ in per_org.values()), (
                viewer,
                args,
            )
            assert sum(b for _, b in periods.values()) == sum(b for _, b in per_org.values()), (
                viewer,
                args,
            )


def test_live_view_shows_only_the_viewers_transfers(app, seeds):
    """The live page and its rows fragment show the viewer's transfers in progress only."""
    for viewer in VIEWERS:
        client = signed_in(app, viewer)
        org = VIEWERS[viewer]
        expected = sorted(
            (CALLERS[s.caller], f"{ORGS[s.target]}: {LINES[s.line][1]}")
            for s in seeds.values()
            if s.live and s.visible_to(org)
        )
        for url, table in (("/dashboard/live", "live"), ("/dashboard/live/rows", "")):
            body = html_of(client.get(url))
            rows = Page(body).rows(table)
            assert sorted((r.cells[1], r.cells[2]) for r in rows) == expected, (viewer, url)
            assert_no_trace(body, hidden(seeds, org), f"{viewer}: {url}")


def api_rows(client, path: str, token: str, **args) -> list[dict]:
    resp = client.get(path, query_string=args, headers=bearer(token))
    assert resp.status_code == 200, (resp.status_code, resp.get_data(as_text=True))
    return resp.get_json()["data"]


def test_api_transfers_and_callbacks_hold_only_the_tokens_scope(app, seeds):
    """The API with a scoped token returns exactly its scope, for every organisation asked."""
    for viewer in VIEWERS:
        org = VIEWERS[viewer]
        token = make_token(app, f"rapportage-{viewer}", org)
        client = app.test_client()
        by_transfer = {s.ids["transfer"]: s.name for s in seeds.values()}
        by_callback = {s.ids["callback"]: s.name for s in seeds.values() if s.callback}
        for asked in [None, *CALLERS, *ORGS]:
            args = {"organisation": asked} if asked else {}
            resp = client.get("/api/v1/transfers", query_string=args, headers=bearer(token))
            assert resp.status_code == 200
            got = sorted(by_transfer.get(t["id"], t["id"]) for t in resp.get_json()["data"])
            assert got == sorted(
                s.name
                for s in seeds.values()
                if s.visible_to(org) and (asked is None or asked in (s.caller, s.target))
            ), (viewer, asked)
            assert_no_trace(
                resp.get_data(as_text=True), hidden(seeds, org), f"{viewer}: transfers {asked}"
            )
            for state in ("open", "done", "all"):
                resp = client.get(
                    "/api/v1/callbacks", query_string=args | {"state": state}, headers=bearer(token)
                )
                assert resp.status_code == 200
                got = sorted(by_callback.get(c["id"], c["id"]) for c in resp.get_json()["data"])
                assert got == sorted(
                    s.name
                    for s in seeds.values()
                    if s.callback
                    and s.visible_to(org)
                    and (asked is None or asked in (s.caller, s.target))
                    and (state == "all" or (s.callback in OPEN_STATES) == (state == "open"))
                ), (viewer, asked, state)
                assert_no_trace(
                    resp.get_data(as_text=True),
                    hidden(seeds, org),
                    f"{viewer}: callbacks {asked} {state}",
                )


def test_api_time_windows_and_cursors_stay_inside_the_scope(app, seeds):
    """since/until and cursors (walked, made from another's rows, forged) give own rows only."""
    for viewer in ("utrecht", "svb"):
        org = VIEWERS[viewer]
        token = make_token(app, f"rapportage-{viewer}", org)
        client = app.test_client()
        own = {s.ids["transfer"]: s for s in seeds.values() if s.visible_to(org)}
        others = hidden(seeds, org)
        # Windows: around the other's calls only, and around everything.
        for other in others:
            window = {
                "since": (other.at - timedelta(minutes=1))
                .astimezone(TZ)
                .replace(tzinfo=None)
                .isoformat(),
                "until": (other.at + timedelta(minutes=1)).isoformat(),
            }
            for path in ("/api/v1/transfers", "/api/v1/callbacks"):
                got = api_rows(client, path, token, **window)
                assert got == [], (viewer, path, other.name, got)
        got = api_rows(client, "/api/v1/transfers", token, since="2000-01-01", until="2100-01-01")
        assert sorted(t["id"] for t in got) == sorted(own), viewer
        # Walking the pages one row at a time gives every own row once.
        seen, cursor = [], None
        while True:
            resp = client.get(
                "/api/v1/transfers",
                query_string={"limit": 1} | ({"cursor": cursor} if cursor else {}),
                headers=bearer(token),
            )
            body = resp.get_json()
            seen += [t["id"] for t in body["data"]]
            assert_no_trace(resp.get_data(as_text=True), others, f"{viewer}: transfers page")
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert sorted(seen) == sorted(own), viewer
        # A cursor made from another organisation's transfer: only own rows before it.
        for other in others:
            moment = other.at + timedelta(seconds=9)  # the transfer's created_at (add_call)
            got = api_rows(
                client, "/api/v1/transfers", token, cursor=cursor_of(moment, other.ids["transfer"])
            )
            assert sorted(t["id"] for t in got) == sorted(
                i for i, s in own.items() if s.at < other.at
            ), (viewer, other.name)
            got = api_rows(
                client,
                "/api/v1/callbacks",
                token,
                cursor=cursor_of(moment + timedelta(days=1), other.ids.get("callback", "f" * 32)),
            )
            assert all(org in (c["caller_organisation"], c["organisation"]) for c in got), (
                viewer,
                other.name,
            )


def test_admin_token_sees_every_organisation(app, seeds):
    """A token without an organisation reads the transfers and callbacks of all of them."""
    token = make_token(app, "rapportage-beheer")
    client = app.test_client()
    assert sorted(t["id"] for t in api_rows(client, "/api/v1/transfers", token)) == sorted(
        s.ids["transfer"] for s in seeds.values()
    )
    assert sorted(c["reference"] for c in api_rows(client, "/api/v1/callbacks", token)) == sorted(
        s.ids["reference"] for s in seeds.values() if s.callback
    )


ADMIN_ONLY = {"dashboard.privacy_subject"}  # the subject's own view: administrators only


def test_every_page_of_the_viewer_is_free_of_the_other_organisation(app, seeds):
    """Every GET route of the dashboard, visited as Utrecht, has no trace of Amsterdam's data."""
    client = signed_in(app, "utrecht")
    others = hidden(seeds, "utrecht")
    own_call = seeds["u_svb"].ids["call"]
    seen = set()
    for rule in app.url_map.iter_rules():
        if (
            not rule.endpoint.startswith("dashboard.")
            or "GET" not in rule.methods
            or rule.endpoint in ("dashboard.assets", "dashboard.login")
        ):
            continue
        seen.add(rule.endpoint)
        url = _dummy_url(app, rule, "GET", {"call_id": own_call})
        resp = client.get(url, follow_redirects=True)
        dummy = bool(rule.arguments - {"call_id"})  # an argument we know no real value of
        if rule.endpoint in ADMIN_ONLY:  # a supervisor is refused there
            assert resp.status_code == 403, (url, resp.status_code)
            continue
        assert resp.status_code == 200 or (dummy and resp.status_code == 404), (
            url,
            resp.status_code,
        )
        assert_no_trace(resp.get_data(as_text=True), others, url)
    assert {
        "dashboard.calls",
        "dashboard.call_detail",
        "dashboard.export",
        "dashboard.callbacks_page",
        "dashboard.figures_page",
        "dashboard.live",
        "dashboard.live_rows",
    } <= seen


# =========================================================================== 2. anonymous


def _dummy_url(app, rule, method: str, values: dict) -> str:
    args = {name: values.get(name, "0" * 32) for name in rule.arguments}
    return app.url_map.bind("localhost").build(rule.endpoint, args, method=method)


def protected_rules(app):
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(("dashboard.", "api."))
        and rule.endpoint not in ("dashboard.login", "dashboard.assets")
    ]


def test_no_dashboard_or_api_path_lives_outside_the_protected_blueprints(app):
    """Every route under /dashboard or /api belongs to the dashboard or the API blueprint."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/dashboard", "/api")):
            assert rule.endpoint.startswith(("dashboard.", "api.")), rule.rule


def test_every_route_refuses_an_anonymous_visitor(app, seeds):
    """Anonymous GET/HEAD/POST: the dashboard redirects to its login, the API answers 401."""
    real = {"call_id": seeds["a_ind"].ids["call"], "request_id": seeds["a_ind"].ids["callback"]}
    rules = protected_rules(app)
    assert {
        "dashboard.calls",
        "dashboard.call_detail",
        "dashboard.export",
        "dashboard.logout",
        "dashboard.callback_cancel",
        "dashboard.callback_reschedule",
        "api.transfers",
        "api.callbacks",
    } <= {r.endpoint for r in rules}
    client = app.test_client()
    # An anonymous visitor can get a valid CSRF token from the (public) login page.
    token = csrf_of(html_of(client.get("/dashboard/login")))
    before = callback_row(app, seeds["a_ind"].ids["callback"])
    checked = 0
    for rule in rules:
        for method in sorted(rule.methods - {"OPTIONS"}):
            reading = method in ("GET", "HEAD")
            for values in ({}, real):
                url = _dummy_url(app, rule, method, values)
                attempts = [{}] if reading else [{}, {"csrf_token": token}]
                for form in attempts:
                    resp = client.open(url, method=method, data=form or None)
                    where = (method, url, form)
                    assert not 200 <= resp.status_code < 300, where
                    assert_no_trace(resp.get_data(as_text=True), list(seeds.values()), url)
                    if rule.endpoint.startswith("api."):
                        assert resp.status_code == 401, where
                        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), where
                    elif reading or form:
                        assert redirected_to_login(resp), (where, resp.status_code)
                    else:  # a POST without a token stops at the CSRF check
                        assert resp.status_code == 400 or redirected_to_login(resp), where
                    checked += 1
    assert checked >= 20
    assert callback_row(app, seeds["a_ind"].ids["callback"]) == before


def test_api_with_a_session_cookie_but_no_token_is_401(app, seeds):
    """A logged-in browser session does not open the API: it wants a bearer token."""
    client = signed_in(app, "admin")
    for path in ("/api/v1/transfers", "/api/v1/callbacks"):
        resp = client.get(path)
        assert resp.status_code == 401, path
        assert "data" not in resp.get_json()


# =========================================================================== 3. CSRF


def test_every_post_form_carries_a_csrf_token(app, seeds):
    """Every <form method=post> on every page (logged in and on the login page) has a token."""
    client = signed_in(app, "admin")
    urls = [(f"/dashboard/callbacks?state={state}", False) for state in ("open", "done", "all")]
    urls.append(("/dashboard/figures?per=week", False))
    for rule in app.url_map.iter_rules():
        if (
            rule.endpoint.startswith("dashboard.")
            and "GET" in rule.methods
            and rule.endpoint not in ("dashboard.assets", "dashboard.export")
        ):
            urls.append(
                (
                    _dummy_url(app, rule, "GET", {"call_id": seeds["u_svb"].ids["call"]}),
                    bool(rule.arguments - {"call_id"}),
                )
            )
    pages = []
    for url, dummy in urls:
        resp = client.get(url, follow_redirects=True)
        # A page of an object we have no real id for is a 404 page (with the logout form).
        assert resp.status_code == 200 or (dummy and resp.status_code == 404), url
        pages.append(resp)
    pages.append(app.test_client().get("/dashboard/login"))
    actions = set()
    for resp in pages:
        for form in Page(resp.get_data(as_text=True)).forms:
            if form["method"] != "post":
                continue
            tokens = [i for i in form["inputs"] if i.get("name") == "csrf_token"]
            assert (
                len(tokens) == 1 and tokens[0].get("type") == "hidden" and tokens[0].get("value")
            ), (resp.request.path, form["action"])
            actions.add(
                form["action"].split("/")[-1] if "/callbacks/" in form["action"] else form["action"]
            )
    assert {"/dashboard/login", "/dashboard/logout", "cancel", "reschedule"} <= actions


def _other_sessions_token(app) -> str:
    """A well-formed CSRF token, signed by this app, but of another browser's session."""
    return csrf_of(html_of(app.test_client().get("/dashboard/login")))


BAD_TOKENS = ("missing", "garbage", "other-session")


def _bad_form(app, kind: str) -> dict:
    return {
        "missing": {},
        "garbage": {"csrf_token": "IjAwMDAi.bad.token"},
        "other-session": {"csrf_token": _other_sessions_token(app)},
    }[kind]


def test_every_post_route_refuses_a_missing_or_wrong_csrf_token(app, seeds):
    """Logged in, every POST route of the map answers 400 without a valid token."""
    client = signed_in(app, "admin")
    real = {"request_id": seeds["u_svb"].ids["callback"]}
    posted = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("dashboard.", "api.")) or "POST" not in rule.methods:
            continue
        url = _dummy_url(app, rule, "POST", real)
        for kind in BAD_TOKENS:
            resp = client.post(url, data=_bad_form(app, kind) | {"at": "2030-01-02T10:00"})
            assert resp.status_code == 400, (url, kind, resp.status_code)
        posted.add(rule.endpoint)
    assert {
        "dashboard.login",
        "dashboard.logout",
        "dashboard.callback_cancel",
        "dashboard.callback_reschedule",
    } <= posted
    assert callback_row(app, seeds["u_svb"].ids["callback"])[0] == "pending"
    assert client.get("/dashboard/calls").status_code == 200


def test_cancel_and_reschedule_without_a_valid_token_change_nothing(app, seeds):
    """A cancel or reschedule with a bad token is a 400 and the request stays as it was."""
    client = signed_in(app, "utrecht")
    rid = seeds["u_svb"].ids["callback"]
    before = callback_row(app, rid)
    assert before[0] == "pending"
    for kind in BAD_TOKENS:
        form = _bad_form(app, kind)
        resp = client.post(f"/dashboard/callbacks/{rid}/cancel", data=form)
        assert resp.status_code == 400, kind
        resp = client.post(
            f"/dashboard/callbacks/{rid}/reschedule", data=form | {"at": "2030-01-02T10:00"}
        )
        assert resp.status_code == 400, kind
        assert callback_row(app, rid) == before, kind
    # With the page's own token the same cancel goes through: the token was the difference.
    token = csrf_of(html_of(client.get("/dashboard/callbacks")))
    assert (
        client.post(f"/dashboard/callbacks/{rid}/cancel", data={"csrf_token": token}).status_code
        == 302
    )
    assert callback_row(app, rid)[0] == "cancelled"


def test_logout_without_a_valid_token_keeps_the_session(app):
    """A forged logout (no or a wrong token) is a 400 and the user stays logged in."""
    client = signed_in(app, "utrecht")
    assert session_count(app) == 1
    for kind in BAD_TOKENS:
        resp = client.post("/dashboard/logout", data=_bad_form(app, kind))
        assert resp.status_code == 400, kind
        assert session_count(app) == 1, kind
        assert client.get("/dashboard/calls").status_code == 200, kind


def test_login_without_a_valid_token_starts_no_session(app):
    """A login with the right password but a bad token is a 400 and logs nobody in."""
    make_user(app, "utrecht@toezicht.example.nl", "supervisor", "utrecht")
    client = app.test_client()
    client.get("/dashboard/login")
    for kind in BAD_TOKENS:
        resp = client.post(
            "/dashboard/login",
            data=_bad_form(app, kind)
            | {"email": "utrecht@toezicht.example.nl", "password": PASSWORD},
        )
        assert resp.status_code == 400, kind
        assert session_count(app) == 0, kind
        assert redirected_to_login(client.get("/dashboard/calls")), kind


# =========================================================================== 4. sessions


def _cookie(client) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None, "no session cookie"
    return cookie.value


def _with_cookie(app, value: str):
    client = app.test_client()
    client.set_cookie(COOKIE, value)
    return client


def test_a_replayed_cookie_after_logout_lands_on_the_login_page(app, seeds):
    """The cookie copied before logout opens nothing after it: redirect to /dashboard/login."""
    client = signed_in(app, "utrecht")
    copied = _cookie(client)
    assert _with_cookie(app, copied).get("/dashboard/calls").status_code == 200  # it works
    token = csrf_of(html_of(client.get("/dashboard/calls")))
    resp = client.post("/dashboard/logout", data={"csrf_token": token})
    assert redirected_to_login(resp)
    assert session_count(app) == 0
    for url in (
        "/dashboard/calls",
        "/dashboard/calls.csv",
        "/dashboard/live/rows",
        f"/dashboard/calls/{seeds['u_svb'].ids['call']}",
    ):
        resp = _with_cookie(app, copied).get(url)
        assert redirected_to_login(resp), (url, resp.status_code)
        assert_no_trace(resp.get_data(as_text=True), list(seeds.values()), url)


def test_a_session_cookie_of_another_secret_key_is_refused(app, environ, seeds):
    """A cookie signed by an instance with another SECRET_KEY is refused, its session alive."""
    other = create_app(environ=environ | {"SECRET_KEY": "another-secret-key-9876543210"})
    try:
        client = signed_in(other, "utrecht")  # same database: the session row exists
        foreign = _cookie(client)
        assert _with_cookie(other, foreign).get("/dashboard/calls").status_code == 200
        assert session_count(app) == 1
        for url in ("/dashboard/calls", "/dashboard/callbacks", "/dashboard/calls.csv"):
            resp = _with_cookie(app, foreign).get(url)
            assert redirected_to_login(resp), (url, resp.status_code)
    finally:
        other.extensions["callrouter"].engine.dispose()


# =========================================================================== 5. API tokens


def test_a_revoked_token_is_401(app, seeds):
    """After `tokens revoke` the token that worked a moment ago is refused."""
    token = make_token(app, "rapportage-utrecht", "utrecht")
    client = app.test_client()
    assert client.get("/api/v1/transfers", headers=bearer(token)).status_code == 200
    result = app.test_cli_runner().invoke(args=["tokens", "revoke", "--name", "rapportage-utrecht"])
    assert result.exit_code == 0, result.output
    for path in ("/api/v1/transfers", "/api/v1/callbacks"):
        resp = client.get(path, headers=bearer(token))
        assert resp.status_code == 401, path
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert "data" not in resp.get_json()


def test_an_unknown_or_malformed_token_is_401(app, seeds):
    """Unknown, altered, empty or non-bearer credentials are all refused."""
    token = make_token(app, "rapportage-utrecht", "utrecht")
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    headers = [
        bearer("crt_" + secrets.token_urlsafe(32)),
        bearer(altered),
        bearer(""),
        bearer("x" * 500),
        {"Authorization": f"Basic {token}"},
        {"Authorization": token},
        {"X-Api-Token": token},
        {},
    ]
    client = app.test_client()
    for h in headers:
        for path in ("/api/v1/transfers", "/api/v1/callbacks"):
            resp = client.get(path, headers=h)
            assert resp.status_code == 401, (h, path)
            assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), h
            assert_no_trace(resp.get_data(as_text=True), list(seeds.values()), path)
    resp = client.get("/api/v1/transfers", query_string={"token": token})
    assert resp.status_code == 401


def test_tokens_are_stored_hashed(app, seeds):
    """The clear token is nowhere in the database, only its SHA-256 (in api_tokens)."""
    token = make_token(app, "rapportage-utrecht", "utrecht")
    client = app.test_client()
    assert client.get("/api/v1/callbacks", headers=bearer(token)).status_code == 200
    svc = app.extensions["callrouter"]
    digest = hashlib.sha256(token.encode()).hexdigest()
    with svc.sessions() as s:
        stored = s.scalars(select(ApiToken)).one()
        assert stored.token_hash == digest
        for table in Base.metadata.sorted_tables:
            for row in s.execute(text(f"SELECT * FROM {table.name}")):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        shown = bytes(value).decode("latin-1")
                    elif isinstance(value, dict | list):
                        shown = json.dumps(value, default=str)
                    else:
                        shown = str(value)
                    assert token not in shown and token[4:] not in shown, table.name


def test_an_api_read_is_audited_with_the_tokens_name(app, seeds):
    """Each API read adds an audit entry by token:NAME with the path and the rows returned."""
    token = make_token(app, "rapportage-utrecht", "utrecht")
    client = app.test_client()
    count = len(api_rows(client, "/api/v1/transfers", token, organisation="svb"))
    assert count == 3
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.actor == "token:rapportage-utrecht")
        ).all()
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.action, entry.result, entry.object) == (
        "api-read",
        "success",
        "/api/v1/transfers",
    )
    assert entry.detail["rows"] == count
    assert "organisation=svb" in entry.detail["query"]
    assert token not in json.dumps(entry.detail)


# =========================================================================== paging


@pytest.fixture
def busy_log(app) -> dict[str, list[dict]]:
    """More than a page of Utrecht's calls and requests, interleaved with Amsterdam's."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    out: dict[str, list[dict]] = {"utrecht": [], "amsterdam": []}
    for k in range(80):
        caller = "amsterdam" if k % 3 == 2 else "utrecht"
        target, line = ("ind", "ind-verblijf") if caller == "amsterdam" else ("svb", "svb-aow")
        ids = add_call(
            app,
            caller=caller,
            target=target,
            line=line,
            at=start - timedelta(minutes=7 * k),
            number=f"+3130287{k:04d}",
            callback_state="pending",
        )
        out[caller].append(ids)
    return out


def _walk(client, url: str | None, extract) -> list[list[str]]:
    """Follow the pager's rel=next links from `url`; what `extract` finds on each page."""
    pages = []
    while url:
        page = Page(html_of(client.get(url)))
        pages.append(extract(page))
        url = page.next_link
        assert len(pages) < 10, "the pager does not end"
    return pages


def test_walking_every_page_shows_each_own_call_and_request_once(app, busy_log):
    """Following the pages' next links: every Utrecht call and request once, none of Amsterdam."""
    assert len(busy_log["utrecht"]) > 50
    client = signed_in(app, "utrecht")
    pages = _walk(client, "/dashboard/calls", call_ids_on)
    assert len(pages) == 2
    shown = [i for p in pages for i in p]
    assert sorted(shown) == sorted(ids["call"] for ids in busy_log["utrecht"])
    pages = _walk(
        client,
        "/dashboard/callbacks?state=open",
        lambda p: [r.cells[0] for r in p.rows("callbacks")],
    )
    assert len(pages) == 2
    shown = [i for p in pages for i in p]
    assert sorted(shown) == sorted(ids["reference"] for ids in busy_log["utrecht"])
    assert not set(shown) & {ids["reference"] for ids in busy_log["amsterdam"]}
