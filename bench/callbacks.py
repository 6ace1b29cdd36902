"""Callback path against a no-op RQ job, measured in the same run on the same Redis.

For N requests: the latency from writing a request to its job starting, and jobs per second
of a worker draining them (each job runs the real path: due check, ordering, the guarded
state change, the REST call through a stand-in adapter that answers at once). The baseline
is the same number of no-op jobs through the same queue and worker type. Target: the
callback path costs at most twice the no-op job (ratio <= 2).

Run: `.venv/bin/python bench/callbacks.py [--requests N]`
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rq import SimpleWorker

from callrouter import callbacks, create_app, redis_conn
from callrouter.models import Call
from callrouter.twilio_adapter import PlacedCall


class InstantAdapter:
    """Answers REST requests at once: the benchmark measures callrouter, not the network."""

    def create_call(self, **_):
        return PlacedCall("CA" + uuid.uuid4().hex, "queued")


def directory_text(numbers: int) -> str:
    nums = ", ".join(f'"+3188300{i:04d}"' for i in range(numbers))
    return f"""internal_number: "+31880100100"
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
        numbers: [{nums}]
        open_on_holidays: true
        hours: "24/7"
"""


def request_callback(svc, call_sid: str, i: int, urgent: bool) -> tuple[str, datetime]:
    """Write one callback request (as the voice flow does) and enqueue it; its job id and
    the moment it was requested."""
    at = datetime.now(UTC)
    with svc.sessions.begin() as s:
        call_id = uuid.uuid4().hex
        s.add(
            Call(
                id=call_id,
                call_sid=call_sid,
                received_at=at,
                caller_org="utrecht",
                urgent=False,
                consent=False,
            )
        )
        s.flush()
        req, _ = callbacks.create(
            s,
            call_id=call_id,
            transfer_id=None,
            caller_org="utrecht",
            line_id="svb-aow",
            urgent=urgent,
            consent=False,
            reason="closed",
            worker_number=f"+3130286{i:04d}",
            at=at,
        )
        request_id = req.id
    callbacks.schedule(request_id)
    return callbacks.job_id(request_id, 1), at


def drain(app, queue) -> float:
    t0 = time.perf_counter()
    with app.app_context():
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    return time.perf_counter() - t0


def latencies(queue, ids, created) -> list[float]:
    out = []
    for jid in ids:
        job = queue.fetch_job(jid)
        out.append((job.started_at.replace(tzinfo=UTC) - created[jid]).total_seconds())
    return out


def latency_run(app, env: dict, k: int) -> tuple[list[float], list[float]]:
    """Request-to-job-start latency with a real `python worker.py` (forking) running, for
    k no-op jobs and k callback requests written one by one."""
    import os
    import subprocess

    from rq import Worker

    svc = app.extensions["callrouter"]
    queue = svc.queue("default")
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=root,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not Worker.all(connection=svc.redis):
            if time.monotonic() > deadline:
                raise RuntimeError("worker did not start")
            time.sleep(0.1)
        time.sleep(0.5)
        noop_ids, cb_ids, created = [], [], {}
        for i in range(k):
            jid = f"lat-noop-{i}"
            created[jid] = datetime.now(UTC)
            queue.enqueue("bench.noop.noop", job_id=jid)
            noop_ids.append(jid)
            time.sleep(0.05)
        with app.app_context():
            for i in range(k):
                jid, created[jid] = request_callback(svc, f"CAl{i}", i, urgent=False)
                cb_ids.append(jid)
                time.sleep(0.05)
        deadline = time.monotonic() + 120
        while any(
            (queue.fetch_job(j) is None or queue.fetch_job(j).started_at is None)
            for j in noop_ids + cb_ids
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("jobs did not start")
            time.sleep(0.2)
        return latencies(queue, noop_ids, created), latencies(queue, cb_ids, created)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    n = ap.parse_args().requests
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "lines.yaml"
        lines.write_text(directory_text(n))
        import os

        redis_url = os.environ.get("REDIS_URL") or redis_conn.ensure_embedded(Path(tmp) / "r")
        app = create_app(
            environ={
                "CALLROUTER_ENV": "test",
                "CALLROUTER_INSTANCE": tmp,
                "CALLROUTER_LINES": str(lines),
                "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp}/bench.db"),
                "REDIS_URL": redis_url,
                "SECRET_KEY": "bench-secret-0123456789",
                "TWILIO_AUTH_TOKEN": "bench-token-0123456789",
            },
            adapter=InstantAdapter(),
        )
        svc = app.extensions["callrouter"]
        svc.redis.flushdb()
        queue = svc.queue("default")
        try:
            # Baseline: no-op jobs.
            created, ids = {}, []
            for i in range(n):
                jid = f"noop-{i}"
                created[jid] = datetime.now(UTC)
                queue.enqueue("bench.noop.noop", job_id=jid)
                ids.append(jid)
            t_noop = drain(app, queue)

            # The callback path: write the request, enqueue it, run it.
            created, ids = {}, []
            with app.app_context():
                for i in range(n):
                    jid, created[jid] = request_callback(svc, f"CAb{i}", i, urgent=i % 7 == 0)
                    ids.append(jid)
            t_cb = drain(app, queue)
            with app.app_context(), svc.sessions() as s:
                from sqlalchemy import func, select

                from callrouter.models import CallbackRequest

                dialling = s.scalar(
                    select(func.count())
                    .select_from(CallbackRequest)
                    .where(CallbackRequest.state == "dialling")
                )
            env = {
                "CALLROUTER_ENV": "test",
                "CALLROUTER_INSTANCE": tmp,
                "CALLROUTER_LINES": str(lines),
                "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{tmp}/bench.db"),
                "REDIS_URL": redis_url,
                "SECRET_KEY": "bench-secret-0123456789",
                "TWILIO_AUTH_TOKEN": "bench-token-0123456789",
                # Nothing listens here: the REST request fails at once, after the job began.
                "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
            }
            lat_noop, lat_cb = latency_run(app, env, 40)
        finally:
            if not os.environ.get("REDIS_URL"):
                redis_conn.stop_embedded(Path(tmp) / "r")
    rate_noop, rate_cb = n / t_noop, n / t_cb
    ratio = rate_noop / rate_cb
    lat_ratio = statistics.median(lat_cb) / statistics.median(lat_noop)
    print(
        f"no-op job:     {rate_noop:8.1f} jobs/s (burst, {n} jobs)   request-to-start p50 "
        f"{statistics.median(lat_noop) * 1e3:6.1f} ms (forking worker, one at a time)"
    )
    print(
        f"callback path: {rate_cb:8.1f} jobs/s (burst, {n} jobs)   request-to-start p50 "
        f"{statistics.median(lat_cb) * 1e3:6.1f} ms   ({dialling}/{n} calls placed)"
    )
    print(
        f"time per job, callback / no-op: {ratio:.2f} (target <= 2) "
        f"{'OK' if ratio <= 2 else 'OVER TARGET'}"
    )
    print(f"request-to-start latency, callback / no-op: {lat_ratio:.2f}")
    return 0 if ratio <= 2 and dialling == n else 1


if __name__ == "__main__":
    sys.exit(main())
