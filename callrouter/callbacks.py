"""Callback requests: created by the voice flow, run by RQ, the database the source of truth.

A request is written first, then enqueued with a deterministic job id (`cb-<id>-<attempt>`),
so the same attempt is never queued twice. When its time comes, the job starts the due
requests of that line in order (urgent first, then the oldest), no more at once than the
line's hunt group has numbers. Each attempt moves the row from `pending` to `dialling` in one
conditional UPDATE before any REST request: a job that RQ delivers twice, or that runs again
after its worker was killed, finds the row moved on and places no second call.

Jobs here take ids only; the worker's number is decrypted inside the job that dials it.
"""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

import phonenumbers
from redis.exceptions import RedisError
from rq import Retry
from rq.job import Job
from sqlalchemy import bindparam, event, select, update

from callrouter import clock, db, services
from callrouter.flows import callback as cflow
from callrouter.models import CallbackRequest
from callrouter.privacy import mask
from callrouter.twilio_adapter import TelephonyError

log = logging.getLogger(__name__)

QUEUE = "default"
ACTIVE = ("dialling", "connecting", "connected")
OPEN = ("pending", *ACTIVE)
# An attempt that has been `dialling` this long without a call SID lost its job mid-way.
STALE_DIALLING = timedelta(minutes=3)
# Attempts whose status callbacks were lost: ringing and dialling the worker take minutes,
# a conversation rarely hours. Past these, the sweeper closes them (reconciliation usually
# does so sooner, from the provider's own call list).
STALE_RINGING = timedelta(minutes=15)
STALE_CONNECTED = timedelta(hours=4)
SWEEP_EVERY = timedelta(minutes=1)
# Reference alphabet: no 0/O, 1/I/L, so that it reads well on a phone and in an SMS.
_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def now() -> datetime:
    return clock.now()


def _reference() -> str:
    return "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))


def job_id(request_id: str, attempt: int) -> str:
    return f"cb-{request_id}-{attempt}"


# --------------------------------------------------------------------------- creating


def create(
    session,
    *,
    call_id: str,
    transfer_id: str | None,
    caller_org: str | None,
    line_id: str,
    urgent: bool,
    consent: bool,
    reason: str,
    worker_number: str | None,
    at: datetime,
    case_id: str | None = None,
) -> tuple[CallbackRequest, bool]:
    """Write a request; returns it and whether an existing one was reused.

    A repeated webhook of the same call returns the call's request for that line. A worker who
    asks again for a line they already wait for (on the same case, when there is one) gets
    their pending request updated (urgency and consent carried over), keeping its place in the
    queue: one pending request per worker (or case) and line.
    """
    svc = services.current()
    existing = session.scalar(
        select(CallbackRequest).where(
            CallbackRequest.call_id == call_id, CallbackRequest.line_id == line_id
        )
    )
    if existing is not None:
        return existing, False
    worker_hmac = svc.pseudonyms.pseudonym(worker_number)
    if worker_hmac:
        same_q = select(CallbackRequest).where(
            CallbackRequest.worker_hmac == worker_hmac,
            CallbackRequest.line_id == line_id,
            CallbackRequest.state == "pending",
        )
        if case_id is not None:
            same_q = same_q.where(CallbackRequest.case_id == case_id)
        same = session.scalar(same_q)
        if same is not None:
            same.urgent = same.urgent or urgent
            same.consent = consent
            same.updated_at = at
            return same, True
    d = svc.directory
    line = d.line(line_id)
    # Without a number to call back (a withheld number), there is nobody to call: refused.
    planned = cflow.first_plan(d, line, d.caller(caller_org), at, reason) if worker_number else None
    req = CallbackRequest(
        id=uuid.uuid4().hex,
        reference=_reference(),
        call_id=call_id,
        transfer_id=transfer_id,
        case_id=case_id,
        caller_org=caller_org,
        target_org=line.organisation_id,
        line_id=line_id,
        urgent=urgent,
        consent=consent,
        reason=reason,
        worker_number_enc=svc.pseudonyms.encrypt(worker_number) if worker_number else None,
        worker_hmac=worker_hmac,
        worker_masked=mask(worker_number),
        state="pending" if planned else "failed",
        outcome=None if planned else ("never-open" if worker_number else "no-number"),
        requested_at=at,
        planned_at=planned,
        attempts=0,
        max_attempts=svc.settings.callback_attempts,
        updated_at=at,
    )
    session.add(req)
    session.flush()
    if req.state == "pending":
        svc.pending_workers.add(worker_hmac)
        # The other web processes look again once the request is there for them to see.
        event.listen(session, "after_commit", lambda _s: svc.pending_workers.announce(), once=True)
    return req, False


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


# --------------------------------------------------------------------------- running


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


def _kick(line_id: str) -> None:
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
            _replan(request_id, cflow.plan(d, line, d.caller(caller_org), at))
            continue
        if _begin_attempt(request_id, free[0]):
            free.pop(0)
            slots -= 1
            started.append(request_id)
    return started


def _replan(request_id: str, planned: datetime | None) -> None:
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
    _kick(line_id)  # a slot of the line is free again


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
    _kick(line_id)


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


