"""Load and faults: calls at a steady rate through the production layout while parts fail.

Two `gunicorn app:app` instances (3 workers each) behind a round-robin proxy, two
`python worker.py`, PostgreSQL and a Redis server of the suite's own, and the sandbox as the
telephone network (its REST API on a port of its own, its webhooks to the proxy, as Twilio's).
Calls are placed at `--rate` per second: plain transfers, a hunt group whose first number is
busy, a closed line (a callback request), a life-event chain of two organisations. Meanwhile,
one after another: a gunicorn worker is SIGKILLed mid-call, an RQ worker (with its work
horse) is SIGKILLed mid-job and started again, Redis is stopped for `--redis-down` seconds
and started again, every PostgreSQL connection of the service is terminated, and status
callbacks are delivered late (0.5-4 s). The proxy retries a request on the other web service
when one drops the connection, as deploy/nginx.conf does.

Afterwards the reconciliation runs, and the suite checks:
every call has exactly one row in the call log and a final state (so do its transfers and
legs); every closed-line call has its callback request; no number was dialled twice for one
transfer; no professional was left alone in a conference, no worker left in silence; every
worker heard Dutch and nobody heard an application error. It prints a table (calls placed,
completed, repaired by the reconciliation, lost, duplicate dials, webhook latency during each
fault) and exits 1 when anything was lost or dialled twice.

    .venv/bin/python bench/faults.py                        # 200 calls, PostgreSQL on 127.0.0.1
    .venv/bin/python bench/faults.py --calls 40 --rate 1 --redis-down 5
    .venv/bin/python bench/faults.py --sabotage lose-callback   # must report a loss, exit 1

`--sabotage` proves the checks: `lose-callback` deletes one callback request mid-run (a
write lost), `dial-twice` makes the network place one leg twice.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from fault_parts import (  # noqa: E402 - after the path is set
    Driver,
    Network,
    Processes,
    Proxy,
    RedisServer,
    check,
    directory,
    fresh_database,
    report,
)

from callrouter.sandbox import SANDBOX_ACCOUNT  # noqa: E402

TOKEN = "faults-auth-token-0123456789abcdef"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rate", type=float, default=1.5, help="calls placed per second")
    ap.add_argument("--redis-down", type=float, default=20.0, help="seconds Redis is stopped")
    ap.add_argument(
        "--database-url",
        default=os.environ.get(
            "FAULTS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL server whose user may create databases (a fresh one is made), "
        "or sqlite (a file; the PostgreSQL fault is then left out)",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--sabotage",
        default="",
        help="comma-separated: lose-callback, dial-twice (the checks must then fail)",
    )
    ap.add_argument("--keep", type=Path, default=None, help="copy the processes' log here")
    args = ap.parse_args(argv)
    unknown = set(filter(None, args.sabotage.split(","))) - {"lose-callback", "dial-twice"}
    if unknown:
        ap.error(f"unknown sabotage: {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory(prefix="callrouter-faults-") as tmp_name:
        tmp = Path(tmp_name)
        lines = tmp / "lines.yaml"
        lines.write_text(directory(), encoding="utf-8")
        redis = RedisServer(tmp / "redis")
        database_url, drop = fresh_database(args.database_url, tmp)
        net = Network(TOKEN)
        proxy = Proxy()
        env = {
            "CALLROUTER_ENV": "test",
            "CALLROUTER_LINES": str(lines),
            "CALLROUTER_INSTANCE": str(tmp / "instance"),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis.url,
            "TWILIO_ACCOUNT_SID": SANDBOX_ACCOUNT,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_API_BASE_URL": net.api_base,
            "PUBLIC_BASE_URL": proxy.url,
            "SECRET_KEY": "faults-secret-key-0123456789abcdefghij",
            "LOG_FORMAT": "json",
        }
        procs = Processes(env, tmp / "processes.log")
        try:
            redis.start()
            procs.migrate()
            proxy.backends = [procs.start_web(), procs.start_web()]
            procs.start_worker()
            procs.start_worker()
            procs.wait_for_workers(redis.client(), 2)
            driver = Driver(net, proxy, procs, redis, args)
            driver.run()
            result = check(driver, env)
        finally:
            procs.stop()
            proxy.stop()
            net.stop()
            redis.stop()
            drop()
        if args.keep:
            args.keep.write_bytes((tmp / "processes.log").read_bytes())
        print(report(driver, result))
        if result["lost"] or result["duplicates"] or result["problems"]:
            print("\nproblems:\n" + "\n".join(f"- {p}" for p in result["problems"][:40]))
            log = tmp / "processes.log"
            print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
            return 1
        print("\nproblems: none")
        return 0


if __name__ == "__main__":
    sys.exit(main())
