"""Callback requests: the states, creating a request (with its first planned time), and
cancelling one. The database is the source of truth; a job only wakes it up."""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import datetime, timedelta

from rq.job import Job
from sqlalchemy import event, select, update

from callrouter import clock, services
from callrouter.flows import callback as cflow
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import CallbackRequest
from callrouter.privacy import mask

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
            _logged(session, svc.directory.register, same, call_id, at)  # this call's ask
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
    _logged(session, d.register, req, call_id, at)
    if req.state == "pending":
        svc.pending_workers.add(worker_hmac)
        # The other web processes look again once the request is there for them to see.
        event.listen(session, "after_commit", lambda _s: svc.pending_workers.announce(), once=True)
    return req, False


def _logged(session, register, req: CallbackRequest, call_id: str, at: datetime) -> None:
    """The LDV record of the stored (or, by a later call, renewed) request, in its
    transaction and in the trace of the call that asked."""
    record = ldv.callback_stored(
        register,
        call_id=call_id,
        request_id=req.id,
        case_id=req.case_id,
        worker_hmac=req.worker_hmac,
        org=req.target_org,
        line=req.line_id,
        reason=req.reason,
        at=at,
    )
    ldv_store.write(session, [record])


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
            job_id(request_id, attempt_count(request_id) + 1), connection=services.current().redis
        )
        job.cancel()
        job.delete()
    except Exception:  # no job, or Redis down: the row decides
        pass


def attempt_count(request_id: str) -> int:
    with services.current().sessions() as s:
        req = s.get(CallbackRequest, request_id)
        return req.attempts if req is not None else 0