# --------------------------------------------------------------------------- sweeping


def sweep() -> dict:
    """Make the queue match the database: enqueue pending requests that have no job (Redis
    was down, or lost its data), and close attempts whose job died before placing a call.
    Runs when a worker starts and then every minute."""
    svc = services.current()
    at = now()
    counts = {"enqueued": 0, "stale": 0}
    with svc.sessions() as s:
        pending = s.execute(
            select(CallbackRequest.id, CallbackRequest.attempts).where(
                CallbackRequest.state == "pending"
            )
        ).all()
        stale = s.execute(
            select(CallbackRequest.id, CallbackRequest.attempts).where(
                CallbackRequest.state == "dialling",
                CallbackRequest.call_sid.is_(None),
                CallbackRequest.last_attempt_at < at - STALE_DIALLING,
            )
        ).all()
    for request_id, attempts in pending:
        try:
            exists = Job.exists(job_id(request_id, attempts + 1), connection=svc.redis)
        except (RedisError, OSError):
            return counts
        if not exists and schedule(request_id):
            counts["enqueued"] += 1
    with svc.sessions() as s:  # due by the clock, whatever the queue's timetable says
        due_lines = set(
            s.scalars(
                select(CallbackRequest.line_id).where(
                    CallbackRequest.state == "pending", CallbackRequest.planned_at <= at
                )
            )
        )
    for line_id in sorted(due_lines):  # started by a job, never inside the sweep itself
        try:
            svc.queue(QUEUE).enqueue(
                start_due,
                line_id,
                job_id=f"cb-due-{line_id}-{at:%Y%m%d%H%M}",
                retry=Retry(max=5, interval=[15, 30, 60]),
            )
        except (RedisError, OSError):
            break
    with svc.sessions() as s:
        lost = s.execute(
            select(CallbackRequest.id, CallbackRequest.attempts, CallbackRequest.state).where(
                (
                    (CallbackRequest.state.in_(("dialling", "connecting")))
                    & CallbackRequest.call_sid.is_not(None)
                    & (CallbackRequest.last_attempt_at < at - STALE_RINGING)
                )
                | (
                    (CallbackRequest.state == "connected")
                    & (CallbackRequest.last_attempt_at < at - STALE_CONNECTED)
                )
            )
        ).all()
    for request_id, attempts, state in lost:
        if state == "connected":
            finished(request_id, attempts, "connected")
        else:
            attempt_failed(request_id, attempts, "lost")
        counts["stale"] += 1
    for request_id, attempts in stale:
        # Its job was killed between the guard and the REST request (or during it). Whether
        # that request reached the provider is unknown, so this attempt is not repeated: it
        # counts as failed and the next attempt follows the retry plan.
        attempt_failed(request_id, attempts, "lost")
        counts["stale"] += 1
    return counts


def sweep_and_reschedule() -> dict:
    """RQ job: sweep, then schedule the next sweep (one job per minute, by its id)."""
    counts = sweep()
    schedule_sweep()
    return counts


def schedule_sweep() -> None:
    svc = services.current()
    nxt = (now() + SWEEP_EVERY).replace(second=0, microsecond=0)
    try:
        svc.queue(QUEUE).enqueue_at(
            nxt,
            sweep_and_reschedule,
            job_id=f"cb-sweep-{nxt:%Y%m%d%H%M}",
            result_ttl=600,
            failure_ttl=3600,
        )
    except (RedisError, OSError):
        log.warning("could not schedule the callback sweep")


# --------------------------------------------------------------------------- confirmation


def send_confirmation(request_id: str) -> str | None:
    """RQ job: SMS the worker the planned time and reference (caller setting, mobiles only)."""
    svc = services.current()
    d = svc.directory
    with svc.sessions() as s:
        req = s.get(CallbackRequest, request_id)
        if req is None or req.state != "pending" or req.planned_at is None:
            return None
        caller = d.caller(req.caller_org)
        if caller is None or not caller.sms_confirmation:
            return None
        number = svc.pseudonyms.decrypt(req.worker_number_enc)
        org, line = d.organisation(req.target_org), d.line(req.line_id)
        planned, reference = req.planned_at, req.reference
    if not number or not is_mobile(number):
        return None
    with svc.sessions.begin() as s:  # once, also when this job is delivered twice
        first = s.execute(
            update(CallbackRequest)
            .where(CallbackRequest.id == request_id, CallbackRequest.confirmed_at.is_(None))
            .values(confirmed_at=now())
        ).rowcount  # type: ignore[attr-defined]  # an UPDATE's CursorResult
    if not first:
        return None
    from callrouter.flows.speech import when

    local_now = now().astimezone(d.tz)
    body = (
        f"callrouter: uw terugbelverzoek {reference} voor {org.name} ({line.topic}) is "
        f"gepland {when(planned, local_now)}. Annuleren: bel de professionallijn."
    )
    try:
        return svc.telephony.send_sms(to=number, from_=d.internal_number, body=body)
    except TelephonyError:
        return None


def is_mobile(number: str) -> bool:
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(number, "NL"))
    except phonenumbers.NumberParseException:
        return False
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


