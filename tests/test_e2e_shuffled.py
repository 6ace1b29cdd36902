"""Life-event chains through real processes, with the callbacks out of order.

`gunicorn app:app` and `python worker.py` run as in production; the sandbox provider is the
telephone network, in its shuffle mode: it serves the REST subset on a loopback port, reaches
the webhooks over HTTP, and delivers status and conference callbacks late, out of order and
sometimes twice, as Twilio may. The worker process runs the jobs whenever it gets to them.
The scenarios are the ones a chain used to break on: the step's professional hangs up and the
worker, pressing nothing, must be taken to the next step (also past a closed one), and never be
left alone in a conference.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import requests
from flask import Flask
from rq import Queue, Worker
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select
from werkzeug.serving import make_server

from callrouter import create_app, redis_conn
from callrouter.flows import speech
from callrouter.models import Call, CaseStep
from callrouter.sandbox import SANDBOX_ACCOUNT
from callrouter.sandbox import api as sandbox_api
from callrouter.sandbox.provider import Sandbox
from callrouter.signatures import sign

from conftest import AMSTERDAM_ID, CALLER_ID, DIRECTORY, INTERNAL, WORKER_MOBILE
from procs import Stack, clean_env, free_port

TOKEN = "shuffle-e2e-token-0123456789abcdef"
TOESLAGEN, KINDERBIJSLAG, IND, AOW = "+31881001001", "+31883002001", "+31887001001", "+31883001001"
SEEDS = (11, 12, 13)

# Two life events: one whose middle line is closed today, one whose three lines are open.
CHAINS = """
life_events:
  - id: verhuizing
    name: Verhuizing naar het buitenland
    spoken_name: een verhuizing naar het buitenland
    digit: 1
    keywords: [verhuizing]
    steps:
      - line: toeslagen-algemeen
        reason: toeslagen stoppen
      - line: svb-kinderbijslag
        reason: kinderbijslag bij verhuizing
      - line: svb-aow
        reason: AOW in het buitenland
  - id: verblijf
    name: Verblijf en pensioen
    spoken_name: verblijf en pensioen
    digit: 2
    keywords: [verblijf]
    steps:
      - line: toeslagen-algemeen
        reason: toeslagen
      - line: ind-verblijf
        reason: verblijfsvergunning
      - line: svb-aow
        reason: AOW
