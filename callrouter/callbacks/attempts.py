"""Callback attempts: scheduling them (and rescheduling), starting a line's due requests in
order within its hunt group, and the jobs that follow one attempt (the worker dialled, an
attempt failed, done)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from rq import Retry
from rq.job import Job
from sqlalchemy import select, update

from callrouter import services
from callrouter.callbacks.plan import ACTIVE, QUEUE, job_id, now
from callrouter.flows import callback as cflow
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import CallbackRequest
from callrouter.twilio_adapter import TelephonyError

log = logging.getLogger(__name__)


def run_due(request_id: str, attempt: int) -> None:
    """RQ job: the planned time of a request has come; start the line's due requests in order."""
    svc = services.current()
    with svc.sessions() as s:
        req = s.get(CallbackRequest, request_id)
        # Started already (by an earlier job of the line), cancelled or done: nothing to do.
        line_id = req.line_id if req is not None and req.state == "pending" else None
    if line_id:
        start_due(line_id)


def start_due(line_id: str, wait: float = 20) -> list[str]:
    """Start due requests of a line, urgent first then oldest, within the hunt group's size.

    Serialised per line (a Redis lock), so that workers starting the same minute's requests
    together cannot overfill the line; each attempt takes a number no other attempt holds.
    """
    svc = services.current()
    if svc.directory.line(line_id) is None:
        return []
    try:
        # Held only while deciding and placing calls; it expires by itself if its holder dies.
        lock = svc.redis.lock(
            f"callrouter:callback-line:{line_id}", timeout=30, blocking_timeout=wait
        )
        acquired = lock.acquire()
    except (RedisError, OSError):
        lock, acquired = None, True  # no Redis: this process alone decides (best effort)
    if not acquired:
        raise LineBusy(line_id)
    try:
        return _start_due(line_id)
    finally:
        if lock is not None:
            try:
                lock.release()
            except Exception:  # expired or Redis gone: nothing to release
                pass


class LineBusy(Exception):
    """Another process is starting this line's callbacks; the job is retried by RQ."""


def kick(line_id: str) -> None:
    """A slot of the line may be free: start what is due now, or shortly in a job."""
    try:
        start_due(line_id, wait=2)
    except LineBusy:
        svc = services.current()
        try:
            svc.queue(QUEUE).enqueue_in(
                timedelta(seconds=15), start_due, line_id, retry=Retry(max=5, interval=[15, 30, 60])
            )
        except (RedisError, OSError):
            log.warning("line %s: could not queue the next callback start", line_id)


def _start_due(line_id: str) -> list[str]:
    svc = services.current()
    d = svc.directory
    line = d.line(line_id)
    at = now()
    started: list[str] = []
    with svc.sessions() as s:
        held = set(
            s.scalars(
                select(CallbackRequest.number_index).where(
                    CallbackRequest.line_id == line_id, CallbackRequest.state.in_(ACTIVE)
                )
            )
        )
        free = [i for i in range(len(line.numbers)) if i not in held]
        slots = len(free)
        if slots <= 0:
            return []
        candidates = s.execute(
            select(CallbackRequest.id, CallbackRequest.caller_org)
            .where(
                CallbackRequest.line_id == line_id,
                CallbackRequest.state == "pending",
                CallbackRequest.planned_at <= at + timedelta(seconds=1),
            )
            .order_by(
                CallbackRequest.urgent.desc(), CallbackRequest.requested_at, CallbackRequest.id
            )
            .limit(slots + 20)
        ).all()
    for request_id, caller_org in candidates:
        if slots <= 0:
            break
        if not cflow.reachable(d, line, d.caller(caller_org), at):
            replan(request_id, cflow.plan(d, line, d.caller(caller_org), at))
            continue
        if _begin_attempt(request_id, free[0]):
            free.pop(0)
            slots -= 1
            started.append(request_id)
    return started


