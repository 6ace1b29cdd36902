"""The sandbox page in a real headless Chromium (Playwright), played only by clicking and
typing at a person's pace (a pause of 7 s before each key): a warm transfer with the citizen
added and handed over, a life-event chain whose first professional hangs up from the page,
and the way back from a professional's staff number. axe-core (from npm) checks the page.
Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from callrouter import directory as directory_mod
from callrouter.sandbox.script import SANDBOX_ACCOUNT
from callrouter.sandbox.server import create_sandbox_app

from procs import Stack, clean_env, free_port
from test_cases import write_cases_directory

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# A person reads what was said before pressing a key.
PACE_MS = int(os.environ.get("CALLROUTER_BROWSER_PACE_MS", "7000"))
DESK = "Gemeente Utrecht (+31687654321)"
AOW_1 = "+31883001001"


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory, pin_hash):
    """The directory with staff numbers (the way back) and a life event."""
    return write_cases_directory(tmp_path_factory, pin_hash)


@pytest.fixture
def stack(tmp_path, lines_file, redis_url, redis_client):
    from werkzeug.serving import make_server

    from callrouter import create_app
    from callrouter.sandbox.server import service_call_log

    web, sb = free_port(), free_port()
    token = secrets.token_hex(16)
    env = clean_env(
        CALLROUTER_ENV="test",
        CALLROUTER_LINES=str(lines_file),
        CALLROUTER_INSTANCE=str(tmp_path / "instance"),
        REDIS_URL=redis_url,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
        TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT,
        TWILIO_AUTH_TOKEN=token,
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{sb}/sandbox/api",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web}",
        SECRET_KEY="browser-secret-0123456789",
    )
    procs = Stack(env, tmp_path / "procs.log")
    procs.web(web)
    procs.worker()
    service = create_app(environ=env)  # to read the same call log as the running service
    svc = service.extensions["callrouter"]
    app = create_sandbox_app(
        f"http://127.0.0.1:{web}",
        token,
        SANDBOX_ACCOUNT,
        directory_mod.load(lines_file),
        call_log=service_call_log(svc),
    )
    server = make_server("127.0.0.1", sb, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{sb}", svc
    app.extensions["callrouter.sandbox.driver"].stop.set()
    server.shutdown()
    procs.stop()


@pytest.fixture
def page(stack):
    from playwright.sync_api import expect, sync_playwright

    # What the page shows next may wait for the worker process (a leg is placed by a job):
    # on a loaded machine that takes longer than expect's 5 s.
    expect.set_options(timeout=30_000)

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: `make test` installs it"
    ARTIFACTS.mkdir(exist_ok=True)
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
        page = browser.new_page(viewport={"width": 1320, "height": 1000})
        page.set_default_timeout(45_000)
        page.goto(stack[0] + "/sandbox")
        yield page
        browser.close()


def person(page, action, *args) -> None:
    """What a person does, after reading what was said."""
    page.wait_for_timeout(PACE_MS)
    action(*args)


def desk_key(page, key: str) -> None:
    person(page, page.click, f"[data-key='{key}']")


def desk_keys(page, keys: str) -> None:
    page.fill("#keys", keys)
    person(page, page.click, "#send-keys")


def party(page, number: str):
    return page.locator(
        ".party", has=page.get_by_role("heading", name=re.compile(re.escape(number)))
    )


def party_key(page, number: str, key: str) -> None:
    person(page, party(page, number).get_by_role("button", name=f"{key} ({number})").click)


def check_axe(page, name: str) -> None:
    """axe-core: no violation of any rule it runs, on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]]
    assert found == [], (name, found)


