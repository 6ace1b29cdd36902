"""The OTLP export of the Logboek Dataverwerkingen: records as spans, sent from the outbox."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from redis.exceptions import LockError, RedisError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callrouter import clock, services
from callrouter.models import LdvRecord

log = logging.getLogger(__name__)

BATCH = 500  # records per export request
# Seconds per batch, the exporter's own retries included (with a collector down it gives up
# after about 3 s): an RQ worker runs one job at a time, and the calls queue waits meanwhile.
TIMEOUT = 5.0
# Seconds of batches per run; the next run, 10 s later, goes on where it stopped. Short: the
# worker serves the calls queue (transfer legs) between jobs only, so a backlog (a collector
# connected after months, or back after an outage) is sent a few thousand records per run
# instead of holding the worker for a minute.
BUDGET = 2.0
EVERY = 10  # seconds between runs
# After a run the collector did not acknowledge, the next waits this long: a worker runs one
# job at a time, and a transfer's leg should not wait behind retries to a collector that is down.
BACKOFF = 60
LOCK = "callrouter:ldv-export"
BACKOFF_KEY = "callrouter:ldv-export:backoff"
SCOPE = InstrumentationScope("callrouter.ldv")
STATUS = {"Ok": StatusCode.OK, "Unset": StatusCode.UNSET, "Error": StatusCode.ERROR}
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(moment: datetime) -> int:
    """Nanoseconds since the epoch, exact (no float on the way)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _context(trace_id: str, span_id: str) -> SpanContext:
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=SAMPLED)


def to_spans(rows: Sequence[LdvRecord]) -> list[ReadableSpan]:
    """One finished span per record, with the standard's dpl.core attributes."""
    spans = []
    for row in rows:
        attributes = dict(row.attributes or {})
        attributes["dpl.core.processing_activity_id"] = row.processing_activity_id
        if row.data_subject_id:
            attributes["dpl.core.data_subject_id"] = row.data_subject_id
        if row.data_subject_id_type:
            attributes["dpl.core.data_subject_id_type"] = row.data_subject_id_type
        parent = row.parent_span_id
        spans.append(
            ReadableSpan(
                name=row.name,
                context=_context(row.trace_id, row.span_id),
                parent=_context(row.trace_id, parent) if parent else None,
                resource=Resource(dict(row.resource or {})),
                attributes=attributes,
                links=[Link(_context(t, s)) for t, s in row.links or ()],
                kind=SpanKind.INTERNAL,
                status=Status(STATUS[row.status]),
                start_time=_ns(row.start_time),
                end_time=_ns(row.end_time),
                instrumentation_scope=SCOPE,
            )
        )
    return spans


def export_pending(
    engine,
    endpoint: str,
    *,
    batch: int = BATCH,
    timeout: float = TIMEOUT,
    proceed: Callable[[], bool] | None = None,
    failed: Callable[[], None] | None = None,
) -> int:
    """Send the records not yet acknowledged, oldest first, batch after batch; how many the
    collector acknowledged. A batch is marked exported only once the collector answered
    success; a failed batch ends the run with nothing marked (it is sent again next run).
    `proceed()`, asked before each batch, can end the run early (lock lost, time up);
    `failed()` is called when a batch was not acknowledged."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout, session=_session())
    sent = 0
    try:
        while proceed is None or proceed():
            with Session(engine) as s:  # read, and end the transaction before the request
                rows = list(
                    s.scalars(
                        select(LdvRecord)
                        .where(LdvRecord.exported_at.is_(None))
                        .order_by(LdvRecord.id)
                        .limit(batch)
                    )
                )
            if not rows:
                break
            if exporter.export(to_spans(rows)) is not SpanExportResult.SUCCESS:
                log.warning(
                    "ldv export: the collector did not acknowledge %d records; they stay "
                    "in the outbox for the next run",
                    len(rows),
                )
                if failed is not None:
                    failed()
                break
            _mark_exported(engine, [r.id for r in rows])
            sent += len(rows)
            if len(rows) < batch:
                break
    finally:
        exporter.shutdown()
    return sent


def _session():
    """The exporter's HTTP session, on which a redirect fails the request: the exporter
    follows none, yet counts any status below 400 as acknowledged."""
    import requests

    def refuse_redirect(response, *args, **kwargs):
        if 300 <= response.status_code < 400:
            raise requests.HTTPError(f"the collector answered {response.status_code}")

    session = requests.Session()
    session.hooks["response"].append(refuse_redirect)
    return session


def _mark_exported(engine, ids: list[int]) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(LdvRecord)
            .where(LdvRecord.id.in_(ids), LdvRecord.exported_at.is_(None))
            .values(exported_at=clock.now())
        )


def run(
    svc: services.Services,
    *,
    batch: int = BATCH,
    timeout: float = TIMEOUT,
    budget: float = BUDGET,
) -> int | None:
    """One export run under the cluster-wide lock; None when another process holds it (or
    no endpoint is configured). The lock outlives the longest request and is renewed before
    each batch, so that no two processes ever send the same records."""
    endpoint = svc.settings.ldv_otlp_endpoint
    if not endpoint:
        return None
    lock = svc.redis.lock(LOCK, timeout=3 * timeout + 30, blocking=False)
    if not lock.acquire():
        return None
    ends = time.monotonic() + budget

    def proceed() -> bool:
        if time.monotonic() > ends:
            return False
        try:
            lock.reacquire()
        except LockError:
            log.warning("ldv export: the lock was lost; the run stops")
            return False
        return True

    def failed() -> None:
        try:
            svc.redis.set(BACKOFF_KEY, "1", ex=BACKOFF)
        except RedisError:
            pass

    try:
        return export_pending(
            svc.engine, endpoint, batch=batch, timeout=timeout, proceed=proceed, failed=failed
        )
    finally:
        try:
            lock.release()
        except LockError:
            pass


def run_and_reschedule(timeout: float = TIMEOUT) -> int | None:
    """RQ job: an export run, then the next one (one job per 10-second slot, by its id)."""
    try:
        return run(services.current(), timeout=timeout)
    finally:
        schedule()


def schedule() -> None:
    """The next run at the next 10-second boundary; nothing without an endpoint. Slots are
    aligned, so the job ids of several schedulers (each worker's start, the job itself)
    coincide and one chain of runs remains."""
    svc = services.current()
    if not svc.settings.ldv_otlp_endpoint:
        return
    # Real time, as RQ's scheduler keeps it (the sandbox's clock may be moved ahead).
    try:
        wait = max(0, svc.redis.ttl(BACKOFF_KEY))  # after a failed run
    except (RedisError, OSError):
        wait = 0
    nxt = datetime.fromtimestamp((int(time.time()) + wait) // EVERY * EVERY + EVERY, UTC)
    try:
        svc.queue(services.QUEUE_DEFAULT).enqueue_at(
            nxt,
            run_and_reschedule,
            job_id=f"ldv-export-{nxt:%Y%m%d%H%M%S}",
            result_ttl=60,
            failure_ttl=86400,
        )
    except (RedisError, OSError):
        log.warning("could not schedule the ldv export")
