"""The shared state as Prometheus series, read at each scrape: the database, RQ's queues in
Redis, and the counters that the worker's jobs keep in Redis (`count()`).

Each database query reads a bounded part of an index (the last hour's calls by
`received_at`, the last hour's transfers by `ix_transfers_report`, callback requests by their
state), never a whole table: a scrape's cost follows the last hour's traffic, not the size of
the call log. A store that
cannot be reached gives `callrouter_up{store=...} 0` and the rest of the scrape, never an error.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from redis.exceptions import RedisError
from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from callrouter import clock
from callrouter.models import Call, CallbackRequest, Leg, Transfer
from callrouter.services import QUEUE_CALLS, QUEUE_DEFAULT

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)
CALLBACKS_DONE_WINDOW = timedelta(hours=24)
CALLBACK_OPEN = ("pending", "dialling", "connecting", "connected")
COUNTERS = "callrouter:metrics:counters"  # a Redis hash: "family|label" -> count
# The families the jobs count (`count()`), with their label and help.
JOB_COUNTERS = {
    "reconcile_repairs": (
        "kind",
        "Rows the hourly reconciliation filled in from the provider's call list.",
    ),
    "retention_purged": ("kind", "Rows whose personal fields the retention job removed."),
}


def count(redis, family: str, counts: dict[str, int]) -> None:
    """Add a job's counts to the shared counters (best effort: metrics never fail a job)."""
    if family not in JOB_COUNTERS:
        raise ValueError(f"unknown metrics family {family!r}")
    nonzero = {k: int(v) for k, v in counts.items() if v}
    if not nonzero:
        return
    try:
        pipe = redis.pipeline(transaction=False)
        for label, n in nonzero.items():
            pipe.hincrby(COUNTERS, f"{family}|{label}", n)
        pipe.execute()
    except (RedisError, OSError):
        log.warning("metrics: the %s counts could not be kept (Redis unavailable)", family)


class State:
    """A prometheus_client collector over the service's stores."""

    def __init__(self, svc):
        self.svc = svc

    def collect(self):
        up = GaugeMetricFamily(
            "callrouter_up",
            "Whether the scrape could read the store (1) or not (0).",
            labels=["store"],
        )
        try:
            yield from self._database()
            up.add_metric(["database"], 1)
        except SQLAlchemyError as exc:
            log.warning("metrics: the database could not be read (%s)", type(exc).__name__)
            up.add_metric(["database"], 0)
        try:
            yield from self._redis()
            up.add_metric(["redis"], 1)
        except (RedisError, OSError) as exc:
            log.warning("metrics: Redis could not be read (%s)", type(exc).__name__)
            up.add_metric(["redis"], 0)
        yield up

    def _database(self):
        at = clock.now()
        since = at - WINDOW
        calls = GaugeMetricFamily(
            "callrouter_calls_last_hour",
            "Calls to the internal number received in the last hour, by outcome "
            "(none: still in the menu or talking).",
            labels=["outcome"],
        )
        transfers = GaugeMetricFamily(
            "callrouter_transfers_last_hour",
            "Transfers started in the last hour, by state (dialling, connected, ended) and "
            "outcome.",
            labels=["state", "outcome"],
        )
        legs = GaugeMetricFamily(
            "callrouter_legs_last_hour",
            "Outbound legs of the last hour's transfers, by their provider status.",
            labels=["status"],
        )
        callbacks = GaugeMetricFamily(
            "callrouter_callbacks",
            "Callback requests by state: every open one (pending, dialling, connecting, "
            "connected), and the ended ones (done, failed, cancelled) requested in the last "
            "24 hours.",
            labels=["state"],
        )
        with self.svc.engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # a stalled server: callrouter_up 0, soon
                conn.exec_driver_sql("SET LOCAL statement_timeout = '3s'")
            rows = conn.execute(
                select(Call.outcome, func.count())
                .where(Call.received_at >= since)
                .group_by(Call.outcome)
            )
            for outcome, n in rows:
                calls.add_metric([outcome or "none"], n)
            rows = conn.execute(
                select(Transfer.state, Transfer.outcome, func.count())
                .where(Transfer.created_at >= since)
                .group_by(Transfer.state, Transfer.outcome)
            )
            for state, outcome, n in rows:
                transfers.add_metric([state, outcome or "none"], n)
            rows = conn.execute(
                select(Leg.status, func.count())
                .join(Transfer, Transfer.id == Leg.transfer_id)
                .where(Transfer.created_at >= since)
                .group_by(Leg.status)
            )
            for status, n in rows:
                legs.add_metric([status], n)
            rows = conn.execute(
                select(CallbackRequest.state, func.count())
                .where(
                    or_(
                        CallbackRequest.state.in_(CALLBACK_OPEN),
                        CallbackRequest.requested_at >= at - CALLBACKS_DONE_WINDOW,
                    )
                )
                .group_by(CallbackRequest.state)
            )
            seen = dict(rows.all())
            for state in (*CALLBACK_OPEN, "done", "failed", "cancelled"):
                callbacks.add_metric([state], seen.get(state, 0))
        yield from (calls, transfers, legs, callbacks)

    def _redis(self):
        from rq import Queue, Worker

        redis = self.svc.redis
        jobs = GaugeMetricFamily(
            "callrouter_queue_jobs",
            "RQ jobs per queue: waiting (queued), scheduled for later, started, failed.",
            labels=["queue", "state"],
        )
        workers = GaugeMetricFamily(
            "callrouter_queue_workers", "RQ workers listening on the queue.", labels=["queue"]
        )
        for name in (QUEUE_CALLS, QUEUE_DEFAULT):
            queue = Queue(name, connection=redis)
            jobs.add_metric([name, "queued"], queue.count)
            # Counted without RQ's clean-up: that retries abandoned jobs, a worker's work,
            # which a scrape must never do (twice with a worker's maintenance: a double dial).
            for state, registry in (
                ("scheduled", queue.scheduled_job_registry),
                ("started", queue.started_job_registry),
                ("failed", queue.failed_job_registry),
            ):
                jobs.add_metric([name, state], registry.get_job_count(cleanup=False))
            workers.add_metric([name], Worker.count(queue=queue))
        kept = redis.hgetall(COUNTERS)
        families = {
            family: CounterMetricFamily(f"callrouter_{family}", helptext, labels=[label])
            for family, (label, helptext) in JOB_COUNTERS.items()
        }
        for key, value in sorted(kept.items()):
            family, _, label = key.decode().partition("|")
            if family in families:
                families[family].add_metric([label], int(value))
        yield from (jobs, workers, *families.values())
