"""The supervisors' dashboard and API: logins, sessions, call log, detail, export, callbacks,
figures, live view, audit and retention, on the real app and database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callrouter.dashboard import auth
from callrouter.dashboard.csvsafe import safe_cell
from callrouter.models import AuditEntry, Call, CallbackRequest, Leg, Transfer, WebSession

from dashboard_helpers import PASSWORD, add_call, csrf_of, login, make_token, make_user

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


class Moment:
    def __init__(self, start: datetime):
        self.at = start

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def moment(monkeypatch):
    """One clock for the dashboard, its auth and retention (tests move it)."""
    from callrouter import clock, retention
    from callrouter.dashboard import auth as auth_mod

    m = Moment(NOW)
    for module in (auth_mod, retention):
        monkeypatch.setattr(module, "now", m)
    monkeypatch.setattr(clock, "now", m)
    return m


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app, moment):
    with app.test_client() as c:
        yield c


@pytest.fixture
def admin(app, client):
    make_user(app, "beheer@example.nl", "admin")
    resp = login(client, "beheer@example.nl")
    assert resp.status_code == 302
    return client


def audit_rows(app, action=None):
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        q = select(AuditEntry).order_by(AuditEntry.id)
        if action:
            q = q.where(AuditEntry.action == action)
        return s.scalars(q).all()


def text(resp) -> str:
    return resp.get_data(as_text=True)


# --------------------------------------------------------------------------- accounts


def test_login_starts_a_server_side_session_and_is_audited(app, client):
    """A right password logs in (302 to the call log), stores a session row and audits it."""
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    resp = login(client, "Sup@Utrecht.nl")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboard/calls")
    assert client.get("/dashboard/calls").status_code == 200
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        assert s.scalar(select(WebSession)) is not None
    (entry,) = audit_rows(app, "login")
    assert entry.result == "success" and entry.actor == "user:sup@utrecht.nl"
    assert entry.origin


def test_wrong_password_is_refused_audited_and_never_logged(app, client, caplog):
    """A wrong password gets 401 and a failure audit entry that holds no password."""
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    resp = login(client, "sup@utrecht.nl", "not-the-password-7391")
    assert resp.status_code == 401 and "klopt niet" in text(resp)
    assert client.get("/dashboard/calls").status_code == 302
    (entry,) = audit_rows(app, "login")
    assert entry.result == "failure"
    dump = repr([(e.actor, e.object, e.detail) for e in audit_rows(app)]) + caplog.text
    assert "not-the-password-7391" not in dump


def test_unknown_email_sounds_like_a_wrong_password(app, client):
    """An unknown address gets the same answer as a wrong password (no account discovery)."""
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    a = login(client, "nobody@utrecht.nl")
    b = login(client, "sup@utrecht.nl", "wrong-password-123")
    assert a.status_code == b.status_code == 401
    assert "klopt niet" in text(a) and "klopt niet" in text(b)


def test_repeated_failures_lock_the_account_for_a_while(app, client, moment):
    """Five wrong passwords lock the account: even the right one fails until 15 minutes pass."""
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    for _ in range(auth.MAX_FAILED_LOGINS):
        login(client, "sup@utrecht.nl", "wrong-password-123")
    resp = login(client, "sup@utrecht.nl")
    assert resp.status_code == 401 and "klopt niet" in text(resp)  # as for any failure
    assert [e.result for e in audit_rows(app, "lockout")] == ["success"]
    moment.at = NOW + auth.LOCKOUT + timedelta(seconds=1)
    assert login(client, "sup@utrecht.nl").status_code == 302


def test_idle_session_ends(app, client, moment):
    """A session unused for longer than the idle limit lands on the login page again."""
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    login(client, "sup@utrecht.nl")
    moment.at = NOW + auth.SESSION_IDLE + timedelta(minutes=1)
    resp = client.get("/dashboard/calls")
    assert resp.status_code == 302 and "/dashboard/login" in resp.headers["Location"]


def test_logout_ends_the_session_on_the_server(app, client):
    """Logging out deletes the session row; the old cookie then leads to the login page."""
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    login(client, "sup@utrecht.nl")
    cookie = client.get_cookie("callrouter_session").value
    page = client.get("/dashboard/calls")
    assert (
        client.post("/dashboard/logout", data={"csrf_token": csrf_of(text(page))}).status_code
        == 302
    )
    client.set_cookie("callrouter_session", cookie)
    resp = client.get("/dashboard/calls")
    assert resp.status_code == 302 and "/dashboard/login" in resp.headers["Location"]
    assert [e.action for e in audit_rows(app)][-1] == "logout"


def test_login_redirect_stays_inside_the_dashboard(app, client):
    """The `next` of the login form never sends the browser to another site."""
    make_user(app, "sup@utrecht.nl", "supervisor", "utrecht")
    page = client.get("/dashboard/login")
    resp = client.post(
        "/dashboard/login",
        data={
            "email": "sup@utrecht.nl",
            "password": PASSWORD,
            "next": "//evil.example/x",
            "csrf_token": csrf_of(text(page)),
        },
    )
    assert resp.headers["Location"].endswith("/dashboard/calls")


def test_cli_creates_users_and_tokens(app):
    """`users create` and `tokens create` make scoped accounts; a bad org is refused."""
    runner = app.test_cli_runner()
    ok = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "a@svb.nl",
            "--role",
            "supervisor",
            "--org",
            "svb",
            "--password",
            PASSWORD,
        ]
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "b@x.nl",
            "--role",
            "supervisor",
            "--org",
            "nope",
            "--password",
            PASSWORD,
        ]
    )
    assert bad.exit_code == 1 and "nope" in bad.output
    short = runner.invoke(
        args=["users", "create", "--email", "c@x.nl", "--role", "admin", "--password", "short"]
    )
    assert short.exit_code == 1
    tok = runner.invoke(args=["tokens", "create", "--name", "bi", "--org", "utrecht"])
    assert tok.exit_code == 0 and tok.output.strip().startswith("crt_")
    with app.test_client() as c:
        r = c.get("/api/v1/transfers", headers={"Authorization": f"Bearer {tok.output.strip()}"})
        assert r.status_code == 200


def test_pages_carry_security_headers(admin):
    """Every page answers with CSP, HSTS, nosniff, frame-ancestors and no-store."""
    for path in ("/dashboard/calls", "/dashboard/figures", "/dashboard/login"):
        h = admin.get(path).headers
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
        assert h["Strict-Transport-Security"].startswith("max-age=")
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Cache-Control"] == "no-store"


# --------------------------------------------------------------------------- call log


def test_call_log_newest_first_with_filters(app, admin):
    """The log lists newest first and each filter keeps only matching calls."""
    a = add_call(app, at=NOW - timedelta(hours=3), outcome="connected")
    b = add_call(
        app,
        at=NOW - timedelta(hours=2),
        outcome="no-answer",
        urgent=True,
        target="toeslagen",
        line="toeslagen-algemeen",
        caller="amsterdam",
        number="+31205550100",
    )
    c = add_call(app, at=NOW - timedelta(hours=1), outcome="closed", transfer=False)
    page = text(admin.get("/dashboard/calls"))
    assert page.index(c["call"]) < page.index(b["call"]) < page.index(a["call"])
    for query, expected in (
        ("outcome=no-answer", {b["call"]}),
        ("urgent=1", {b["call"]}),
        ("urgent=0", {a["call"], c["call"]}),
        ("caller=amsterdam", {b["call"]}),
        ("target=svb", {a["call"], c["call"]}),
        ("line=toeslagen-algemeen", {b["call"]}),
    ):
        body = text(admin.get(f"/dashboard/calls?{query}"))
        shown = {i for i in (a["call"], b["call"], c["call"]) if i in body}
        assert shown == expected, query


def test_period_filter_uses_local_days(app, admin):
    """`from`/`to` are local dates: 23:30 UTC on the 24th is the 25th in Amsterdam."""
    late = add_call(app, at=datetime(2026, 11, 24, 23, 30, tzinfo=UTC))
    early = add_call(app, at=datetime(2026, 11, 24, 22, 30, tzinfo=UTC))
    body = text(admin.get("/dashboard/calls?from=2026-11-25&to=2026-11-25"))
    assert late["call"] in body and early["call"] not in body


def test_call_log_pages_follow_the_cursor(app, admin):
    """120 calls on three pages of 50: disjoint, together complete, newest first."""
    ids = [add_call(app, at=NOW - timedelta(minutes=i), transfer=False)["call"] for i in range(120)]
    seen, url = [], "/dashboard/calls"
    import re

    while url:
        body = text(admin.get(url))
        seen += [i for i in re.findall(r"/dashboard/calls/([0-9a-f]{32})", body)]
        m = re.search(r'rel="next" href="([^"]+)"', body)
        url = m.group(1).replace("&amp;", "&") if m else None
    assert seen == ids


def test_garbage_filters_are_ignored(admin):
    """Unknown ids, bad dates and a forged cursor never raise."""
    for q in (
        "from=yesterday",
        "to=2026-13-45",
        "line=nope",
        "outcome=<script>",
        "cursor=%%%",
        "cursor=Zm9v",
        "urgent=maybe",
        "caller=' OR 1=1",
    ):
        assert admin.get(f"/dashboard/calls?{q}").status_code == 200, q


def test_call_detail_shows_the_timeline_and_is_audited(app, admin):
    """A call's page lists its transfer, masked numbers and a time-ordered timeline."""
    ids = add_call(app, at=NOW - timedelta(hours=1), callback_state="done")
    resp = admin.get(f"/dashboard/calls/{ids['call']}")
    body = text(resp)
    assert resp.status_code == 200
    assert "+31 3 ****0123" in body and "+31302860123" not in body
    steps = [
        "gesprek binnengekomen",
        "keuze gemaakt",
        "doorverbinden gestart",
        "professional gaat over",
        "professional neemt aan",
        "gesprek beëindigd",
    ]
    positions = [body.index(s) for s in steps]
    assert positions == sorted(positions)
    (entry,) = audit_rows(app, "view-call")
    assert entry.object == f"call:{ids['call']}" and entry.result == "success"