def _begin_attempt(request_id: str, number_index: int) -> bool:
    """Move pending -> dialling (the guard), then ring number `number_index` of the line."""
    svc = services.current()
    at = now()
    with svc.sessions.begin() as s:
        won = s.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == request_id, CallbackRequest.state == "pending")
            .values(
                state="dialling",
                attempts=CallbackRequest.attempts + 1,
                last_attempt_at=at,
                updated_at=at,
                call_sid=None,
                worker_call_sid=None,
                number_index=number_index,
            )
        ).rowcount  # type: ignore[attr-defined]  # an UPDATE's CursorResult
        if not won:
            return False
        req = s.get(CallbackRequest, request_id)
        attempt, line_id = req.attempts, req.line_id
        shown = svc.directory.caller_id_for(req.caller_org)
        ldv_store.write(
            s,
            [
                ldv.callback_run(
                    svc.directory.register,
                    call_id=req.call_id,
                    request_id=req.id,
                    attempt=attempt,
                    case_id=req.case_id,
                    worker_hmac=req.worker_hmac,
                    org=req.target_org,
                    line=line_id,
                    at=at,
                )
            ],
        )
    line = svc.directory.line(line_id)
    number = line.numbers[number_index % len(line.numbers)]
    try:
        placed = svc.telephony.create_call(
            to=number,
            from_=shown,
            url=svc.url(f"/voice/callback/whisper?cb={request_id}&att={attempt}"),
            status_callback=svc.url(f"/voice/callback/status?cb={request_id}&att={attempt}"),
            timeout=line.ring_seconds,
        )
    except TelephonyError:
        attempt_failed(request_id, attempt, "failed")
        return True
    with svc.sessions.begin() as s:
        s.execute(
            update(CallbackRequest)
            .where(
                CallbackRequest.id == request_id,
                CallbackRequest.attempts == attempt,
                CallbackRequest.call_sid.is_(None),
            )
            .values(call_sid=placed.sid)
        )
    return True


def attempt_failed(request_id: str, attempt: int, reason: str) -> None:
    """An attempt ended without the two parties talking: retry later, or give up."""
    svc = services.current()
    d = svc.directory
    at = now()
    with svc.sessions.begin() as s:
        req = s.get(CallbackRequest, request_id)
        if req is None or req.attempts != attempt or req.state not in ACTIVE:
            return  # a late or repeated report of an attempt that is over already
        line = d.line(req.line_id)
        req.outcome, req.updated_at = reason, at
        planned = None
        if req.attempts < req.max_attempts and line is not None:
            planned = cflow.retry_plan(d, line, d.caller(req.caller_org), at, req.attempts)
        if planned is None:
            req.state, req.done_at = "failed", at
        else:
            req.state, req.planned_at = "pending", planned
        line_id, retry = req.line_id, planned is not None
    if retry:
        schedule(request_id)
    kick(line_id)  # a slot of the line is free again


def finished(request_id: str, attempt: int, outcome: str) -> None:
    """The call-back is over: record the final outcome and free the line's slot."""
    svc = services.current()
    at = now()
    with svc.sessions.begin() as s:
        req = s.get(CallbackRequest, request_id)
        if req is None or req.attempts != attempt or req.state not in ACTIVE:
            return
        req.state, req.outcome, req.done_at, req.updated_at = "done", outcome, at, at
        line_id = req.line_id
    kick(line_id)


def dial_worker(request_id: str, attempt: int) -> None:
    """RQ job: the professional accepted; dial the worker into the same conference."""
    svc = services.current()
    with svc.sessions() as s:
        req = s.get(CallbackRequest, request_id)
        if (
            req is None
            or req.attempts != attempt
            or req.state != "connecting"
            or req.worker_call_sid
        ):
            return
        number = svc.pseudonyms.decrypt(req.worker_number_enc)
    if not number:  # (requests without a dialable number are refused when made)
        worker_unreachable(request_id, attempt)
        return
    try:
        placed = svc.telephony.add_participant(
            conference_name(request_id, attempt),
            to=number,
            from_=svc.directory.caller_id,
            status_callback=svc.url(f"/voice/callback/worker-status?cb={request_id}&att={attempt}"),
            timeout=25,
            end_conference_on_exit=True,
        )  # two of them: either leaving ends the call
    except TelephonyError:
        worker_unreachable(request_id, attempt)
        return
    with svc.sessions.begin() as s:
        # (Its status callbacks may have arrived before this response: `connected` counts.)
        still = s.execute(
            update(CallbackRequest)
            .where(
                CallbackRequest.id == request_id,
                CallbackRequest.attempts == attempt,
                CallbackRequest.state.in_(("connecting", "connected")),
            )
            .values(worker_call_sid=placed.sid)
        ).rowcount  # type: ignore[attr-defined]  # an UPDATE's CursorResult
    if not still:  # the professional left while this request was in flight
        _end_call(placed.sid)


