"""The sandbox as a server of its own: the REST subset, and `/sandbox`, phones in the browser.

`make run` starts it beside the service when no Twilio credentials are set: the service talks
to it through `TWILIO_API_BASE_URL`, and it reaches the service's webhooks over HTTP like
Twilio. A driver thread advances the calls and times out prompts nobody answers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import urlencode

import requests
from flask import Flask, jsonify, render_template, request

from callrouter.sandbox import api, verbs
from callrouter.sandbox.provider import Fetch, Sandbox
from callrouter.signatures import sign

ROOT = Path(__file__).resolve().parent.parent.parent
STATIC = Path(__file__).resolve().parent.parent / "static"
UTRECHT_CSS = ROOT / "node_modules" / "@utrecht" / "component-library-css" / "dist"


class Driver:
    """Advances the sandbox in the background; Gathers time out as their `timeout` says."""

    def __init__(self, sandbox: Sandbox, lock: threading.Lock, ring_timeout: float = 20):
        self.sandbox, self.lock = sandbox, lock
        self.waiting_since: dict[str, float] = {}
        self.ringing_since: dict[str, float] = {}
        self.ring_timeout = ring_timeout
        self.stop = threading.Event()

    def loop(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                try:
                    self.tick(time.monotonic())
                except Exception:  # a sandbox must keep running for the page
                    import logging

                    logging.getLogger(__name__).exception("sandbox step failed")
            self.stop.wait(0.15)

    def tick(self, now: float) -> None:
        self.sandbox.run()
        for call in self.sandbox.calls.values():
            if call.ended:
                continue
            gather = call.verbs[0] if call.verbs and verbs.is_gather(call.verbs[0]) else None
            if gather is None:
                self.waiting_since.pop(call.sid, None)
            else:
                since = self.waiting_since.setdefault(call.sid, now)
                if now - since > float(gather.get("timeout") or 5):
                    self.sandbox.timeout(call.sid)
                    self.waiting_since.pop(call.sid, None)
            if call.status == "ringing" and call.direction != "inbound":
                since = self.ringing_since.setdefault(call.sid, now)
                if now - since > min(call.timeout, self.ring_timeout):
                    self.sandbox.answer(call.sid, "no-answer")


def service_call_log(svc, limit: int = 15):
    """The service's newest calls as the page shows them (masked numbers only)."""

    def rows():
        from sqlalchemy import select

        from callrouter.models import Call

        with svc.sessions() as s:
            calls = s.scalars(select(Call).order_by(Call.received_at.desc()).limit(limit)).all()
        tz = svc.directory.tz
        return [
            {
                "time": c.received_at.astimezone(tz).strftime("%H:%M:%S"),
                "caller": c.caller_org or "-",
                "from": c.from_masked or "-",
                "line": c.line_id or "-",
                "urgent": c.urgent,
                "consent": c.consent,
                "outcome": c.outcome or "bezig",
            }
            for c in calls
        ]

    return rows


def create_sandbox_app(
    service_base: str,
    token: str,
    account_sid: str,
    directory,
    ring_timeout: float = 20,
    clock_file=None,
    after_clock=None,
    call_log=None,
) -> Flask:
    """`clock_file` is the service's sandbox clock (instance/sandbox-clock); `after_clock` is
    called after the clock moved (it queues the service's sweep, which starts what is due);
    `call_log()` returns the service's newest call-log rows for the page."""
    app = Flask(__name__)
    sandbox = Sandbox(signed_fetch(token), account_sid)
    lock = threading.Lock()
    app.extensions["callrouter.sandbox"] = sandbox
    app.extensions["callrouter.sandbox.lock"] = lock
    app.extensions["callrouter.sandbox.auth"] = (account_sid, token)
    for line in directory.lines:  # professionals decide themselves on the page
        for number in (*line.numbers, *line.urgent_numbers):
            sandbox.phone(number).answer = "ask"
    app.register_blueprint(api.bp)
    driver = Driver(sandbox, lock, ring_timeout)
    app.extensions["callrouter.sandbox.driver"] = driver
    threading.Thread(target=driver.loop, daemon=True, name="sandbox-driver").start()
    _add_page_routes(app, sandbox, lock, directory, call_log)
    _add_phone_routes(app, sandbox, lock, directory, service_base)
    _add_clock_route(app, directory, clock_file, after_clock)
    return app


