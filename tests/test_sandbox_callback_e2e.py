"""A callback end to end through real processes (gunicorn, `worker.py`, the sandbox server):
requested on a closed line, it fires at the next opening once the test moves the sandbox
clock there, and connects the professional and the worker."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from callrouter import directory as directory_mod
from callrouter.flows import callback as cflow
from callrouter.sandbox import SANDBOX_ACCOUNT
from callrouter.sandbox.server import create_sandbox_app

from conftest import WORKER
from procs import Stack, clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent


def _next_wednesday_evening(d) -> datetime:
    """A Wednesday 20:00 in Amsterdam, in the future (the clock only moves forward)."""
    local = datetime.now(UTC).astimezone(d.tz) + timedelta(days=1)
    while local.weekday() != 2:
        local += timedelta(days=1)
    return local.replace(hour=20, minute=0, second=0, microsecond=0)


def _wait(predicate, what: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_callback_fires_at_next_opening(tmp_path, lines_file, redis_url, redis_client):
    """Closed line -> callback request -> clock to the opening -> professional, then worker."""
    from werkzeug.serving import make_server

    from callrouter import clock

    d = directory_mod.load(lines_file)
    web, sb = free_port(), free_port()
    token = secrets.token_hex(16)
    instance = tmp_path / "instance"
    instance.mkdir()
    clock_file = instance / "sandbox-clock"
    evening = _next_wednesday_evening(d)
    clock.skip_to(evening, clock_file)  # the service starts on Wednesday evening
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = clean_env(
        CALLROUTER_ENV="test",
        CALLROUTER_LINES=str(lines_file),
        CALLROUTER_INSTANCE=str(instance),
        REDIS_URL=redis_url,
        DATABASE_URL=db_url,
        TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT,
        TWILIO_AUTH_TOKEN=token,
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{sb}/sandbox/api",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{web}",
        SECRET_KEY="e2e-cb-secret-0123456789",
    )
    procs = Stack(env, tmp_path / "procs.log")
    procs.web(web)
    procs.worker()

    def after_clock():
        from redis import Redis
        from rq import Queue

        from callrouter import callbacks

        Queue("default", connection=Redis.from_url(redis_url)).enqueue(callbacks.sweep)

    app = create_sandbox_app(
        f"http://127.0.0.1:{web}",
        token,
        SANDBOX_ACCOUNT,
        d,
        clock_file=clock_file,
        after_clock=after_clock,
    )
    server = make_server("127.0.0.1", sb, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{sb}"
    engine = create_engine(db_url)
    try:
        sandbox = app.extensions["callrouter.sandbox"]
        lock = app.extensions["callrouter.sandbox.lock"]

        def said(fragment):  # under the driver's lock: it changes the calls meanwhile
            with lock:
                return any(fragment in t for _, t in sandbox.transcript)

        def calls():
            with lock:
                return list(sandbox.calls.values())

        sid = requests.post(base + "/sandbox/dial", data={"from": WORKER}).json()["sid"]
        _wait(lambda: said("Kies de organisatie"), "the menu")
        requests.post(base + "/sandbox/input", data={"sid": sid, "value": "32"})
        _wait(lambda: said("is nu gesloten"), "the closed line")
        requests.post(base + "/sandbox/input", data={"sid": sid, "value": "1"})
        _wait(lambda: said("terugbelverzoek is genoteerd"), "the callback request")
        opening = cflow.plan(d, d.line("svb-kinderbijslag"), d.caller("utrecht"), evening)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT state, planned_at FROM callback_requests")).one()
        assert row.state == "pending"
        assert datetime.fromisoformat(str(row.planned_at)).replace(tzinfo=UTC) == opening

        # Nothing rings before its time.
        time.sleep(2)
        assert not [c for c in calls() if c.direction != "inbound"]
        requests.post(base + "/sandbox/clock", data={"to": opening.isoformat()})
        _wait(
            lambda: any(c.to == "+31883002001" and c.status == "ringing" for c in calls()),
            "the professional's phone",
        )
        prof = next(c for c in calls() if c.to == "+31883002001")
        requests.post(base + "/sandbox/answer", data={"sid": prof.sid, "how": "answer"})
        _wait(lambda: said("Terugbelverzoek van de professionallijn"), "the callback whisper")
        requests.post(base + "/sandbox/input", data={"sid": prof.sid, "value": "1"})

        def talking():
            with lock:
                worker = [
                    c
                    for c in sandbox.calls.values()
                    if c.to == WORKER and c.direction != "inbound" and c.conference
                ]
                if not worker:
                    return False
                conf = sandbox.conferences[worker[0].conference]
                return conf.started and prof.sid in conf.members and len(conf.members) == 2

        _wait(talking, "the professional and the worker in one started conference")
        _wait(lambda: _state(engine) == "connected", "the callback connected")
    finally:
        app.extensions["callrouter.sandbox.driver"].stop.set()
        server.shutdown()
        procs.stop()
        engine.dispose()


def _state(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT state FROM callback_requests")).scalar()
