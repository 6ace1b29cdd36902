"""Scripted calls through the sandbox: `flask --app app sandbox call ...` and end-to-end tests.

The service runs for real (its own HTTP server on loopback, its webhooks, its RQ jobs on the
configured Redis); only the telephone network is the sandbox's. What every party heard is
returned as a transcript.
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import requests
from rq import SimpleWorker
from werkzeug.serving import make_server

from callrouter.sandbox import SANDBOX_ACCOUNT  # re-exported for callers
from callrouter.sandbox.provider import Sandbox
from callrouter.signatures import sign


class RealCredentials(Exception):
    """The sandbox will not run against a real Twilio account."""


def refuse_real_credentials(environ: dict) -> None:
    sid = environ.get("TWILIO_ACCOUNT_SID", "")
    base = environ.get("TWILIO_API_BASE_URL", "")
    if sid and sid != SANDBOX_ACCOUNT and (not base or "api.twilio.com" in base):
        raise RealCredentials(
            "real Twilio credentials are configured (TWILIO_ACCOUNT_SID): the sandbox never "
            "runs against them. Unset them to use the sandbox."
        )


@dataclass
class Outcome:
    transcript: list[tuple[str, str]]
    call_outcome: str | None
    transfer_outcomes: list[str] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(f"[{who}] {what}" for who, what in self.transcript if what)


class InFlight:
    """WSGI middleware counting the requests still being served, including the work a
    response runs after it was sent (`call_on_close`): the runner waits for it to finish
    before the calls move on, so that the course of a call never depends on thread timing."""

    def __init__(self, app):
        self.app = app
        self.count = 0
        self.idle = threading.Condition()
        self.local = threading.local()

    def __call__(self, environ, start_response):
        self.local.serving = True  # a server thread: never waits for itself
        with self.idle:
            self.count += 1
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._done()
            raise
        return _Closing(body, self._done)

    def _done(self) -> None:
        with self.idle:
            self.count -= 1
            self.idle.notify_all()

    def wait(self, timeout: float = 30) -> None:
        """Until no request is being served; at once inside one (the sandbox's REST API
        sends callbacks from the server's own threads)."""
        if getattr(self.local, "serving", False):
            return
        with self.idle:
            if not self.idle.wait_for(lambda: self.count == 0, timeout):
                raise TimeoutError("the service is still answering a request")


class _Closing:
    """A response body whose `close()` (the deferred work) ends with a callback."""

    def __init__(self, body, done):
        self.body, self.done = body, done

    def __iter__(self):
        return iter(self.body)

    def close(self):
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.done()


class BurstWorker(SimpleWorker):
    """RQ's in-process worker for a burst run (the sandbox's own jobs, and tests), without the
    pub/sub thread that listens for RQ's remote commands (a burst run gets none): after a
    failed job, stopping that thread waits out its 60 s read."""

    def subscribe(self):
        self.pubsub_thread = None

    def unsubscribe(self):
        pass


class Runner:
    """The service on a loopback port with the sandbox as its telephone network.

    `shuffle` (a seed) makes the sandbox deliver status and conference callbacks out of
    order, as Twilio may, with the service's jobs run at random moments in between."""

    def __init__(self, environ: dict | None = None, shuffle: int | None = None):
        env = dict(os.environ if environ is None else environ)
        refuse_real_credentials(env)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        token = secrets.token_hex(16)
        env.update(
            PUBLIC_BASE_URL=base,
            TWILIO_API_BASE_URL=base + "/sandbox/api",
            TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT,
            TWILIO_AUTH_TOKEN=token,
        )
        env.pop("TWILIO_AUTH_TOKEN_SECONDARY", None)
        env.setdefault("CALLROUTER_INSTANCE", str(Path(tempfile.mkdtemp(prefix="sandbox-"))))
        from callrouter import create_app
        from callrouter.sandbox import api

        self.app = create_app(environ=env)
        self.svc = self.app.extensions["callrouter"]
        self.base, self.token = base, token
        self.http = requests.Session()
        self.sandbox = Sandbox(
            self._fetch, SANDBOX_ACCOUNT, shuffle=shuffle, between=self.drain_jobs
        )
        self.app.extensions["callrouter.sandbox"] = self.sandbox
        self.app.extensions["callrouter.sandbox.auth"] = (SANDBOX_ACCOUNT, token)
        self.app.register_blueprint(api.bp)
        self.in_flight = InFlight(self.app.wsgi_app)
        self.app.wsgi_app = self.in_flight
        self.server = make_server("127.0.0.1", port, self.app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.svc.engine.dispose()

    def _fetch(self, method: str, url: str, params: dict) -> tuple[int, str]:
        """Request a webhook as Twilio does: signed with the account's auth token."""
        if method.upper() == "GET":
            from urllib.parse import urlencode

            full = url + ("&" if "?" in url else "?") + urlencode(params)
            resp = self.http.get(
                full, headers={"X-Twilio-Signature": sign(self.token, full)}, timeout=15
            )
        else:
            resp = self.http.post(
                url,
                data=params,
                headers={"X-Twilio-Signature": sign(self.token, url, params)},
                timeout=15,
            )
        self.in_flight.wait()  # and the work it deferred until after its response
        return resp.status_code, resp.text

    def drain_jobs(self) -> bool:
        """Run every queued job (as a worker process would); True when one ran."""
        with self.app.app_context():
            queues = [self.svc.queue("calls"), self.svc.queue("default")]
            ran = BurstWorker(queues, connection=self.svc.redis).work(burst=True)
        self.in_flight.wait()
        return bool(ran)

    def settle(self, rounds: int = 200) -> None:
        """Run calls and jobs until nothing moves; a prompt nobody answers times out."""
        for _ in range(rounds):
            moved = self.sandbox.run()
            self.drain_jobs()
            moved += self.sandbox.run()
            if moved:
                continue
            waiting = [
                c.sid
                for c in self.sandbox.calls.values()
                if not c.ended
                and c.verbs
                and not isinstance(c.verbs[0], tuple)
                and c.verbs[0].tag == "Gather"
            ]
            if not waiting:
                return
            for sid in waiting:
                self.sandbox.timeout(sid)

    def call(
        self,
        from_: str,
        press: list[str],
        answer: str = "accept",
        then: str = "hangup",
        answer_numbers: list[str] | None = None,
    ) -> Outcome:
        """One whole call: the worker dials in and presses keys (or says `say:...`); every
        professional number answers as `answer` (accept, decline, busy, no-answer); once the
        conversation stands, the worker does `then` (hangup, or handover:+316...)."""
        d = self.svc.directory
        for number in answer_numbers or [
            n for ln in d.lines for n in (*ln.numbers, *ln.urgent_numbers)
        ]:
            phone = self.sandbox.phone(number)
            phone.answer = {"busy": "busy", "no-answer": "no-answer"}.get(answer, "answer")
            phone.inputs = deque(["1"] if answer == "accept" else ["3"] * 3)
        worker = self.sandbox.phone(from_)
        worker.inputs = deque(press)
        sid = self.sandbox.dial_in(
            from_,
            d.internal_number,
            self.base + "/voice/incoming",
            status_callback=self.base + "/voice/status/call",
        )
        self.settle()
        if then.startswith("handover:"):
            citizen = then.split(":", 1)[1]
            self.sandbox.phone(citizen).answer = "answer"
            worker.inputs.extend(["1", citizen.replace("+31", "0") + "#"])
            if self.sandbox.press_star(sid):
                self.settle()
            worker.inputs.append("2")
            if self.sandbox.press_star(sid):
                self.settle()
        self.sandbox.hang_up(sid)
        for c in list(self.sandbox.calls.values()):  # everyone else hangs up too
            self.sandbox.hang_up(c.sid)
        self.settle()
        return self._outcome(sid)

    def _outcome(self, sid: str) -> Outcome:
        from sqlalchemy import select

        from callrouter.models import Call, CallbackRequest, Transfer

        with self.svc.sessions() as s:
            call = s.scalar(select(Call).where(Call.call_sid == sid))
            transfers = (
                s.scalars(select(Transfer.outcome).where(Transfer.call_id == call.id)).all()
                if call
                else []
            )
            cbs = (
                s.scalars(
                    select(CallbackRequest.state).where(CallbackRequest.call_id == call.id)
                ).all()
                if call
                else []
            )
        return Outcome(
            list(self.sandbox.transcript),
            call.outcome if call else None,
            [t for t in transfers if t],
            list(cbs),
        )