def test_unknown_call_is_404_and_audited_as_denied(app, admin):
    """A call id that does not exist answers 404, recorded as a denied view."""
    assert admin.get("/dashboard/calls/" + "0" * 32).status_code == 404
    (entry,) = audit_rows(app, "view-call")
    assert entry.result == "denied"


def test_csv_export_masks_numbers_and_defuses_formulas(app, admin):
    """The export follows the filters, masks numbers and quotes cells a spreadsheet would run."""
    add_call(app, at=NOW - timedelta(hours=1), outcome="connected")
    add_call(app, at=NOW - timedelta(hours=2), outcome="busy")
    resp = admin.get("/dashboard/calls.csv?outcome=connected")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text(resp)), delimiter=";"))
    assert rows[0][0] == "ontvangen" and len(rows) == 2
    assert rows[1][4] == "connected"
    assert rows[1][7] == "'+31 3 ****0123"
    assert "+31302860123" not in text(resp)
    assert [e.action for e in audit_rows(app, "export")] == ["export"]


@pytest.mark.parametrize(
    "value,expected",
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("svb-aow", "svb-aow"),
        (None, ""),
        (12, "12"),
    ],
)
def test_csv_cells_never_start_a_formula(value, expected):
    """Cells starting with = + - @ or a control character get a leading quote."""
    assert safe_cell(value) == expected


