"""The supervisors' dashboard in a real headless Chromium (Playwright) against the real service
(`gunicorn app:app`): log in through the form, filter and page the call log, read a call's
timeline, export CSV, cancel a callback, use the keyboard and the live view, log out.
Screenshots of every step are kept in test-artifacts/dashboard-*.png."""

from __future__ import annotations

import csv
import io
import random
import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from callrouter.models import AuditEntry, CallbackRequest, Event

from dashboard_helpers import PASSWORD, add_call, make_user
from procs import Stack, clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TZ = ZoneInfo("Europe/Amsterdam")
SUPERVISOR = "toezicht@utrecht.example.nl"

# (organisation, line, how the call log shows it)
LINES = [
    ("svb", "svb-aow", "SVB: AOW"),
    ("svb", "svb-kinderbijslag", "SVB: kinderbijslag"),
    ("toeslagen", "toeslagen-algemeen", "Belastingdienst/Toeslagen: toeslagen"),
    ("ind", "ind-verblijf", "IND: verblijfsvergunning"),
]
OTHER_OUTCOMES = ["no-answer", "declined", "closed", "menu-failed"]
CSV_HEADER = [
    "ontvangen",
    "gemeente",
    "organisatie",
    "lijn",
    "uitkomst",
    "spoed",
    "toestemming",
    "nummer (gemaskeerd)",
    "wachttijd tot aannemen (s)",
    "minuten bespaard",
    "duur (s)",
]
FULL_NUMBER = re.compile(r"(\+|\b00|\b0)\d[\d ]{7,}\d")  # an unmasked phone number

UNLABELLED_CONTROLS = """() => Array.from(document.querySelectorAll('input, select, textarea'))
  .filter(el => el.type !== 'hidden')
  .filter(el => !el.id || !document.querySelector('label[for="' + CSS.escape(el.id) + '"]'))
  .map(el => el.outerHTML)"""

ROWS = """rows => rows.map(r => ({
  cells: Array.from(r.cells, c => c.innerText.trim()),
  href: (r.querySelector('a') || {getAttribute: () => null}).getAttribute('href')}))"""


@pytest.fixture
def dashboard(tmp_path, lines_file, redis_url, redis_client):
    """The service under gunicorn on a seeded SQLite file; yields what the test needs."""
    from callrouter import create_app

    web = free_port()
    env = clean_env(
        CALLROUTER_ENV="test",
        CALLROUTER_LINES=str(lines_file),
        CALLROUTER_INSTANCE=str(tmp_path / "instance"),
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
        TWILIO_ACCOUNT_SID="AC" + "1" * 32,
        TWILIO_AUTH_TOKEN="dashboard-browser-token-0123456789",
        # Nothing listens there: no call is placed in this test.
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web}",
        SECRET_KEY="dashboard-browser-secret-0123456789",
    )
    app = create_app(environ=env)  # migrates the file; the test reads the DB through it too
    seeded = _seed(app)
    procs = Stack(env, tmp_path / "procs.log")
    try:
        procs.web(web)
        yield {"base": f"http://127.0.0.1:{web}", "app": app, **seeded, "downloads": tmp_path}
    finally:
        procs.stop()
        app.extensions["callrouter"].engine.dispose()