# --------------------------------------------------------------------------- operators


def cancel(request_id: str, by: str) -> bool:
    """Cancel a request that has not started; True if it was cancelled."""
    with services.current().sessions.begin() as s:
        won = cancel_in(s, request_id, by)
    if won:
        forget_job(request_id)
    return won


def cancel_in(s, request_id: str, by: str) -> bool:
    """Cancel a pending request in the caller's transaction; True if it was cancelled. The
    queued attempt is left to `forget_job` once the transaction has committed."""
    at = now()
    won = s.execute(
        update(CallbackRequest)
        .where(CallbackRequest.id == request_id, CallbackRequest.state == "pending")
        .values(state="cancelled", outcome=f"cancelled-by-{by}", done_at=at, updated_at=at)
    ).rowcount
    return bool(won)


def forget_job(request_id: str) -> None:
    """Take a cancelled request's next attempt off the queue. The attempt would find the row
    cancelled anyway; this only tidies the queue."""
    try:
        job = Job.fetch(
            job_id(request_id, _attempts(request_id) + 1), connection=services.current().redis
        )
        job.cancel()
        job.delete()
    except Exception:  # no job, or Redis down: the row decides
        pass


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


def _attempts(request_id: str) -> int:
    with services.current().sessions() as s:
        req = s.get(CallbackRequest, request_id)
        return req.attempts if req is not None else 0


_PENDING_FOR_WORKER = (
    select(
        CallbackRequest.id,
        CallbackRequest.target_org,
        CallbackRequest.line_id,
        CallbackRequest.planned_at,
    )
    .where(CallbackRequest.worker_hmac == bindparam("worker"), CallbackRequest.state == "pending")
    .order_by(CallbackRequest.planned_at)
    .limit(1)
)


class PendingWorkers:
    """Which workers (by pseudonym) have a pending request, refreshed every few seconds.

    Every inbound call asks whether its worker waits for a callback; nearly always the answer
    is no. One small query per process every `ttl` seconds answers that for all calls; only a
    worker in the set costs the full lookup. A process that makes a request touches `stamp`
    (a file in the instance folder), and every process of this machine refreshes its set when
    the stamp has moved: a worker who calls straight back hears the request at once, whichever
    web process answers. (Web processes on another machine learn it within `ttl`.) One that
    just ended may still be offered for cancelling, which then finds nothing: harmless.
    """

    _QUERY = (
        select(CallbackRequest.worker_hmac)
        .where(CallbackRequest.state == "pending", CallbackRequest.worker_hmac.is_not(None))
        .distinct()
    )

    def __init__(self, ttl: float = 5.0, stamp=None):
        import threading

        self.ttl = ttl
        self.stamp = stamp
        self._lock = threading.Lock()
        self._until = 0.0
        self._seen = None
        self._members: frozenset[str] = frozenset()

    def _stamp(self):
        if self.stamp is None:
            return None
        try:
            st = os.stat(self.stamp)
            return st.st_mtime_ns, st.st_size  # the size moves even within one clock tick
        except OSError:
            return None

    def contains(self, worker_hmac: str, conn) -> bool:
        import time

        now_, stamp = time.monotonic(), self._stamp()
        if now_ >= self._until or stamp != self._seen:
            with self._lock:
                self._members = frozenset(db.run_prepared(conn, self._QUERY, {}).scalars())
                self._until, self._seen = now_ + self.ttl, stamp
        return worker_hmac in self._members

    def add(self, worker_hmac: str | None) -> None:
        """This process is making a request: know it at once (`announce` tells the others
        once it is committed)."""
        if worker_hmac:
            self._members = self._members | {worker_hmac}

    def announce(self) -> None:
        """A request is committed: move the stamp, so the other processes look again."""
        if self.stamp is None:
            return
        try:
            os.makedirs(os.path.dirname(self.stamp), exist_ok=True)
            with open(self.stamp, "ab") as f:
                if f.tell() > 4096:
                    f.truncate(0)
                f.write(b".")
        except OSError:
            log.warning("could not touch %s", self.stamp)


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


def pending_for_worker(worker_hmac: str | None, conn):
    """The worker's next pending request (id, target_org, line_id, planned_at), or None.
    Nearly always answered from the process's set, without a query; `conn` is the incoming
    webhook's own (hot) connection, so that the call costs one transaction."""
    if not worker_hmac:
        return None
    if not services.current().pending_workers.contains(worker_hmac, conn):
        return None
    row = db.run_prepared(conn, _PENDING_FOR_WORKER, {"worker": worker_hmac}).first()
    if row is None:
        return None
    column_type = CallbackRequest.__table__.c.planned_at.type.dialect_impl(conn.dialect)
    planned = column_type.result_processor(conn.dialect, None)
    return PendingRequest(row[0], row[1], row[2], planned(row[3]) if planned else row[3])


class PendingRequest(NamedTuple):
    id: str
    target_org: str
    line_id: str
    planned_at: datetime


__all__ = [
    "cancel",
    "create",
    "dial_worker",
    "finished",
    "reschedule",
    "run_due",
    "schedule",
    "send_confirmation",
    "start_due",
    "sweep",
]