"""


def _directory(pin_hash: str) -> str:
    """The tests' directory with kinderbijslag open only on a day two days away (closed today,
    whatever time the test runs) and the IND line open day and night."""
    text = DIRECTORY.format(
        internal=INTERNAL,
        pin_hash=pin_hash,
        mobile=WORKER_MOBILE,
        caller_id=CALLER_ID,
        amsterdam_id=AMSTERDAM_ID,
    )
    other_day = (datetime.now(ZoneInfo("Europe/Amsterdam")) + timedelta(days=2)).strftime("%a")
    closed = f'        hours:\n          {other_day.lower()}: "10:00-11:00"\n'
    text = text.replace('        hours:\n          mon-fri: "08:30-17:00"\n', closed, 1)
    text = text.replace('        hours:\n          sat: "10:00-11:00"\n', '        hours: "24/7"\n')
    assert closed in text and text.count('"10:00-11:00"') == 1
    return text + CHAINS


class Network:
    """The sandbox provider as Twilio: its REST API on a port of its own, its webhooks over
    HTTP to the service. A new `Sandbox` (a new seed) per call; one lock keeps the REST
    requests of the service's processes and the moves of the calls apart."""

    def __init__(self, public: str, redis):
        self.public, self.redis = public, redis
        self.lock = threading.Lock()
        self.http = requests.Session()
        self.rest_requests = 0
        app = Flask("sandbox-network")
        app.extensions["callrouter.sandbox.lock"] = self.lock
        app.extensions["callrouter.sandbox.auth"] = (SANDBOX_ACCOUNT, TOKEN)
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

    def new_call_network(self, seed: int) -> Sandbox:
        self.sandbox = Sandbox(self._fetch, SANDBOX_ACCOUNT, shuffle=seed, between=self._jobs)
        self.app.extensions["callrouter.sandbox"] = self.sandbox
        self.alone: list[str] = []
        return self.sandbox

    def _fetch(self, method: str, url: str, params: dict) -> tuple[int, str]:
        """A webhook as Twilio requests it: signed with the account's auth token."""
        if method.upper() == "GET":
            full = url + ("&" if "?" in url else "?") + urlencode(params)
            headers = {"X-Twilio-Signature": sign(TOKEN, full)}
            resp = self.http.get(full, headers=headers, timeout=15)
        else:
            headers = {"X-Twilio-Signature": sign(TOKEN, url, params)}
            resp = self.http.post(url, data=params, headers=headers, timeout=15)
        return resp.status_code, resp.text

    # ------------------------------------------------------------------ the worker process

    def _jobs_waiting(self) -> bool:
        """A job queued, being run (also one taken from its queue and not yet registered as
        started: the worker is busy then), or a retry due within seconds (a transfer's
        watchdog, due minutes later, is not waited for)."""
        soon = time.time() + 15
        for name in ("calls", "default"):
            if Queue(name, connection=self.redis).count:
                return True
            if StartedJobRegistry(name, connection=self.redis).count:
                return True
            scheduled = ScheduledJobRegistry(name, connection=self.redis)
            if self.redis.zcount(scheduled.key, 0, soon):
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

    def settle(self, rounds: int = 400) -> None:
        """Run the calls until nothing moves in the sandbox, in the worker process or in the
        web processes' work after their responses; a prompt nobody answers then times out.
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
                if not waiting:
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


@pytest.fixture(scope="module")
def network(tmp_path_factory, pin_hash):
    tmp = tmp_path_factory.mktemp("shuffled")
    lines = tmp / "lines.yaml"
    lines.write_text(_directory(pin_hash), encoding="utf-8")
    web_port = free_port()
    public = f"http://127.0.0.1:{web_port}"
    instance = tmp / "instance"
    env = clean_env(
        CALLROUTER_LINES=str(lines),
        CALLROUTER_INSTANCE=str(instance),
        TWILIO_ACCOUNT_SID=SANDBOX_ACCOUNT,
        TWILIO_AUTH_TOKEN=TOKEN,
        PUBLIC_BASE_URL=public,
        SECRET_KEY="shuffle-e2e-secret-key-0123456789",
    )
    redis = redis_conn.connect(None, instance)  # the embedded Redis the processes share
    net = Network(public, redis)
    env["TWILIO_API_BASE_URL"] = net.api_base
    procs = Stack(env, tmp / "procs.log")
    try:
        procs.web(web_port)
        procs.worker()
        net.service = create_app(environ=env)  # this process reads the call log only
        yield net
    finally:
        procs.stop()
        net.server.shutdown()
        redis_conn.stop_embedded(instance)


def _chain(net: Network, seed: int, event: str, professionals: list[str]) -> list[str]:
    """The worker (a new number per run) chooses the life event and presses nothing more;
    each step's professional accepts, talks with the worker, and hangs up."""
    sb = net.new_call_network(seed)
    for number in (TOESLAGEN, KINDERBIJSLAG, IND, AOW):
        phone = sb.phone(number)
        phone.answer, phone.inputs = "answer", deque(["1"])
    me = f"+3130286{seed:04d}"
    sb.phone(me).inputs = deque(["0", event, ""])
    with net.lock:
        worker = sb.dial_in(
            me,
            INTERNAL,
            net.public + "/voice/incoming",
            status_callback=net.public + "/voice/status/call",
        )
    net.settle()
    for number in professionals:
        prof = net.live(number)
        assert prof is not None, (seed, number, sb.transcript[-6:])
        assert net.together(worker, prof.sid), (seed, number, sb.transcript[-6:])
        net.hang_up(prof.sid)
        net.settle()
    heard = [text for who, text in sb.transcript if who == sb.calls[worker].label]
    net.hang_up_everyone()
    assert net.alone == [], seed
    assert [c.label for c in sb.calls.values() if not c.ended] == [], seed
    with net.service.extensions["callrouter"].sessions() as s:
        call = s.scalar(select(Call).where(Call.call_sid == worker))
        steps = s.scalars(
            select(CaseStep).where(CaseStep.case_id == call.case_id).order_by(CaseStep.position)
        ).all()
        states = [step.state for step in steps]
    assert any(speech.CHAIN_DONE in text for text in heard), (seed, heard[-4:])
    return states


@pytest.mark.parametrize("seed", SEEDS)
def test_chain_goes_on_when_each_professional_hangs_up(network, seed):
    states = _chain(network, seed, "2", [TOESLAGEN, IND, AOW])
    assert states == ["done", "done", "done"]


@pytest.mark.parametrize("seed", SEEDS)
def test_chain_goes_past_a_closed_middle_step(network, seed):
    states = _chain(network, seed, "1", [TOESLAGEN, AOW])
    assert states == ["done", "closed", "done"]
