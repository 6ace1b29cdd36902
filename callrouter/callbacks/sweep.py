"""Keeping the queue true to the database (the sweep), and the SMS confirming a request."""

from __future__ import annotations

import logging

import phonenumbers
from redis.exceptions import RedisError
from rq import Retry
from rq.job import Job
from sqlalchemy import select, update

from callrouter import services
from callrouter.callbacks.attempts import attempt_failed, finished, schedule, start_due
from callrouter.callbacks.plan import (
    QUEUE,
    STALE_CONNECTED,
    STALE_DIALLING,
    STALE_RINGING,
    SWEEP_EVERY,
    job_id,
    now,
)
from callrouter.models import CallbackRequest
from callrouter.twilio_adapter import TelephonyError

log = logging.getLogger(__name__)


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
    from callrouter.ldv import export as ldv_export

    ldv_export.schedule()  # the export's chain of runs again, should one have been lost
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
