"""A forking RQ worker (`python worker.py`) killed with SIGKILL in the middle of a call-back
job: the job may run again, but the professional is called once per attempt."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from callrouter import callbacks, create_app
from callrouter.models import Call, CallbackRequest

from fake_twilio import ACCOUNT, FakeTwilio

ROOT = Path(__file__).resolve().parent.parent

ALWAYS = """\
internal_number: "+31880100100"
callers:
  - id: utrecht
    name: Gemeente Utrecht
    code: "0344"
    numbers: ["+3130286*"]
    hours: "24/7"
organisations:
  - id: svb
    name: SVB
    digit: 3
    lines:
      - id: svb-aow
        topic: AOW
        digit: 1
        numbers: ["+31883001001"]
        open_on_holidays: true
        hours: "24/7"
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def setup(tmp_path, redis_url, redis_client):
    lines = tmp_path / "lines.yaml"
    lines.write_text(ALWAYS)
    api = FakeTwilio(_port())
    threading.Thread(target=api.serve_forever, daemon=True).start()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TWILIO", "CALLROUTER", "REDIS", "DATABASE"))
    }
    env.update(
        CALLROUTER_ENV="test",
        CALLROUTER_LINES=str(lines),
        CALLROUTER_INSTANCE=str(tmp_path / "instance"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'cb.db'}",
        REDIS_URL=redis_url,
        TWILIO_ACCOUNT_SID=ACCOUNT,
        TWILIO_AUTH_TOKEN="kill-token-0123456789abcdef",
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{api.server_address[1]}",
        PUBLIC_BASE_URL="https://callrouter.example.test",
        SECRET_KEY="kill-secret-0123456789abcdef",
    )
    app = create_app(environ=env)
    procs: list[subprocess.Popen] = []

    def start_worker():
        p = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=env,
            stdout=(tmp_path / f"worker{len(procs)}.log").open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(p)
        return p

    yield app, api, start_worker
    api.release.set()
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    api.shutdown()


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _request(app) -> str:
    svc = app.extensions["callrouter"]
    at = datetime.now(UTC)
    with app.app_context(), svc.sessions.begin() as s:
        s.add(
            Call(
                id="c" * 32,
                call_sid="CAkill1",
                received_at=at,
                caller_org="utrecht",
                urgent=False,
                consent=False,
            )
        )
        s.flush()
        req, _ = callbacks.create(
            s,
            call_id="c" * 32,
            transfer_id=None,
            caller_org="utrecht",
            line_id="svb-aow",
            urgent=False,
            consent=False,
            reason="closed",
            worker_number="+31302860123",
            at=at,
        )
        return req.id


def _state(app, request_id):
    with app.extensions["callrouter"].sessions() as s:
        return s.get(CallbackRequest, request_id)


def test_sigkill_mid_job_places_one_call(setup):
    """Kill the worker while its REST request is in flight; restart; one call per attempt."""
    app, api, start_worker = setup
    api.hold_calls.set()
    request_id = _request(app)
    with app.app_context():
        assert callbacks.schedule(request_id)
    first = start_worker()
    deadline = time.monotonic() + 30
    while not api.calls_created():
        assert time.monotonic() < deadline, "the worker never called the API"
        time.sleep(0.1)
    assert _state(app, request_id).state == "dialling"
    # The worker and its work horse (RQ forks it into a session of its own), mid-request.
    horses = _children(first.pid)
    assert horses, "the job should be running in a forked work horse"
    for pid in [*horses, first.pid]:
        os.kill(pid, signal.SIGKILL)
    first.wait(timeout=10)
    api.release.set()

    start_worker()  # sweeps at start; RQ may hand the abandoned job out again
    time.sleep(6)
    with app.app_context():
        callbacks.run_due(request_id, 1)  # a redelivery of the same job, for certain
        callbacks.sweep()
    assert len(api.calls_created()) == 1
    req = _state(app, request_id)
    # Killed before the REST answer came back: no call SID was ever stored.
    assert req.state == "dialling" and req.attempts == 1 and req.call_sid is None

    # Once the attempt is stale the sweeper closes it as lost and plans the next attempt
    # later; it does not repeat the lost attempt.
    with app.extensions["callrouter"].sessions.begin() as s:
        s.execute(
            update(CallbackRequest).values(
                last_attempt_at=datetime.now(UTC) - timedelta(minutes=10)
            )
        )
    with app.app_context():
        assert callbacks.sweep()["stale"] == 1
    req = _state(app, request_id)
    assert req.state == "pending" and req.outcome == "lost" and req.attempts == 1
    assert req.planned_at > datetime.now(UTC) + timedelta(minutes=5)
    time.sleep(2)
    assert len(api.calls_created()) == 1
    with app.extensions["callrouter"].sessions() as s:
        assert s.scalar(select(CallbackRequest.attempts)) == 1
