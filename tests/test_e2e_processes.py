"""End to end through real processes: `gunicorn app:app`, `python worker.py`, embedded Redis,
and a small Twilio-compatible HTTP server on loopback standing in for Twilio's REST API."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from callrouter import redis_conn
from callrouter.signatures import sign

from fake_twilio import ACCOUNT, FakeTwilio
from procs import Stack, clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "e2e-token-0123456789abcdef01234567"


@pytest.fixture
def stack(tmp_path, lines_file):
    api_port, web_port = free_port(), free_port()
    api = FakeTwilio(api_port)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    public = f"http://127.0.0.1:{web_port}"
    env = clean_env(
        CALLROUTER_LINES=str(lines_file),
        CALLROUTER_INSTANCE=str(tmp_path / "instance"),
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN=TOKEN,
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{api_port}",
        PUBLIC_BASE_URL=public,
        SECRET_KEY="e2e-secret-key-0123456789",
    )
    procs = Stack(env, tmp_path / "procs.log")
    try:
        procs.web(web_port)  # on the embedded Redis of its own instance folder
        procs.worker()
        yield public, api, tmp_path
    finally:
        procs.stop()
        api.shutdown()
        redis_conn.stop_embedded(tmp_path / "instance")


def _post(public: str, url: str, **params) -> ET.Element:
    url = url if url.startswith("http") else public + url
    req = Request(
        url,
        data=urlencode(params).encode(),
        headers={"X-Twilio-Signature": sign(TOKEN, url, params)},
    )
    with urlopen(req, timeout=15) as resp:
        assert resp.status == 200
        return ET.fromstring(resp.read())


def test_warm_transfer_through_real_processes(stack):
    """Menu, whisper and accept over HTTP; the worker process places the call via the API."""
    public, api, tmp = stack
    worker_number = "+31302860777"
    root = _post(public, "/voice/incoming", CallSid="CAe2e1", From=worker_number)
    root = _post(
        public, root.find("Gather").get("action"), CallSid="CAe2e1", From=worker_number, Digits="31"
    )
    root = _post(
        public, root.find("Gather").get("action"), CallSid="CAe2e1", From=worker_number, Digits="1"
    )
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
    root = _post(
        public, root.find("Gather").get("action"), CallSid="CAe2e2", From=worker_number, Digits="11"
    )
    root = _post(
        public, root.find("Gather").get("action"), CallSid="CAe2e2", From=worker_number, Digits=""
    )
    api.wait_for(lambda rs: sum(p.endswith("/Calls.json") for _, p, _ in rs) == 2)
    second = [r for r in api.requests if r[1].endswith("/Calls.json")][1][2]
    _post(public, "/voice/status/call", CallSid="CAe2e2", CallStatus="completed")
    api.wait_for(
        lambda rs: any(
            p.endswith(f"/Calls/{second['_sid']}.json") and f.get("Status") == "canceled"
            for _, p, f in rs
        )
    )