def professional_left(request_id: str, attempt: int) -> None:
    """The professional hung up while the worker was being dialled: stop ringing the worker."""
    svc = services.current()
    with svc.sessions() as s:
        req = s.get(CallbackRequest, request_id)
        worker_sid = req.worker_call_sid if req is not None and req.attempts == attempt else None
    if worker_sid:
        _end_call(worker_sid)
    attempt_failed(request_id, attempt, "professional-left")


def _end_call(sid: str) -> None:
    svc = services.current()
    for status in ("canceled", "completed"):  # ringing, or answered meanwhile
        try:
            svc.telephony.update_call(sid, status=status)
        except TelephonyError:
            continue


def worker_unreachable(request_id: str, attempt: int) -> None:
    """The worker did not answer: tell the professional, and try again later."""
    svc = services.current()
    with svc.sessions() as s:
        req = s.get(CallbackRequest, request_id)
        prof_sid = req.call_sid if req is not None and req.attempts == attempt else None
    if prof_sid:
        try:
            svc.telephony.update_call(
                prof_sid,
                url=svc.url(f"/voice/callback/worker-unreachable?cb={request_id}&att={attempt}"),
            )
        except TelephonyError:
            log.warning("callback %s: could not tell the professional", request_id)
    attempt_failed(request_id, attempt, "worker-unreachable")


def conference_name(request_id: str, attempt: int) -> str:
    return f"cb{request_id}{attempt}"


def claim_connecting(s, request_id: str, attempt: int, at: datetime) -> bool:
    """The professional accepted attempt `attempt`: dialling -> connecting, once (a retried
    webhook or a late acceptance of an earlier attempt wins nothing)."""
    won = s.execute(
        update(CallbackRequest)
        .where(
            CallbackRequest.id == request_id,
            CallbackRequest.attempts == attempt,
            CallbackRequest.state == "dialling",
        )
        .values(state="connecting", updated_at=at)
    ).rowcount
    return bool(won)


def schedule(request_id: str) -> bool:
    """Enqueue the request's next attempt at its planned time; False if Redis is unreachable
    (the sweeper enqueues it once Redis is back)."""
    svc = services.current()
    with svc.sessions() as s:
        req = s.get(CallbackRequest, request_id)
        if req is None or req.state != "pending" or req.planned_at is None:
            return False
        jid, planned, attempt = job_id(req.id, req.attempts + 1), req.planned_at, req.attempts
    try:
        queue = svc.queue(QUEUE)
        if Job.exists(jid, connection=svc.redis):
            return True
        ttl = svc.settings.retention_days * 24 * 3600
        kwargs = dict(
            job_id=jid, result_ttl=3600, failure_ttl=ttl, retry=Retry(max=3, interval=[10, 60, 300])
        )
        wait = planned - now()  # on the service's clock (shifted in the sandbox only)
        if wait.total_seconds() <= 0:
            queue.enqueue(run_due, request_id, attempt + 1, **kwargs)
        else:
            queue.enqueue_in(wait, run_due, request_id, attempt + 1, **kwargs)
        return True
    except (RedisError, OSError) as exc:
        log.warning(
            "callback %s: queue unavailable (%s); the sweeper will enqueue it",
            request_id,
            type(exc).__name__,
        )
        return False


def replan(request_id: str, planned: datetime | None) -> None:
    svc = services.current()
    with svc.sessions.begin() as s:
        req = s.get(CallbackRequest, request_id)
        if req is None or req.state != "pending":
            return
        req.planned_at, req.updated_at = planned, now()
        if planned is None:
            req.state, req.outcome = "failed", "never-open"
    if planned is not None:
        schedule(request_id)


def reschedule(request_id: str, planned: datetime) -> bool:
    svc = services.current()
    with svc.sessions.begin() as s:
        req = s.get(CallbackRequest, request_id)
        if req is None or req.state != "pending":
            return False
        old = job_id(req.id, req.attempts + 1)
        req.planned_at, req.updated_at = planned, now()
    try:
        Job.fetch(old, connection=svc.redis).delete()
    except Exception:  # nothing queued, or Redis down
        pass
    schedule(request_id)
    return True