def test_warm_transfer_with_handover_at_a_persons_pace(page, stack):
    """Dial, key the line and the consent, the professional answers and accepts by hand, the
    citizen is added and the worker hands over: every step in Dutch, in its own transcript."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="callrouter sandbox")).to_be_visible()
    check_axe(page, "sandbox (idle)")
    page.select_option("#from", label=DESK)
    page.click("#dial")
    desk = page.locator("#desk-transcript")
    expect(desk).to_contain_text("Welkom bij de professionallijn")
    expect(desk.locator("li.waiting")).to_contain_text("wacht op een toets")
    desk_keys(page, "31")
    expect(desk).to_contain_text("toestemming")
    desk_key(page, "1")  # the citizen consents to discussing the case
    prof = party(page, AOW_1)
    expect(prof).to_contain_text("gaat over")
    person(page, prof.get_by_role("button", name=f"Opnemen {AOW_1}").click)
    expect(prof).to_contain_text("De inwoner geeft toestemming")
    party_key(page, AOW_1, "1")
    expect(prof).to_contain_text("U wordt nu verbonden")
    expect(prof).to_contain_text("in gesprek")
    log = page.locator("#log-rows")
    expect(log).to_contain_text("SVB: AOW")
    expect(log).to_contain_text("verbonden")
    expect(log).to_contain_text("+31 6 ****4321")  # masked, never the number in clear
    check_axe(page, "sandbox (connected)")
    page.screenshot(path=str(ARTIFACTS / "sandbox-connected.png"), full_page=True)

    desk_key(page, "*")
    expect(desk).to_contain_text("inwoner aan het gesprek toe te voegen")
    desk_key(page, "1")
    expect(desk).to_contain_text("telefoonnummer van de inwoner")
    desk_keys(page, "0612345678#")
    expect(desk).to_contain_text("De inwoner wordt gebeld")
    expect(party(page, "+31612345678")).to_contain_text("in gesprek")  # it answered by itself
    desk_key(page, "*")
    desk_key(page, "2")
    expect(desk).to_contain_text("U heeft het gesprek overgedragen")
    for status in ("in-progress", "ringing", "completed", "connected"):
        assert status not in page.locator("main").inner_text()
    page.screenshot(path=str(ARTIFACTS / "sandbox-handed-over.png"), full_page=True)


def test_chain_whose_professional_hangs_up_from_the_page(page, stack):
    """A life event: step 1's professional accepts and later hangs up on the page; the worker
    says how it went, hears step 2 and stops the chain. A reload keeps control of the call."""
    from playwright.sync_api import expect

    page.select_option("#from", label=DESK)
    page.click("#dial")
    desk = page.locator("#desk-transcript")
    expect(desk).to_contain_text("Welkom bij de professionallijn")
    desk_key(page, "0")
    expect(desk).to_contain_text("opname in een verpleeghuis")
    desk_key(page, "1")
    expect(desk).to_contain_text("Stap 1 van 3")
    page.reload()  # the page comes back with the call it was playing
    desk = page.locator("#desk-transcript")
    expect(desk).to_contain_text("Stap 1 van 3")
    desk_key(page, "1")
    prof = party(page, AOW_1)
    person(page, prof.get_by_role("button", name=f"Opnemen {AOW_1}").click)
    expect(prof).to_contain_text("Stap 1 van 3")
    party_key(page, AOW_1, "1")
    expect(prof).to_contain_text("in gesprek")
    page.screenshot(path=str(ARTIFACTS / "sandbox-chain-step-1.png"), full_page=True)
    person(page, prof.get_by_role("button", name=f"Ophangen {AOW_1}").click)
    expect(prof).to_contain_text("beëindigd")
    expect(desk.locator("li.waiting")).to_contain_text("Hoe is het gegaan?")
    desk_key(page, "1")  # resolved
    expect(desk).to_contain_text("Stap 2 van 3")
    desk_key(page, "0")  # stop the chain here
    person(page, page.click, "#hangup")
    expect(page.locator("#desk-status")).to_contain_text("beëindigd")
    page.screenshot(path=str(ARTIFACTS / "sandbox-chain-stopped.png"), full_page=True)


def test_way_back_from_a_staff_number(page, stack):
    """A professional of the SVB calls the internal number from the page with the case's
    reference; the worker's phone rings, the worker accepts by hand and both talk."""
    from playwright.sync_api import expect

    from callrouter.models import Case

    base, svc = stack
    page.select_option("#from", label=DESK)
    page.click("#dial")
    desk = page.locator("#desk-transcript")
    expect(desk).to_contain_text("Welkom bij de professionallijn")
    desk_keys(page, "31")
    expect(desk).to_contain_text("Uw zaaknummer is")
    person(page, page.click, "#hangup")
    expect(page.locator("#desk-status")).to_contain_text("beëindigd")
    with svc.sessions() as s:
        reference = s.scalars(select(Case.reference)).one()

    page.select_option("#from", label="Professional van SVB (+31883000000)")
    page.click("#dial")
    expect(desk).not_to_contain_text("Uw zaaknummer")  # a new call, a new transcript
    expect(desk).to_contain_text("Toets het zaaknummer")
    desk_keys(page, reference)
    worker = party(page, "+31687654321")
    expect(worker).to_contain_text("De S V B belt over zaak")
    party_key(page, "+31687654321", "1")
    expect(worker).to_contain_text("in gesprek")
    check_axe(page, "sandbox (way back)")
    page.screenshot(path=str(ARTIFACTS / "sandbox-way-back.png"), full_page=True)