# --------------------------------------------------------------------------- callbacks


def test_supervisor_cancels_a_pending_callback(app, admin):
    """Cancel on the callbacks page ends the request and audits who did it."""
    ids = add_call(
        app, at=NOW - timedelta(hours=1), outcome="callback-requested", callback_state="pending"
    )
    page = admin.get("/dashboard/callbacks")
    assert ids["reference"] in text(page)
    resp = admin.post(
        f"/dashboard/callbacks/{ids['callback']}/cancel",
        data={"csrf_token": csrf_of(text(page))},
        follow_redirects=True,
    )
    assert "geannuleerd" in text(resp)
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        req = s.get(CallbackRequest, ids["callback"])
    assert req.state == "cancelled" and req.outcome == "cancelled-by-supervisor"
    (entry,) = audit_rows(app, "cancel-callback")
    assert entry.actor == "user:beheer@example.nl" and ids["reference"] in entry.object
    done = text(admin.get("/dashboard/callbacks?state=done"))
    assert ids["reference"] in done


def test_supervisor_reschedules_to_the_next_opening(app, admin):
    """Reschedule moves a request to the first moment at or after the given time that the
    line is open (svb-kinderbijslag: weekdays from 08:30)."""
    ids = add_call(
        app,
        at=NOW - timedelta(hours=1),
        target="svb",
        line="svb-kinderbijslag",
        outcome="callback-requested",
        callback_state="pending",
    )
    page = admin.get("/dashboard/callbacks")
    resp = admin.post(
        f"/dashboard/callbacks/{ids['callback']}/reschedule",
        data={"csrf_token": csrf_of(text(page)), "at": "2026-11-28T09:00"},
    )
    assert resp.status_code == 302
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        req = s.get(CallbackRequest, ids["callback"])
    # Saturday 28 November is closed: Monday 30 November 08:30 local.
    assert req.planned_at == datetime(2026, 11, 30, 8, 30, tzinfo=AMS).astimezone(UTC)


# --------------------------------------------------------------------------- figures, live


