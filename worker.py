"""RQ worker entry point: `python worker.py` runs a worker with the scheduler.

It serves the `calls` queue (transfer legs, where seconds matter) before `default`, inside the
application context so that jobs reach the directory, the database and the telephony adapter.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys

from redis.exceptions import RedisError
from rq import Worker

from callrouter import create_app
from callrouter.services import QUEUE_CALLS, QUEUE_DEFAULT, current


def main(argv: list[str] | None = None) -> int:
    app = create_app()
    with app.app_context():
        svc = current()
        from callrouter import callbacks

        # The database is the source of truth: enqueue whatever it holds that the queue lost
        # (Redis down or emptied), then keep sweeping every minute.
        counts = callbacks.sweep()
        callbacks.schedule_sweep()
        logging.getLogger(__name__).info("callback sweep at start: %s", counts)
        from callrouter import reconcile

        reconcile.schedule()  # hourly: the call log against the provider's call list
        from callrouter import retention

        retention.schedule()  # daily: personal fields past their retention period
        from callrouter.ldv import export as ldv_export

        ldv_export.schedule()  # every 10 s: the LDV records to the collector (if configured)
        from callrouter import figures

        # The figures of days that settled while no worker ran (the daily job does the rest).
        with contextlib.suppress(RedisError, OSError):
            svc.queue(QUEUE_DEFAULT).enqueue(
                figures.build_job, job_id="figures-rollup-start", result_ttl=3600, failure_ttl=86400
            )
        # RQ runs the scheduler (retries, watchdogs, planned callbacks, the sweep) in one
        # worker, under a lock that lives 61 s; the others try to take it over only at their
        # maintenance, every 10 minutes by default. A worker killed while it held the lock
        # then left every scheduled job waiting that long (bench/faults.py found it): at 30 s
        # another worker takes over within 1.5 minutes, and jobs abandoned by a dead worker
        # are retried as soon (the maintenance also cleans the registries of started jobs).
        worker = Worker([QUEUE_CALLS, QUEUE_DEFAULT], connection=svc.redis, maintenance_interval=30)
        logging.getLogger(__name__).info("worker listening on %s", ", ".join(worker.queue_names()))
        burst = "--burst" in (argv or sys.argv[1:])
        # Everything loaded so far lives as long as the process: out of the collector's sight,
        # and shared with each job's forked work horse instead of copied by the collector.
        gc.freeze()
        worker.work(with_scheduler=True, burst=burst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
