"""The sandbox page in a real headless Chromium (Playwright): a whole warm transfer with the
citizen added and handed over, clicked through by a person. Screenshots are kept in
test-artifacts/."""

from __future__ import annotations

import secrets
import shutil
import threading
from pathlib import Path

import pytest

from callrouter import directory as directory_mod
from callrouter.sandbox.script import SANDBOX_ACCOUNT
from callrouter.sandbox.server import create_sandbox_app

from procs import Stack, clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


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
    app = create_sandbox_app(
        f"http://127.0.0.1:{web}",
        token,
        SANDBOX_ACCOUNT,
        directory_mod.load(lines_file),
        call_log=service_call_log(service.extensions["callrouter"]),
    )
    server = make_server("127.0.0.1", sb, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{sb}"
    app.extensions["callrouter.sandbox.driver"].stop.set()
    server.shutdown()
    procs.stop()


def test_warm_transfer_clicked_through_in_the_browser(stack):
    """Dial, key the line, the professional answers and accepts, the citizen is added and the
    worker hands over; every step is visible on the page."""
    from playwright.sync_api import expect, sync_playwright

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
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(stack + "/sandbox")
        expect(page.get_by_role("heading", name="callrouter sandbox")).to_be_visible()
        # NL Design System: the Utrecht component CSS with callrouter's neutral tokens.
        assert (
            page.evaluate("getComputedStyle(document.querySelector('#dial')).backgroundColor")
            == "rgb(11, 92, 173)"
        )
        page.select_option("#from", label="Gemeente Utrecht (+31687654321)")
        page.click("#dial")
        desk = page.locator("#desk-transcript")
        expect(desk).to_contain_text("Welkom bij de professionallijn")
        page.fill("#keys", "31")
        page.click("#send-keys")
        expect(desk).to_contain_text("toestemming")
        page.click("[data-key='1']")  # the citizen consents; then it connects
        page.get_by_role("button", name="Opnemen +31883001001").click()
        page.get_by_role("button", name="1: aannemen").click()
        others = page.locator("#other-transcript")
        expect(others).to_contain_text("De inwoner geeft toestemming")
        expect(others).to_contain_text("U wordt nu verbonden")
        log = page.locator("#log-rows")
        expect(log).to_contain_text("svb-aow")
        expect(log).to_contain_text("connected")
        expect(log).to_contain_text("+31 6 ****4321")  # masked, never the number in clear
        page.screenshot(path=str(ARTIFACTS / "sandbox-connected.png"), full_page=True)

        page.click("[data-key='*']")
        expect(desk).to_contain_text("inwoner aan het gesprek toe te voegen")
        page.click("[data-key='1']")
        expect(desk).to_contain_text("telefoonnummer van de inwoner")
        page.fill("#keys", "0612345678#")
        page.click("#send-keys")
        expect(desk).to_contain_text("De inwoner wordt gebeld")
        expect(page.locator("#calls")).to_contain_text("+31612345678")
        page.click("[data-key='*']")
        page.wait_for_timeout(500)
        page.click("[data-key='2']")
        expect(desk).to_contain_text("U heeft het gesprek overgedragen")
        page.screenshot(path=str(ARTIFACTS / "sandbox-handed-over.png"), full_page=True)
        browser.close()