def test_figures_count_calls_connected_answer_times_callbacks_and_minutes(app, admin):
    """Totals, per day (local) and per line come from the log as it is."""
    day1 = datetime(2026, 11, 23, 9, 0, tzinfo=AMS)
    add_call(app, at=day1, tta=10, minutes_saved=20)
    add_call(app, at=day1 + timedelta(hours=1), tta=20, minutes_saved=19)
    add_call(
        app,
        at=day1 + timedelta(hours=2),
        outcome="no-answer",
        tta=None,
        minutes_saved=None,
        callback_state="pending",
    )
    add_call(
        app,
        at=day1 + timedelta(days=1),
        tta=40,
        minutes_saved=25,
        target="toeslagen",
        line="toeslagen-algemeen",
    )
    from callrouter.dashboard import queries

    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        fig = queries.figures(s, None, svc.directory, day1.date(), day1.date() + timedelta(2))
    assert fig.total.calls == 4 and fig.total.connected == 3 and fig.total.callbacks == 1
    assert fig.total.median_answer_s == 20 and fig.total.minutes_saved == 64
    assert [b.calls for b in fig.periods] == [3, 1, 0]
    by_line = {b.label: b for b in fig.lines}
    assert by_line["SVB: AOW"].calls == 3 and by_line["SVB: AOW"].median_answer_s == 15
    body = text(admin.get("/dashboard/figures?from=2026-11-23&to=2026-11-25"))
    assert "4 gesprekken, 75% verbonden" in body and "<svg" in body
    weekly = text(admin.get("/dashboard/figures?from=2026-11-23&to=2026-11-25&per=week"))
    assert "week 48 (2026)" in weekly


def test_live_view_lists_transfers_in_progress_only(app, admin, moment):
    """The live rows show ringing and talking transfers, not finished ones."""
    active = add_call(
        app,
        at=NOW - timedelta(minutes=3),
        active=True,
        outcome=None,
        target="toeslagen",
        line="toeslagen-algemeen",
    )
    add_call(app, at=NOW - timedelta(minutes=30))
    body = text(admin.get("/dashboard/live/rows"))
    assert "Toeslagen" in body and "in gesprek" in body and body.count("<tr") == 1
    assert active["transfer"]
    page = text(admin.get("/dashboard/live"))
    assert 'aria-live="polite"' in page and "live.js" in page


def test_a_real_call_appears_in_the_dashboard(phone, app, moment):
    """A call placed through the signed webhooks is listed, with its transfer and timeline."""
    from conftest import action_of
    from test_voice_transfer import leg_webhooks, start_transfer

    start_transfer(phone, "31", "1")
    phone.drain()
    leg = phone.twilio.created[0]
    leg_webhooks(phone, leg, "initiated", "ringing")
    root = phone.post(leg["Url"], CallSid=leg["Sid"])
    phone.post(action_of(root), CallSid=leg["Sid"], Digits="1")
    make_user(app, "sup@svb.nl", "supervisor", "svb")
    with app.test_client() as c:
        login(c, "sup@svb.nl")
        body = text(c.get("/dashboard/calls"))
        assert "Gemeente Utrecht" in body and "AOW" in body and "verbonden" in body
        svc = app.extensions["callrouter"]
        with svc.sessions() as s:
            call = s.scalar(select(Call))
        detail = text(c.get(f"/dashboard/calls/{call.id}"))
        assert "professional neemt aan" in detail and "+31 8 ****1001" in detail


# --------------------------------------------------------------------------- API


