"""Webhook throughput under gunicorn on loopback, against a minimal Flask app in the same run.

The load comes from `wrk` (C, one thread), with `bench/wrk_cycle.lua` cycling pre-signed,
distinct requests: every request a different CallSid with its own valid `X-Twilio-Signature`,
so nothing can be cached or deduplicated. Where `wrk` is missing (`make install` installs it
as root; else `apt-get install wrk`), a Python client runs instead and says so: it shares the
cores with the servers and caps the baseline, so its ratios lean toward 1.

Measured, each against `bench/baseline_app.py` (fixed TwiML) in alternating rounds, each
round on a fresh SQLite database (or on `--database-url`):

- `incoming`: `POST /voice/incoming` of a known caller (signed, call logged, the menu);
- `incoming-pin`: of an unknown number (the PIN prompt);
- `menu`: the menu's Gather action with two digits, for the calls `incoming` made;
- `status-call`: `POST /voice/status/call` (`completed`) for those calls;
- `status-conference-known`: the worker joining the conference of a ringing transfer (one
  seeded per call `incoming` made, after its status callback): loaded, recorded and run
  through the transfer model;
- `status-conference`: a conference event for a transfer the service does not have (looked
  up and dropped);

at 16 connections and at 1; req/s, p50, p99, the ratio to the baseline (median of the
rounds), and the peak RSS of a web worker. Targets (issue 17): at 16 connections `incoming`
and the status callbacks >= 0.6x, `menu` >= 0.5x; at 1 connection `incoming` p50 <= 1 ms and
p99 <= 2 ms; on PostgreSQL `incoming` >= 0.5x.

With `--against REV` the service at another revision (a temporary git worktree) runs in the
same rounds, and the ratio of this checkout to it is reported too.

Run: `.venv/bin/python bench/webhooks.py [--rounds N] [--duration S] [--database-url URL]
[--against REV] [--load wrk|python]`
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callrouter.signatures import sign  # noqa: E402

TOKEN = "bench-token-0123456789abcdef0123"
PUBLIC = "https://callrouter.bench.test"
CONNECTIONS = (16, 1)
PER_FILE = 40_000  # distinct requests per endpoint and run (more than a run sends)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(
    module: str, env: dict, port: int, workers: int, log: Path, cwd: Path = ROOT
) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            module,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{module} did not start: {log.read_text()[-2000:]}")


def peak_rss_kib(master: int) -> int:
    """The largest peak RSS (VmHWM) of the gunicorn master's worker processes."""
    peak = 0
    for task in Path(f"/proc/{master}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        for pid in children:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak


# --------------------------------------------------------------------------- the requests


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # with its query, as the service hands it to Twilio; "{tr}": a seeded transfer
    params: Callable[[str, int], dict]  # (tag, i) -> the form
    of_calls: bool = False  # for the calls `incoming` made (as many as it sent)
    seeded: bool = False  # needs a transfer per call, written before the run (`seed`)

    def path_of(self, tag: str, i: int) -> str:
        return self.path.format(tr=transfer_id(tag, i)) if "{tr}" in self.path else self.path


def transfer_id(tag: str, i: int) -> str:
    return hashlib.md5(f"{tag}:{i}".encode()).hexdigest()


def seed(database_url: str, tag: str, count: int) -> None:
    """A ringing transfer for each of the first `count` calls `incoming` made with `tag`,
    written straight into the service's database (as `jobs.start_transfer` would leave it),
    so that a conference event has a transfer to load, record and run through the model."""
    from datetime import UTC, datetime

    from sqlalchemy import create_engine, insert, select

    from callrouter import directory
    from callrouter.models import Call, Transfer

    line = directory.load(ROOT / "config/lines.yaml").lines[0]
    url = database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url)
    sids = {_known(tag, i)["CallSid"]: i for i in range(count)}
    at = datetime.now(UTC)
    with engine.begin() as conn:
        calls = conn.execute(select(Call.id, Call.call_sid).where(Call.call_sid.like(f"CA{tag}k%")))
        rows = [
            dict(
                id=transfer_id(tag, sids[sid]),
                call_id=call_id,
                caller_org="utrecht",
                target_org=line.organisation_id,
                line_id=line.id,
                urgent=False,
                consent=True,
                state="dialling",
                hunt_position=0,
                worker_call_sid=sid,
                created_at=at,
            )
            for call_id, sid in calls
            if sid in sids
        ]
        if rows:
            conn.execute(insert(Transfer), rows)
    engine.dispose()


def _known(tag: str, i: int) -> dict:
    return {
        "CallSid": f"CA{tag}k{i:026d}"[:34],
        "From": f"+3130286{i % 10000:04d}",
        "To": "+31880100100",
        "CallStatus": "ringing",
        "AccountSid": "AC" + "0" * 32,
    }


