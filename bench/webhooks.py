"""Webhook throughput under gunicorn on loopback, against a minimal Flask app in the same run.

Measures `POST /voice/incoming` (signed, known caller, call logged in SQLite) and
`POST /voice/status/call` (signed, deduplicated event + call state), each against
`bench/baseline_app.py` returning fixed TwiML. Reports req/s, p50 and p99, and the ratio
(target >= 0.5). Traffic goes to 127.0.0.1 only; every loop is bounded.

With `--against REV` the service at another revision (checked out into a temporary git
worktree) runs in the same rounds, and the ratio of this checkout to it is reported too: how
a change moved the hot path, measured side by side on the same machine.

Run: `.venv/bin/python bench/webhooks.py [--requests N] [--concurrency C] [--against REV]`
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callrouter.signatures import sign  # noqa: E402

TOKEN = "bench-token-0123456789abcdef0123"
PUBLIC = "https://callrouter.bench.test"


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


def requests_for(path: str, n: int, make_params) -> list[tuple[str, bytes, dict]]:
    out = []
    for i in range(n):
        params = make_params(i)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(TOKEN, PUBLIC + path, params),
        }
        out.append((path, urlencode(params).encode(), headers))
    return out


def load(port: int, reqs: list, concurrency: int) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    it = iter(reqs)

    def worker():
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                return
            path, body, headers = item
            t0 = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                conn.close()
            except OSError:
                ok = False
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                errors[0] += 0 if ok else 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {
        "rps": len(latencies) / wall,
        "p50": statistics.median(latencies) * 1e3,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
        "errors": errors[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)  # single rounds vary by +-0.07 here
    ap.add_argument("--against", metavar="REV", help="also run the service at git revision REV")
    args = ap.parse_args()
    if args.against and os.environ.get("DATABASE_URL"):
        ap.error("--against needs a fresh database per run: leave DATABASE_URL unset")
    with tempfile.TemporaryDirectory() as tmp:
        apps = [("baseline", "bench.baseline_app:app", ROOT), ("callrouter", "app:app", ROOT)]
        if args.against:
            other = Path(tmp) / "against"
            subprocess.run(
                ["git", "worktree", "add", "--detach", "--quiet", str(other), args.against],
                cwd=ROOT,
                check=True,
            )
            apps.append((args.against[:12], "app:app", other))
        try:
            return _measure(args, Path(tmp), apps)
        finally:
            if args.against:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False
                )


def _measure(args, tmp: Path, apps: list[tuple[str, str, Path]]) -> int:
    n = args.requests
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO", "CALLROUTER"))}
    env.update(
        CALLROUTER_ENV="test",
        CALLROUTER_INSTANCE=str(tmp),
        TWILIO_AUTH_TOKEN=TOKEN,
        PUBLIC_BASE_URL=PUBLIC,
        SECRET_KEY="bench-secret-0123456789",
        CALLROUTER_LINES=str(ROOT / "config/lines.yaml"),
    )
    db_url = os.environ.get("DATABASE_URL")  # one round on an external database
    incoming = requests_for(
        "/voice/incoming",
        n,
        lambda i: {
            "CallSid": f"CAbench{i:026d}",
            "From": f"+3130286{i % 10000:04d}",
            "To": "+31880100100",
            "CallStatus": "ringing",
            "AccountSid": "AC" + "0" * 32,
        },
    )
    status = requests_for(
        "/voice/status/call",
        n,
        lambda i: {
            "CallSid": f"CAbench{i:026d}",
            "CallStatus": "completed",
            "CallDuration": "61",
            "SequenceNumber": "3",
            "AccountSid": "AC" + "0" * 32,
        },
    )
    runs: dict = {}
    # Alternate baseline and callrouter, each on a fresh database, and keep the medians:
    # both share two cores with the load generator, so one run alone is noisy.
    for rnd in range(args.rounds):
        for name, module, cwd in apps:
            env["DATABASE_URL"] = db_url or f"sqlite:///{tmp}/bench-{rnd}-{name}.db"
            port = free_port()
            log = Path(tmp) / f"{name}-{rnd}.log"
            proc = start(module, env, port, args.workers, log, cwd)
            try:
                load(port, incoming[:50], args.concurrency)  # warm-up
                r_in = load(port, incoming[50:], args.concurrency)
                r_st = load(port, status, args.concurrency)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            problems = [
                ln for ln in log.read_text().splitlines() if " ERROR " in ln or "Traceback" in ln
            ]
            if problems:
                print(f"{name}: {len(problems)} errors in the server log: {problems[0]}")
                r_in["errors"] += len(problems)
            runs.setdefault((name, "incoming"), []).append(r_in)
            runs.setdefault((name, "status"), []).append(r_st)
        if db_url:
            break

    def median(rs, key):
        return statistics.median(r[key] for r in rs)

    ok = True
    for ep in ("incoming", "status"):
        ratios = [
            o["rps"] / b["rps"]
            for b, o in zip(runs[("baseline", ep)], runs[("callrouter", ep)], strict=False)
        ]
        ratio = statistics.median(ratios)
        errors = sum(r["errors"] for r in runs[("callrouter", ep)])
        ok &= ratio >= 0.5 and errors == 0
        for name, _, _ in apps:
            rs = runs[(name, ep)]
            print(
                f"{ep:9s} {name:10s} {median(rs, 'rps'):8.1f} req/s  "
                f"p50 {median(rs, 'p50'):6.1f} ms  p99 {median(rs, 'p99'):6.1f} ms  "
                f"errors {sum(r['errors'] for r in rs)}"
            )
        print(
            f"{ep:9s} ratio callrouter/baseline: median {ratio:.2f} of "
            f"{', '.join(f'{r:.2f}' for r in ratios)} (target >= 0.5) "
            f"{'OK' if ratio >= 0.5 else 'UNDER TARGET'}"
        )
        if len(apps) == 3:
            name = apps[2][0]
            versus = [
                o["rps"] / a["rps"]
                for a, o in zip(runs[(name, ep)], runs[("callrouter", ep)], strict=False)
            ]
            print(
                f"{ep:9s} ratio this checkout/{name}: median {statistics.median(versus):.2f}"
                f" of {', '.join(f'{r:.2f}' for r in versus)}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