def signed_fetch(token: str) -> Fetch:
    """How the sandbox requests the service's webhooks: over HTTP, signed as Twilio signs."""
    http = requests.Session()

    def fetch(method: str, url: str, params: dict) -> tuple[int, str]:
        if method.upper() == "GET":
            full = url + ("&" if "?" in url else "?") + urlencode(params)
            resp = http.get(full, headers={"X-Twilio-Signature": sign(token, full)}, timeout=15)
        else:
            resp = http.post(
                url,
                data=params,
                headers={"X-Twilio-Signature": sign(token, url, params)},
                timeout=15,
            )
        return resp.status_code, resp.text

    return fetch


def page_state(sandbox: Sandbox, call_log=None) -> dict:
    """What the page shows: the calls, the transcript, the conferences and the service's log."""
    calls = []
    for c in sandbox.calls.values():
        waiting = bool(c.verbs) and verbs.is_gather(c.verbs[0])
        calls.append(
            {
                "sid": c.sid,
                "label": c.label,
                "from": c.from_,
                "to": c.to,
                "direction": c.direction,
                "status": c.status,
                "ended": c.ended,
                "conference": c.conference,
                "waiting": waiting,
            }
        )
    return {
        "calls": calls,
        "transcript": [{"who": w, "text": t} for w, t in sandbox.transcript],
        "conferences": [
            {"name": c.name, "started": c.started, "ended": c.ended, "members": len(c.members)}
            for c in sandbox.conferences.values()
        ],
        "log": call_log() if call_log is not None else [],
    }


def _add_page_routes(
    app: Flask, sandbox: Sandbox, lock: threading.Lock, directory, call_log
) -> None:
    """The page itself, its style sheets, and the state it polls."""

    @app.get("/sandbox/assets/<name>")
    def assets(name):
        """The Utrecht component CSS (installed from npm at setup) and our own tokens."""
        from flask import abort, send_from_directory

        if name == "utrecht.css":
            return send_from_directory(UTRECHT_CSS, "index.css", max_age=3600)
        if name == "callrouter-tokens.css":
            return send_from_directory(STATIC, name, max_age=3600)
        abort(404)

    @app.get("/sandbox")
    def page():
        callers = [
            (c.name, c.numbers[0] if c.numbers else c.prefixes[0] + "0000")
            for c in directory.callers
        ]
        lines = [(line, directory.organisation(line.organisation_id)) for line in directory.lines]
        return render_template(
            "sandbox.html", callers=callers, lines=lines, internal=directory.internal_number
        )

    @app.get("/sandbox/state")
    def get_state():
        with lock:
            return jsonify(page_state(sandbox, call_log))


def _add_phone_routes(
    app: Flask, sandbox: Sandbox, lock: threading.Lock, directory, service_base: str
) -> None:
    """What the people on the page do: dial in, press keys or speak, answer, hang up."""

    @app.post("/sandbox/dial")
    def dial():
        number = request.form.get("from", "")
        with lock:
            sid = sandbox.dial_in(
                number,
                directory.internal_number,
                service_base + "/voice/incoming",
                status_callback=service_base + "/voice/status/call",
            )
        return jsonify(sid=sid)

    @app.post("/sandbox/input")
    def give_input():
        sid, value = request.form.get("sid", ""), request.form.get("value", "")
        with lock:
            call = sandbox.calls.get(sid)
            if call is None or call.ended:
                return jsonify(ok=False), 404
            if value == "*" and call.conference is not None:
                sandbox.press_star(sid)
            else:
                phone = sandbox.phone(call.from_ if call.direction == "inbound" else call.to)
                phone.inputs = deque([value])
        return jsonify(ok=True)

    @app.post("/sandbox/answer")
    def answer():
        sid, how = request.form.get("sid", ""), request.form.get("how", "answer")
        with lock:
            return jsonify(ok=sandbox.answer(sid, how))

    @app.post("/sandbox/hangup")
    def hangup():
        with lock:
            sandbox.hang_up(request.form.get("sid", ""))
        return jsonify(ok=True)


def _add_clock_route(app: Flask, directory, clock_file, after_clock) -> None:
    """A trainer moves the service's sandbox clock forward."""

    @app.post("/sandbox/clock")
    def move_clock():
        from datetime import datetime

        from callrouter import clock

        try:
            moment = datetime.fromisoformat(request.form.get("to", ""))
        except ValueError:
            return jsonify(ok=False, error="to: a time such as 2026-11-26T08:30"), 400
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=directory.tz)
        if clock_file is None:
            return jsonify(ok=False, error="no clock"), 409
        shift = clock.skip_to(moment, clock_file)
        if after_clock is not None:
            after_clock()
        return jsonify(ok=True, shift_seconds=shift.total_seconds())