ENDPOINTS = [
    Endpoint("incoming", "/voice/incoming", _known),
    Endpoint(
        "incoming-pin",
        "/voice/incoming",
        lambda tag, i: {
            **_known(tag, i),
            "CallSid": f"CA{tag}u{i:026d}"[:34],
            "From": "+3161" + f"{i % 10_000_000:07d}",
        },
    ),
    Endpoint(
        "menu",
        "/voice/menu?try=0",
        lambda tag, i: {**_known(tag, i), "Digits": "89", "CallStatus": "in-progress"},
        of_calls=True,
    ),
    Endpoint(
        "status-call",
        "/voice/status/call",
        lambda tag, i: {
            "CallSid": _known(tag, i)["CallSid"],
            "CallStatus": "completed",
            "CallDuration": "61",
            "SequenceNumber": "3",
            "AccountSid": "AC" + "0" * 32,
        },
        of_calls=True,
    ),
    Endpoint(
        "status-conference-known",
        "/voice/status/conference?tr={tr}",
        lambda tag, i: {
            "ConferenceSid": f"CF{tag}{i:030d}"[:34],
            "CallSid": _known(tag, i)["CallSid"],
            "StatusCallbackEvent": "participant-join",
            "SequenceNumber": "2",
            "AccountSid": "AC" + "0" * 32,
        },
        of_calls=True,
        seeded=True,
    ),
    Endpoint(
        "status-conference",
        "/voice/status/conference?tr=" + "f" * 32,
        lambda tag, i: {
            "ConferenceSid": f"CF{tag}{i:030d}"[:34],
            "CallSid": _known(tag, i)["CallSid"],
            "StatusCallbackEvent": "participant-join",
            "SequenceNumber": "1",
            "AccountSid": "AC" + "0" * 32,
        },
    ),
]


def signed(endpoint: Endpoint, tag: str, count: int) -> list[tuple[str, str, str]]:
    """(path, signature, body) of `count` distinct requests."""
    out = []
    for i in range(count):
        params = endpoint.params(tag, i)
        path = endpoint.path_of(tag, i)
        out.append((path, sign(TOKEN, PUBLIC + path, params), urlencode(params)))
    return out


# --------------------------------------------------------------------------- the load


def load_wrk(port: int, reqs: list, connections: int, duration: int, tmp: Path) -> dict:
    file = tmp / f"reqs-{port}-{connections}.tsv"
    file.write_text("".join(f"{p}\t{s}\t{b}\n" for p, s, b in reqs))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench/wrk_cycle.lua"),
            f"http://127.0.0.1:{port}",
            "--",
            str(file),
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRK "))
    r = json.loads(line[4:])
    return {
        "sent": r["requests"],
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50": r["p50_us"] / 1e3,
        "p99": r["p99_us"] / 1e3,
        "errors": r["errors"] + r["non2xx"],
    }


