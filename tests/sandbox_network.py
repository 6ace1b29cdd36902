"""The sandbox provider as the telephone network of real service processes (gunicorn and
worker.py, started by `procs.Stack`): its REST API on a loopback port of its own, its webhooks
over HTTP to the service, and a person's moves (answer, key, hang up) when nothing else moves."""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import requests
from flask import Flask
from rq import Queue, Worker
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from werkzeug.serving import make_server

from callrouter.sandbox import SANDBOX_ACCOUNT
from callrouter.sandbox import api as sandbox_api
from callrouter.sandbox.provider import Sandbox
from callrouter.signatures import sign

from procs import Stack, clean_env, free_port


class Network:
    """The sandbox provider as Twilio: its REST API on a port of its own, its webhooks over
    HTTP to the service. A new `Sandbox` (a new seed) per call; one lock keeps the REST
    requests of the service's processes and the moves of the calls apart."""

    def __init__(self, public: str, redis, token: str):
        self.public, self.redis, self.token = public, redis, token
        self.lock = threading.Lock()
        self.http = requests.Session()
        self.rest_requests = 0
        app = Flask("sandbox-network")
        app.extensions["callrouter.sandbox.lock"] = self.lock
        app.extensions["callrouter.sandbox.auth"] = (SANDBOX_ACCOUNT, token)
        app.before_request(self._count)
        app.register_blueprint(sandbox_api.bp)
        self.app = app
        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.sandbox: Sandbox | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/sandbox/api"

    def _count(self):
        self.rest_requests += 1

    def new_call_network(self, seed: int | None) -> Sandbox:
        self.sandbox = Sandbox(self._fetch, SANDBOX_ACCOUNT, shuffle=seed, between=self._jobs)
        self.app.extensions["callrouter.sandbox"] = self.sandbox
        self.alone: list[str] = []
        return self.sandbox

    def _fetch(self, method: str, url: str, params: dict) -> tuple[int, str]:
        """A webhook as Twilio requests it: signed with the account's auth token."""
        if method.upper() == "GET":
            full = url + ("&" if "?" in url else "?") + urlencode(params)
            headers = {"X-Twilio-Signature": sign(self.token, full)}
            resp = self.http.get(full, headers=headers, timeout=15)
        else:
            headers = {"X-Twilio-Signature": sign(self.token, url, params)}
            resp = self.http.post(url, data=params, headers=headers, timeout=15)
        return resp.status_code, resp.text

    # ------------------------------------------------------------------ the worker process

    def _jobs_waiting(self) -> bool:
        """A job queued, being run (also one taken from its queue and not yet registered as
        started: the worker is busy then), or a retry due within seconds (a transfer's
        watchdog, due minutes later, is not waited for; nor is the LDV export's next run)."""
        soon = time.time() + 15
        for name in ("calls", "default"):
            if Queue(name, connection=self.redis).count:
                return True
            if StartedJobRegistry(name, connection=self.redis).count:
                return True
            scheduled = ScheduledJobRegistry(name, connection=self.redis)
            due = self.redis.zrangebyscore(scheduled.key, 0, soon)
            # The LDV export's runs (every 10 s, with LDV_OTLP_ENDPOINT) belong to no call.
            if any(not job_id.startswith(b"ldv-export-") for job_id in due):
                return True
        return any(w.get_state() == "busy" for w in Worker.all(connection=self.redis))

    def _jobs(self) -> bool:
        """`between` of the shuffled sandbox: when the worker process has jobs to do, let it
        do them (its REST requests need the lock this thread holds); True when it had some."""
        if not self._jobs_waiting():
            return False
        self.lock.release()
        try:
            deadline = time.monotonic() + 30
            while self._jobs_waiting():
                if time.monotonic() > deadline:
                    raise AssertionError("the worker process did not finish its jobs")
                time.sleep(0.02)
        finally:
            self.lock.acquire()
        return True

    # ------------------------------------------------------------------ people

    def call_in(self, number: str, keys: list[str], to: str) -> str:
        """The phone `number` calls the internal number `to` and will key `keys` at its
        prompts, in turn; the professionals' phones are set up by the caller."""
        sb = self.sandbox
        sb.phone(number).inputs = deque(keys)
        with self.lock:
            return sb.dial_in(
                number,
                to,
                self.public + "/voice/incoming",
                status_callback=self.public + "/voice/status/call",
            )

    def settle(self, rounds: int = 400, time_out_prompts: bool = True) -> None:
        """Run the calls until nothing moves in the sandbox, in the worker process or in the
        web processes' work after their responses; a prompt nobody answers then times out
        (or, without `time_out_prompts`, waits for the person: the run stops there).
        At every standstill nobody may be alone in a started conference."""
        sb = self.sandbox
        for _ in range(rounds):
            seen = self.rest_requests
            with self.lock:
                moved = sb.run()
            time.sleep(0.3)  # the work a response defers, and jobs enqueued just now
            if moved or self.rest_requests != seen or self._jobs_waiting():
                continue
            with self.lock:
                self._check_nobody_alone()
                waiting = [
                    c.sid
                    for c in sb.calls.values()
                    if not c.ended
                    and c.verbs
                    and not isinstance(c.verbs[0], tuple)
                    and c.verbs[0].tag == "Gather"
                ]
                if not waiting or not time_out_prompts:
                    return
                for sid in waiting:
                    sb.timeout(sid)
        raise AssertionError("the calls did not settle")

    def _check_nobody_alone(self) -> None:
        for conf in self.sandbox.conferences.values():
            if conf.started and not conf.ended and len(conf.members) == 1:
                ((sid, flags),) = conf.members.items()
                if not flags.get("hold"):
                    self.alone.append(self.sandbox.calls[sid].label)

    def live(self, number: str):
        return next(
            (c for c in self.sandbox.calls.values() if c.to == number and not c.ended), None
        )

    def together(self, *sids: str) -> bool:
        calls = [self.sandbox.calls[s] for s in sids]
        names = {c.conference for c in calls}
        if len(names) != 1 or None in names:
            return False
        return self.sandbox.conferences[names.pop()].started

    def hang_up(self, sid: str) -> None:
        with self.lock:
            self.sandbox.hang_up(sid)

    def hang_up_everyone(self) -> None:
        with self.lock:
            for call in list(self.sandbox.calls.values()):
                self.sandbox.hang_up(call.sid)
        self.settle()


@contextmanager
def service_on_network(
    tmp: Path,
    lines: Path,
    token: str,
    web_extra: tuple[str, ...] = (),
    extra_env: dict[str, str] | None = None,
):
    """`gunicorn app:app` and `python worker.py` (on the embedded Redis of their own instance
    folder) with a `Network` as their telephone network; yields (network, environment)."""
    from callrouter import redis_conn

    web_port = free_port()
    public = f"http://127.0.0.1:{web_port}"
    instance = tmp / "instance"
    env = clean_env(
        CALLROUTER_LINES=str(lines),
        CALLROUTER_INSTANCE=str(instance),
        TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT,
        TWILIO_AUTH_TOKEN=token,
        PUBLIC_BASE_URL=public,
        SECRET_KEY="network-secret-key-0123456789abcdef",
        **(extra_env or {}),
    )
    net = Network(public, redis_conn.connect(None, instance), token)
    env["TWILIO_API_BASE_URL"] = net.api_base
    procs = Stack(env, tmp / "procs.log")
    try:
        procs.web(web_port, extra=web_extra)
        procs.worker()
        yield net, env
    finally:
        procs.stop()
        net.server.shutdown()
        redis_conn.stop_embedded(instance)