def test_api_pages_transfers_with_a_cursor(app, client):
    """`limit` and `next_cursor` walk every transfer once, newest first."""
    for i in range(7):
        add_call(app, at=NOW - timedelta(minutes=i))
    token = make_token(app, "bi")
    seen, cursor = [], ""
    for _ in range(10):
        r = client.get(
            f"/api/v1/transfers?limit=3{cursor}", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
        data = r.get_json()
        seen += [t["created_at"] for t in data["data"]]
        if not data["next_cursor"]:
            break
        cursor = f"&cursor={data['next_cursor']}"
    assert len(seen) == 7 and seen == sorted(seen, reverse=True)


def test_api_filters_and_rejects_bad_parameters(app, client):
    """since/until/organisation filter; malformed values get a 400 that says why."""
    add_call(app, at=datetime(2026, 11, 20, 10, 0, tzinfo=AMS))
    add_call(
        app,
        at=datetime(2026, 11, 24, 10, 0, tzinfo=AMS),
        target="toeslagen",
        line="toeslagen-algemeen",
        callback_state="pending",
    )
    token = make_token(app, "bi")
    h = {"Authorization": f"Bearer {token}"}
    r = client.get("/api/v1/transfers?since=2026-11-22", headers=h).get_json()
    assert [t["line"] for t in r["data"]] == ["toeslagen-algemeen"]
    r = client.get("/api/v1/transfers?until=2026-11-22&organisation=svb", headers=h).get_json()
    assert [t["line"] for t in r["data"]] == ["svb-aow"]
    cb = client.get("/api/v1/callbacks?state=open", headers=h).get_json()
    assert len(cb["data"]) == 1 and cb["data"][0]["worker"] == "+31 3 ****0123"
    for q in ("since=gisteren", "limit=0", "limit=9999", "cursor=xyz", "organisation=nope"):
        bad = client.get(f"/api/v1/transfers?{q}", headers=h)
        assert bad.status_code == 400 and bad.get_json()["error"] == "bad_request", q
    assert client.post("/api/v1/transfers", headers=h).status_code == 405


# --------------------------------------------------------------------------- retention


def test_retention_removes_personal_fields_and_keeps_the_figures(app, ctx, moment):
    """Past the period, numbers are gone from calls, legs and finished callbacks; the figures
    over the same days are unchanged."""
    from callrouter import retention
    from callrouter.dashboard import queries

    old = add_call(app, at=NOW - timedelta(days=120), callback_state="done")
    recent = add_call(app, at=NOW - timedelta(days=10))
    svc = app.extensions["callrouter"]
    first, last = (NOW - timedelta(days=130)).date(), NOW.date()
    with svc.sessions() as s:
        before = queries.figures(s, None, svc.directory, first, last).total
    counts = retention.purge()
    nothing = {"calls": 0, "legs": 0, "callbacks": 0, "cases": 0, "consents": 0}
    assert counts == nothing | {"calls": 1, "legs": 1, "callbacks": 1, "ldv_records": 0}
    assert retention.purge() == nothing | {"ldv_records": 0}
    with svc.sessions() as s:
        after = queries.figures(s, None, svc.directory, first, last).total
        gone = s.get(Call, old["call"])
        kept = s.get(Call, recent["call"])
        leg = s.scalar(select(Leg).where(Leg.transfer_id == old["transfer"]))
        cb = s.get(CallbackRequest, old["callback"])
        tr = s.get(Transfer, old["transfer"])
    assert (before.calls, before.connected, before.minutes_saved, before.median_answer_s) == (
        after.calls,
        after.connected,
        after.minutes_saved,
        after.median_answer_s,
    )
    assert gone.from_hmac is None and gone.from_masked is None and gone.purged_at is not None
    assert kept.from_hmac is not None
    assert leg.number_hmac == "" and leg.number_masked == "verwijderd"
    assert cb.worker_number_enc is None and cb.worker_hmac is None and cb.worker_masked is None
    assert tr.minutes_saved == 20.0


def test_open_callbacks_keep_the_number_they_need(app, ctx, moment):
    """A request still waiting keeps the worker's number, however old."""
    from callrouter import retention

    ids = add_call(app, at=NOW - timedelta(days=120), callback_state="pending")
    retention.purge()
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        assert s.get(CallbackRequest, ids["callback"]).worker_number_enc is not None


def test_retention_per_caller_organisation(app, ctx, lines_file, moment):
    """A caller's own `retention_days` in the directory overrides the default."""
    from callrouter import directory as directory_mod
    from callrouter import retention

    text_ = lines_file.read_text().replace(
        '    numbers: ["+31205550100"]\n', '    numbers: ["+31205550100"]\n    retention_days: 30\n'
    )
    assert "retention_days: 30" in text_
    svc = app.extensions["callrouter"]
    svc.directory = directory_mod.loads(text_)
    ams = add_call(app, at=NOW - timedelta(days=40), caller="amsterdam", number="+31205550100")
    utr = add_call(app, at=NOW - timedelta(days=40))
    assert retention.purge()["calls"] == 1
    with svc.sessions() as s:
        assert s.get(Call, ams["call"]).from_hmac is None
        assert s.get(Call, utr["call"]).from_hmac is not None


def test_retention_days_are_validated_in_the_directory():
    """A bad retention_days names the file, line and key path."""
    from callrouter import directory as directory_mod

    bad = (
        "internal_number: '+31880100100'\ncallers:\n  - id: x\n    name: X\n"
        "    code: '0344'\n    numbers: ['+31302860000']\n    retention_days: 0\n"
        "organisations:\n  - id: o\n    name: O\n    lines:\n      - id: l\n"
        "        topic: t\n        numbers: ['+31883001001']\n        hours: '24/7'\n"
    )
    with pytest.raises(directory_mod.DirectoryError) as exc:
        directory_mod.loads(bad, "lines.yaml")
    assert "lines.yaml:7: callers[0].retention_days" in str(exc.value.problems[0])