def load_python(port: int, reqs: list, connections: int, duration: float, _tmp=None) -> dict:
    """The fallback: threads of http.client, for at most `duration` seconds."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    it = iter(reqs)
    stop = time.perf_counter() + duration

    def worker():
        while time.perf_counter() < stop:
            with lock:
                item = next(it, None)
            if item is None:
                return
            path, sig, body = item
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sig,
            }
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                conn.request("POST", path, body=body.encode(), headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                conn.close()
            except OSError:
                ok = False
            with lock:
                latencies.append(time.perf_counter() - t0)
                errors[0] += 0 if ok else 1

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "sent": len(latencies),
        "rps": len(latencies) / wall,
        "p50": statistics.median(latencies) * 1e3,
        "p99": latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1e3,
        "errors": errors[0],
    }


# --------------------------------------------------------------------------- the rounds


def one_server(name, module, cwd, env, args, tmp: Path, rnd: int, load) -> dict:
    """Every endpoint at every connection count against one fresh server; its results."""
    port = free_port()
    log = tmp / f"{name}-{rnd}.log"
    proc = start(module, env, port, args.workers, log, cwd)
    results: dict = {}
    try:
        load_python(port, signed(ENDPOINTS[0], f"w{rnd}", 50), 4, 30)  # warm-up
        for conns in CONNECTIONS:
            tag = f"{rnd}{conns}"
            made = PER_FILE
            for ep in endpoints(args):
                count = min(made, PER_FILE) if ep.of_calls else PER_FILE
                if ep.seeded and name != "baseline":
                    seed(env["DATABASE_URL"], tag, count)
                r = load(port, signed(ep, tag, count), conns, args.duration, tmp)
                if ep.name == "incoming":
                    made = max(r["sent"], 1)
                results[(ep.name, conns)] = r
        rss = peak_rss_kib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    problems = [ln for ln in log.read_text().splitlines() if " ERROR " in ln or "Traceback" in ln]
    if problems:
        print(f"{name}: {len(problems)} errors in the server log: {problems[0]}")
        results[next(iter(results))]["errors"] += len(problems)
    results["rss"] = rss
    return results


TARGETS = {
    ("incoming", 16): 0.6,
    ("status-call", 16): 0.6,
    ("status-conference-known", 16): 0.6,
    ("status-conference", 16): 0.6,
    ("menu", 16): 0.5,
}


def endpoints(args) -> list[Endpoint]:
    """The endpoints to measure: all, or those named by `--only` (with `incoming` first
    when one of them needs the calls it makes)."""
    if not args.only:
        return ENDPOINTS
    chosen = set(args.only) | (
        {"incoming"} if any(e.of_calls for e in ENDPOINTS if e.name in args.only) else set()
    )
    return [e for e in ENDPOINTS if e.name in chosen]


def report(runs: dict, apps: list, postgres: bool, args) -> int:
    names = [a[0] for a in apps]
    errors = 0
    print(f"{'endpoint':18s} {'conns':>5s} " + "".join(f"{n[:12]:>30s}" for n in names))
    for conns in CONNECTIONS:
        for ep in endpoints(args):
            key = (ep.name, conns)
            cells = []
            for n in names:
                rs = [r[key] for r in runs[n]]
                errors += sum(r["errors"] for r in rs)
                rps = statistics.median(r["rps"] for r in rs)
                p50 = statistics.median(r["p50"] for r in rs)
                p99 = statistics.median(r["p99"] for r in rs)
                cells.append(f"{rps:8.0f}/s {p50:6.2f} {p99:6.2f} ms")
            pairs = zip(runs[names[0]], runs[names[1]], strict=True)
            ratios = [o[key]["rps"] / b[key]["rps"] for b, o in pairs]
            ratio = statistics.median(ratios)
            target = 0.5 if postgres and ep.name == "incoming" and conns == 16 else TARGETS.get(key)
            verdict = (
                "" if target is None else f" (>= {target}: {'OK' if ratio >= target else 'UNDER'})"
            )
            line = f"{ep.name:18s} {conns:5d} " + "".join(f"{c:>30s}" for c in cells)
            print(f"{line}   ratio {ratio:.2f}{verdict}")
            if len(names) == 3:
                pairs = zip(runs[names[2]], runs[names[1]], strict=True)
                versus = [o[key]["rps"] / a[key]["rps"] for a, o in pairs]
                print(f"{'':24s} this checkout / {names[2]}: {statistics.median(versus):.2f}")
    if ("incoming", 1) in runs[names[1]][0]:
        one = [r[("incoming", 1)] for r in runs[names[1]]]
        p50, p99 = (
            statistics.median(r["p50"] for r in one),
            statistics.median(r["p99"] for r in one),
        )
        print(
            f"incoming at 1 connection: p50 {p50:.2f} ms, p99 {p99:.2f} ms (targets 1 and 2 ms: "
            f"{'OK' if p50 <= 1 and p99 <= 2 else 'UNDER'})"
        )
    for n in names:
        print(f"peak RSS of a web worker, {n}: {max(r['rss'] for r in runs[n]) / 1024:.0f} MiB")
    print(f"errors: {errors}")
    return 0 if errors == 0 else 1


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=3, help="seconds per measurement")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument("--against", metavar="REV", help="also run the service at git revision REV")
    ap.add_argument("--load", choices=("wrk", "python"), default=None)
    ap.add_argument(
        "--only", nargs="+", choices=[e.name for e in ENDPOINTS], help="measure these only"
    )
    args = ap.parse_args()
    if args.against and args.database_url:
        ap.error("--against needs a fresh database per run: leave --database-url unset")
    kind = args.load or ("wrk" if shutil.which("wrk") else "python")
    if kind == "wrk" and not shutil.which("wrk"):
        ap.error("wrk is not installed: make install (as root), or apt-get install wrk")
    if kind == "python":
        print("load: the Python fallback client (wrk not found): it shares the cores with the")
        print("servers and caps the baseline, so the ratios lean toward 1")
    load = load_wrk if kind == "wrk" else load_python
    with tempfile.TemporaryDirectory() as tmp:
        apps = [("baseline", "bench.baseline_app:app", ROOT), ("callrouter", "app:app", ROOT)]
        other = Path(tmp) / "against"
        if args.against:
            subprocess.run(
                ["git", "worktree", "add", "--detach", "--quiet", str(other), args.against],
                cwd=ROOT,
                check=True,
            )
            apps.append((args.against[:12], "app:app", other))
        try:
            runs: dict = {name: [] for name, _, _ in apps}
            env = {
                k: v for k, v in os.environ.items() if not k.startswith(("TWILIO", "CALLROUTER"))
            }
            env.update(
                CALLROUTER_ENV="test",
                CALLROUTER_INSTANCE=str(tmp),
                TWILIO_AUTH_TOKEN=TOKEN,
                PUBLIC_BASE_URL=PUBLIC,
                SECRET_KEY="bench-secret-0123456789",
                CALLROUTER_LINES=str(ROOT / "config/lines.yaml"),
            )
            for rnd in range(args.rounds):
                for name, module, cwd in apps:
                    env["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/b-{rnd}-{name}.db"
                    runs[name].append(
                        one_server(name, module, cwd, env, args, Path(tmp), rnd, load)
                    )
            print(f"load: {kind}; {args.rounds} alternating rounds of {args.duration:g} s each")
            return report(runs, apps, postgres=bool(args.database_url), args=args)
        finally:
            from callrouter import redis_conn

            redis_conn.stop_embedded(Path(tmp))  # the servers' embedded Redis, if they made one
            if args.against:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False
                )


if __name__ == "__main__":
    sys.exit(main())
