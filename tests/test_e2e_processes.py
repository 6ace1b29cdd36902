"""End to end through real processes: `gunicorn app:app`, `python worker.py`, embedded Redis,
and a small Twilio-compatible HTTP server on loopback standing in for Twilio's REST API."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from callrouter import redis_conn
from callrouter.signatures import sign

from fake_twilio import ACCOUNT, FakeTwilio

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "e2e-token-0123456789abcdef01234567"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stack(tmp_path, lines_file):
    api_port, web_port = _port(), _port()
    api = FakeTwilio(api_port)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    public = f"http://127.0.0.1:{web_port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO", "CALLROUTER", "REDIS", "DATABASE"))}
    env.update(CALLROUTER_LINES=str(lines_file), CALLROUTER_INSTANCE=str(tmp_path / "instance"),
               TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN,
               TWILIO_API_BASE_URL=f"http://127.0.0.1:{api_port}", PUBLIC_BASE_URL=public,
               SECRET_KEY="e2e-secret-key-0123456789")
    log = (tmp_path / "procs.log").open("w")
    web = subprocess.Popen([sys.executable, "-m", "gunicorn", "app:app", "--bind",
                            f"127.0.0.1:{web_port}", "--workers", "2"], cwd=ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    worker = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urlopen(public + "/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or web.poll() is not None:
                    raise AssertionError((tmp_path / "procs.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        yield public, api, tmp_path
    finally:
        for p in (web, worker):
            p.terminate()
        for p in (web, worker):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        api.shutdown()
        redis_conn.stop_embedded(tmp_path / "instance")
        log.close()


def _post(public: str, url: str, **params) -> ET.Element:
    url = url if url.startswith("http") else public + url
    req = Request(url, data=urlencode(params).encode(),
                  headers={"X-Twilio-Signature": sign(TOKEN, url, params)})
    with urlopen(req, timeout=15) as resp:
        assert resp.status == 200
        return ET.fromstring(resp.read())


def test_warm_transfer_through_real_processes(stack):
    """Menu, whisper and accept over HTTP; the worker process places the call via the API."""
    public, api, tmp = stack
    worker_number = "+31302860777"
    root = _post(public, "/voice/incoming", CallSid="CAe2e1", From=worker_number)
    root = _post(public, root.find("Gather").get("action"), CallSid="CAe2e1",
                 From=worker_number, Digits="31")
    root = _post(public, root.find("Gather").get("action"), CallSid="CAe2e1",
                 From=worker_number, Digits="1")
    conference = root.find("Dial/Conference").text
    api.wait_for(lambda rs: any(p.endswith("/Calls.json") for _, p, _ in rs))
    _, path, leg = next(r for r in api.requests if r[1].endswith("/Calls.json"))
    assert path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert leg["To"] == "+31883001001" and leg["From"] == "+31880100200"
    assert leg["Url"].startswith(public + "/voice/whisper")
    root = _post(public, leg["Url"], CallSid=leg["_sid"])
    assert "toestemming" in " ".join(s.text for s in root.iter("Say"))
    root = _post(public, root.find("Gather").get("action"), CallSid=leg["_sid"], Digits="1")
    assert root.find("Dial/Conference").text == conference

    # The worker hangs up on a second transfer while it rings: the leg is cancelled.
    root = _post(public, "/voice/incoming", CallSid="CAe2e2", From=worker_number)
    root = _post(public, root.find("Gather").get("action"), CallSid="CAe2e2",
                 From=worker_number, Digits="11")
    root = _post(public, root.find("Gather").get("action"), CallSid="CAe2e2",
                 From=worker_number, Digits="")
    api.wait_for(lambda rs: sum(p.endswith("/Calls.json") for _, p, _ in rs) == 2)
    second = [r for r in api.requests if r[1].endswith("/Calls.json")][1][2]
    _post(public, "/voice/status/call", CallSid="CAe2e2", CallStatus="completed")
    api.wait_for(lambda rs: any(p.endswith(f"/Calls/{second['_sid']}.json")
                                and f.get("Status") == "canceled" for _, p, f in rs))