def _seed(app) -> dict:
    """A supervisor of Utrecht; ~75 Utrecht calls over four days (two pages), a pending and a
    finished callback, a transfer in progress, and Amsterdam calls Utrecht may not see."""
    make_user(app, SUPERVISOR, "supervisor", "utrecht")
    now = datetime.now(UTC).replace(microsecond=0)
    rnd = random.Random(20261125)
    calls = []  # (id, outcome, line id, received_at)
    for i in range(72):
        outcome = "connected" if i % 4 != 3 else OTHER_OUTCOMES[(i // 4) % 4]
        target, line, _ = rnd.choice(LINES)
        if outcome == "menu-failed":
            target = line = None
        at = now - timedelta(hours=2, minutes=83 * i)
        ids = add_call(
            app,
            target=target,
            line=line,
            outcome=outcome,
            at=at,
            urgent=i % 5 == 0,
            consent=i % 2 == 0,
            number=f"+3130286{i:04d}",
            tta=float(8 + i % 30) if outcome == "connected" else None,
            minutes_saved=20.0 if outcome == "connected" else None,
            transfer=target is not None,
        )
        calls.append((ids["call"], outcome, line, at))
    # The newest connected call gets webhook events, to interleave in its timeline.
    detail_id, _, _, detail_at = calls[0]
    svc = app.extensions["callrouter"]
    with svc.sessions.begin() as s:
        s.add(
            Event(
                source="call",
                sid="CA" + uuid.uuid4().hex,
                event="ringing",
                call_id=detail_id,
                received_at=detail_at + timedelta(seconds=1),
            )
        )
        s.add(
            Event(
                source="call",
                sid="CA" + uuid.uuid4().hex,
                event="completed",
                call_id=detail_id,
                received_at=detail_at + timedelta(minutes=5, seconds=2),
            )
        )
    at = now - timedelta(minutes=30)
    pending = add_call(
        app,
        outcome="callback-requested",
        line="svb-kinderbijslag",
        at=at,
        tta=None,
        minutes_saved=None,
        callback_state="pending",
        number="+31302860999",
    )
    calls.append((pending["call"], "callback-requested", "svb-kinderbijslag", at))
    at = now - timedelta(days=2, minutes=7)
    done = add_call(
        app,
        outcome="callback-requested",
        at=at,
        tta=None,
        minutes_saved=None,
        callback_state="done",
        number="+31302860998",
    )
    calls.append((done["call"], "callback-requested", "svb-aow", at))
    at = now - timedelta(minutes=3)
    live = add_call(app, outcome=None, at=at, active=True, number="+31302860997")
    calls.append((live["call"], None, "svb-aow", at))
    hidden = [
        add_call(
            app,
            caller="amsterdam",
            target="ind",
            line="ind-verblijf",
            at=now - timedelta(minutes=10 + k),
            number="+31205550100",
        )["call"]
        for k in range(4)
    ]
    return {
        "calls": calls,
        "detail_id": detail_id,
        "pending": pending,
        "done": done,
        "hidden": hidden,
    }


AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_FOUND: dict[str, list] = {}  # page -> axe-core's violations, asserted at the very end
AXE_SEEN: list[tuple[str, int]] = []  # page -> how many rules passed on it


def _shot(page, name: str) -> None:
    """A screenshot of the page as it is, and axe-core's check of it."""
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
    ]
    AXE_SEEN.append((name, len(result["passes"])))
    if found:
        AXE_FOUND[name] = found


def _log_rows(page) -> list[dict]:
    return page.locator("#call-log tbody tr").evaluate_all(ROWS)


def _call_id(href: str) -> str:
    return href.rsplit("/", 1)[-1]


def _no_unlabelled_controls(page) -> None:
    assert page.evaluate(UNLABELLED_CONTROLS) == [], page.url


def test_supervisor_works_through_the_dashboard(dashboard):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: `make test` installs it"
    ARTIFACTS.mkdir(exist_ok=True)
    base = dashboard["base"]
    svc = dashboard["app"].extensions["callrouter"]
    calls = dashboard["calls"]
    connected = [c for c in calls if c[1] == "connected"]
    aow_connected = [c for c in connected if c[2] == "svb-aow"]
    assert len(calls) > 50 and len(connected) > 50 and 0 < len(aow_connected) < 50
    label_in_name: list[str] = []  # WCAG 2.5.3 findings, asserted at the very end

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(
            accept_downloads=True,
            locale="nl-NL",
            viewport={"width": 1280, "height": 900},
            bypass_csp=True,  # for axe-core's script only; the CSP itself is tested elsewhere
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        problems: list[str] = []  # console errors (CSP violations land here), page errors
        # (Chromium asks for /favicon.ico by itself; the pages declare no icon: not theirs.)
        page.on(
            "console",
            lambda m: (
                problems.append(f"console: {m.text} @ {m.location}")
                if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on(
            "response",
            lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
        )

        # 1. Logging in through the form; a page asked for first comes back after it.
        page.goto(base + "/dashboard/calls")
        expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
        expect(page.get_by_role("heading", name="Inloggen")).to_be_visible()
        _no_unlabelled_controls(page)
        page.get_by_label("E-mailadres").fill(SUPERVISOR)
        page.get_by_label("Wachtwoord").fill(PASSWORD)
        _shot(page, "1-login")
        page.get_by_role("button", name="Inloggen").click()
        expect(page).to_have_url(re.compile(r"/dashboard/calls\??$"))
        expect(page.get_by_role("heading", name="Gesprekken")).to_be_visible()
        # The Utrecht CSS, our tokens and our layout are applied (not blocked by the CSP).
        assert "system-ui" in page.evaluate("getComputedStyle(document.body).fontFamily")
        assert (
            page.evaluate(
                "getComputedStyle(document.querySelector("
                "'.utrecht-button--primary-action')).backgroundColor"
            )
            == "rgb(11, 92, 173)"
        )
        cell = page.evaluate(
            "(() => { const s = getComputedStyle(document.querySelector("
            "'#call-log td')); return [s.borderBottomStyle, "
            "s.borderBottomColor]; })()"
        )
        assert cell == ["solid", "rgb(154, 165, 177)"]
        expect(page.locator(".cr-header")).to_contain_text(SUPERVISOR)
        expect(page.locator(".cr-header")).to_contain_text("Gemeente Utrecht")

        # The unfiltered log: newest first, Utrecht's calls only, 50 to a page.
        first = _log_rows(page)
        assert len(first) == 50
        newest = sorted(calls, key=lambda c: c[3], reverse=True)
        assert [_call_id(r["href"]) for r in first] == [c[0] for c in newest[:50]]
        assert all(r["cells"][1] == "Gemeente Utrecht" for r in first)
        assert not set(dashboard["hidden"]) & {_call_id(r["href"]) for r in first}
        _shot(page, "2-calls")

        # 2. Filter on Uitkomst = verbonden; page on with "Oudere gesprekken".
        page.get_by_label("Uitkomst").select_option(label="verbonden")
        page.get_by_role("button", name="Filteren").click()
        expect(page).to_have_url(re.compile(r"outcome=connected"))
        page1 = _log_rows(page)
        assert len(page1) == 50
        assert {r["cells"][3] for r in page1} == {"verbonden"}
        expect(page.get_by_label("Uitkomst")).to_have_value("connected")
        _shot(page, "3-filtered")
        page.get_by_role("link", name="Oudere gesprekken").click()
        expect(page.locator("#call-log caption")).to_contain_text("volgende pagina")
        query = parse_qs(urlparse(page.url).query)
        assert query["outcome"] == ["connected"] and query.get("cursor")
        page2 = _log_rows(page)
        assert {r["cells"][3] for r in page2} == {"verbonden"}
        expect(page.get_by_label("Uitkomst")).to_have_value("connected")
        seen = [_call_id(r["href"]) for r in page1 + page2]
        assert seen == [c[0] for c in sorted(connected, key=lambda c: c[3], reverse=True)]
        expect(page.get_by_role("link", name="Oudere gesprekken")).to_have_count(0)
        _shot(page, "4-filtered-page-2")
        page.get_by_role("link", name="Eerste pagina").click()
        assert [_call_id(r["href"]) for r in _log_rows(page)] == seen[:50]

        # 3. A call's page: the timeline tells the call in Dutch sentences, in time order;
        # the provider's raw events are folded away, for whoever needs them.
        page.locator(f"#call-log a[href$='/{dashboard['detail_id']}']").click()
        expect(page.get_by_role("heading", name=re.compile("^Gesprek van"))).to_be_visible()
        items = page.locator("#timeline li").evaluate_all(
            "lis => lis.map(li => [li.querySelector('time').getAttribute('datetime'), "
            "li.querySelector('time').innerText, li.innerText])"
        )
        stamps = [datetime.fromisoformat(when) for when, _, _ in items]
        assert len(items) >= 7 and stamps == sorted(stamps), items
        for (_, shown, _), stamp in zip(items, stamps, strict=True):
            assert shown == stamp.astimezone(TZ).strftime("%H:%M:%S")
        texts = [text for _, _, text in items]

        def position(what: str) -> int:
            return next(i for i, t in enumerate(texts) if what in t)

        assert position("gesprek binnengekomen") == 0
        assert (
            position("gesprek binnengekomen")
            < position("keuze gemaakt")
            < position("doorverbinden gestart")
            < position("professional gaat over")
            < position("professional neemt aan")
            < position("doorverbinding beëindigd")
            < position("gesprek beëindigd")
            == len(texts) - 1
        )
        assert not any("melding" in t for t in texts), texts
        raw = page.locator("#raw-events")
        expect(raw.locator("li").first).to_be_hidden()  # folded
        raw.locator("summary").click()
        folded = raw.locator("li").all_inner_texts()
        assert "gesprek: gaat over" in folded[0] and "gesprek: beëindigd" in folded[-1], folded
        assert not any(FULL_NUMBER.search(t) or "302860" in t for t in texts), texts
        expect(page.locator(".cr-facts")).to_contain_text("****0000")
        _shot(page, "5-call")
        page.get_by_role("link", name="Terug naar de gesprekken").click()

        # 4. Filter on Lijn and Uitkomst, then export: the CSV holds the same rows, masked.
        page.get_by_label("Lijn").select_option(label="SVB: AOW")
        page.get_by_label("Uitkomst").select_option(label="verbonden")
        page.get_by_role("button", name="Filteren").click()
        expect(page).to_have_url(re.compile(r"line=svb-aow"))
        shown = _log_rows(page)
        assert {r["cells"][2] for r in shown} == {"SVB: AOW"}
        assert {r["cells"][3] for r in shown} == {"verbonden"}
        assert [_call_id(r["href"]) for r in shown] == [
            c[0] for c in sorted(aow_connected, key=lambda c: c[3], reverse=True)
        ]
        with page.expect_download() as info:
            page.get_by_role("link", name="Exporteren (CSV)").click()
        download = info.value
        assert re.fullmatch(r"callrouter-gesprekken-\d{8}-\d{4}\.csv", download.suggested_filename)
        target = dashboard["downloads"] / download.suggested_filename
        download.save_as(target)
        text = target.read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text), delimiter=";"))
        assert rows[0] == CSV_HEADER
        body = rows[1:]
        assert len(body) == len(aow_connected)
        assert {(r[1], r[2], r[3], r[4]) for r in body} == {
            ("utrecht", "svb", "svb-aow", "connected")
        }
        received = [r[0] for r in body]
        expected = [
            c[3].astimezone(TZ).strftime("%Y-%m-%d %H:%M:%S")
            for c in sorted(aow_connected, key=lambda c: c[3], reverse=True)
        ]
        assert received == expected
        assert all(re.fullmatch(r"'\+31 3 \*{4}\d{4}", r[7]) for r in body), body
        assert "302860" not in text and not FULL_NUMBER.search(text), text
        _shot(page, "6-export")

        # 5. Terugbellen: cancel the pending request.
        page.get_by_role("link", name="Terugbellen").click()
        expect(page.get_by_role("heading", name="Terugbelverzoeken")).to_be_visible()
        _no_unlabelled_controls(page)
        reference = dashboard["pending"]["reference"]
        table = page.locator("#callbacks")
        expect(table).to_contain_text(reference)
        expect(table).not_to_contain_text(dashboard["done"]["reference"])  # not open
        buttons = page.locator("#callbacks button")
        expect(buttons).to_have_text(["Annuleren", "Verplaatsen"])
        for b in range(buttons.count()):
            visible = buttons.nth(b).inner_text().strip()
            name = buttons.nth(b).get_attribute("aria-label") or visible
            if visible.lower() not in name.lower():
                label_in_name.append(f"button {visible!r} is named {name!r}")
        _shot(page, "7-callbacks")
        page.locator("#callbacks button", has_text="Annuleren").click()
        flash = page.locator(".cr-flash")
        expect(flash).to_have_text(f"Terugbelverzoek {reference} is geannuleerd.")
        expect(flash).to_have_attribute("role", "status")
        expect(page.locator("#callbacks")).not_to_contain_text(reference)
        _shot(page, "8-cancelled")
        with svc.sessions() as s:
            row = s.get(CallbackRequest, dashboard["pending"]["callback"])
            assert (row.state, row.outcome) == ("cancelled", "cancelled-by-supervisor")
            assert row.done_at is not None
            audit = s.scalars(
                select(AuditEntry).where(AuditEntry.action == "cancel-callback")
            ).one()
            assert (audit.actor, audit.result, audit.object) == (
                f"user:{SUPERVISOR}",
                "success",
                f"callback:{reference}",
            )
        page.get_by_role("link", name="Afgehandeld").click()
        expect(page.locator("#callbacks")).to_contain_text(reference)
        expect(page.locator("#callbacks tr", has_text=reference)).to_contain_text("geannuleerd")

        # 6. Keyboard: the skip link is the first Tab stop and moves focus to main.
        page.get_by_role("link", name="Gesprekken").click()
        expect(page.get_by_role("heading", name="Gesprekken")).to_be_visible()
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "[document.activeElement.className, "
            "document.activeElement.innerText, "
            "document.activeElement.getBoundingClientRect().left]"
        )
        assert "skip-link" in focused[0] and focused[1] == "Naar de inhoud"
        assert focused[2] >= 0, "the focused skip link is off screen"
        _shot(page, "9-skip-link")
        page.keyboard.press("Enter")
        page.wait_for_function("document.activeElement && document.activeElement.id === 'inhoud'")
        assert page.evaluate("document.activeElement.tagName") == "MAIN"
        _no_unlabelled_controls(page)
        page.get_by_role("link", name="Cijfers").click()
        expect(page.get_by_role("heading", name="Cijfers")).to_be_visible()
        _no_unlabelled_controls(page)

        # The live view: its table, a refresh every 5 s (fake timers), and Pauzeren.
        page.clock.install()
        page.get_by_role("link", name="Nu bezig").click()
        live = page.locator("#live")
        expect(live).to_be_visible()
        expect(page.locator("#live-rows tr")).to_have_count(1)
        expect(page.locator("#live-rows")).to_contain_text("in gesprek")
        expect(page.locator("#live-rows")).to_contain_text("SVB: AOW")
        toggle = page.get_by_role("button", name="Pauzeren")
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-pressed", "false")
        with page.expect_response(lambda r: "/dashboard/live/rows" in r.url) as refreshed:
            page.clock.run_for(5_100)
        assert refreshed.value.status == 200
        expect(page.locator("#live-rows tr")).to_have_count(1)
        toggle.click()
        expect(page.locator("#live-toggle")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#live-toggle")).to_have_text("Hervatten")
        polled: list[str] = []
        page.on("request", lambda r: polled.append(r.url) if "/live/rows" in r.url else None)
        page.clock.run_for(15_000)
        page.wait_for_timeout(300)
        assert polled == [], "the paused live view still refreshed"
        _shot(page, "10-live-paused")
        page.locator("#live-toggle").click()
        expect(page.locator("#live-toggle")).to_have_attribute("aria-pressed", "false")
        expect(page.locator("#live-toggle")).to_have_text("Pauzeren")

        # 7. Log out: the login page; neither Back nor the URL brings the log back.
        page.get_by_role("button", name="Uitloggen").click()
        expect(page).to_have_url(re.compile(r"/dashboard/login$"))
        expect(page.get_by_role("heading", name="Inloggen")).to_be_visible()
        expect(page.get_by_role("button", name="Uitloggen")).to_have_count(0)
        _shot(page, "11-logged-out")
        page.go_back()
        expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
        expect(page.locator("#live")).to_have_count(0)
        page.goto(base + "/dashboard/calls")
        expect(page).to_have_url(re.compile(r"/dashboard/login\?next="))
        assert parse_qs(urlparse(page.url).query)["next"] == ["/dashboard/calls?"]
        expect(page.locator("#call-log")).to_have_count(0)
        browser.close()

    assert problems == [], problems
    # WCAG 2.5.3 (Label in Name, level A): a button's accessible name contains its visible
    # text, so a speech user who says what they see reaches it.
    assert label_in_name == [], label_in_name
    assert AXE_FOUND == {}, AXE_FOUND  # axe-core: no violation on any page it saw
    assert len(AXE_SEEN) >= 8 and all(passed > 10 for _, passed in AXE_SEEN), AXE_SEEN


def _a_case(app, call_id: str) -> str:
    """A case of Utrecht with a step, a consent and the call's transfer on it."""
    from callrouter.models import Call, Case, CaseStep, Consent, Transfer

    svc = app.extensions["callrouter"]
    now = datetime.now(UTC)
    case_id = uuid.uuid4().hex
    with svc.sessions.begin() as s:
        s.add(
            Case(
                id=case_id,
                reference="1234566",
                caller_org="utrecht",
                call_id=call_id,
                worker_masked="+31 3 ****0123",
                state="open",
                opened_at=now,
                updated_at=now,
            )
        )
        s.add(
            CaseStep(
                id=uuid.uuid4().hex,
                case_id=case_id,
                position=0,
                line_id="svb-aow",
                target_org="svb",
                state="done",
                updated_at=now,
            )
        )
        s.add(
            Consent(
                id=uuid.uuid4().hex,
                case_id=case_id,
                target_org="svb",
                choice="case",
                recorded_at=now,
                recorded_by_org="utrecht",
            )
        )
        s.get(Call, call_id).case_id = case_id
        for tr in s.scalars(select(Transfer).where(Transfer.call_id == call_id)):
            tr.case_id = case_id
    return case_id


def test_every_page_passes_axe_core(dashboard):
    """An administrator opens every page of the dashboard, the subject view and an unknown
    path included: axe-core (from npm) finds no violation on any of them."""
    from playwright.sync_api import sync_playwright

    app, base = dashboard["app"], dashboard["base"]
    make_user(app, "beheer@gemeente.example.nl", "admin")
    call_id = next(c[0] for c in dashboard["calls"] if c[1] == "connected")
    case_id = _a_case(app, call_id)
    seen: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            locale="nl-NL", viewport={"width": 1280, "height": 900}, bypass_csp=True
        )
        page = context.new_page()
        page.goto(base + "/dashboard/login")
        page.get_by_label("E-mailadres").fill("beheer@gemeente.example.nl")
        page.get_by_label("Wachtwoord").fill(PASSWORD)
        page.get_by_role("button", name="Inloggen").click()
        page.wait_for_url(re.compile(r"/dashboard/calls"))
        for path in (
            "/dashboard/calls",
            f"/dashboard/calls/{call_id}",
            "/dashboard/cases",
            f"/dashboard/cases/{case_id}",
            "/dashboard/callbacks",
            "/dashboard/figures",
            "/dashboard/network",
            "/dashboard/live",
            "/dashboard/privacy/subject",
            "/dashboard/no-such-page",
        ):
            page.goto(base + path)
            _shot(page, "axe-" + path.strip("/").replace("/", "-")[:40])
            seen.append(path)
        page.goto(base + "/dashboard/privacy/subject")
        page.get_by_label("Telefoonnummer").fill("+31302860123")
        page.get_by_role("button", name="Zoeken").click()
        page.get_by_role("heading", name=re.compile("gegevens over dit nummer")).wait_for()
        _shot(page, "axe-subject-found")
        browser.close()
    found = {k: v for k, v in AXE_FOUND.items() if k.startswith("axe-")}
    assert found == {}, found
    assert len(seen) == 10
