"""Reconciliation: the call log against the provider's own call list.

A status callback can be lost (a network failure, a deploy at the wrong second). Every hour
an RQ job lists the provider's calls of the last hours (`GET Calls.json?StartTime>=`) and
fills in the final state of every call, leg and callback attempt whose last status callback
never arrived. An inbound call that the provider knows and the log does not is recorded with
the outcome `reconstructed`. All updates only move states forward, so a late callback that
arrives after all changes nothing and duplicates no row.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select

from callrouter import callbacks, clock, db, metrics_state, services
from callrouter.flows import routing
from callrouter.flows import transfer as tflow
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import Call, CallbackRequest, Event, Leg, Transfer
from callrouter.privacy import mask
from callrouter.twilio_adapter import TelephonyError

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=6)
EVERY = timedelta(hours=1)
# Calls younger than this may still get their own callbacks: leave them alone.
GRACE = timedelta(minutes=10)


def now() -> datetime:
    return clock.now()


def _event(s, sid: str, status: str) -> None:
    db.insert_ignore(
        s,
        Event.__table__,
        dict(
            source="reconcile",
            sid=sid,
            event=status,
            sequence=-1,
            received_at=now(),
            detail={"CallStatus": status},
            call_id=None,
            transfer_id=None,
        ),
    )


def reconcile(window: timedelta = WINDOW) -> dict:
    """Compare the log of the last `window` with the provider and fill in what is missing."""
    svc = services.current()
    at = now()
    since = at - window
    counts = {"calls": 0, "legs": 0, "transfers": 0, "callbacks": 0, "reconstructed": 0}
    try:
        provider = {c.sid: c for c in svc.telephony.list_calls(since)}
    except TelephonyError:
        log.warning("reconciliation skipped: the provider's call list is unavailable")
        return counts
    finished = {sid: c for sid, c in provider.items() if c.status in tflow.TERMINAL}
    with svc.sessions.begin() as s:
        counts["calls"] = _close_calls(s, finished, since, at)
        counts["legs"] = _close_legs(s, finished, since, at)
        s.flush()
        counts["transfers"] = _close_transfers(s, since, at)
        callback_updates = _ended_callback_attempts(s, finished)
        counts["reconstructed"] = _reconstruct_calls(s, svc, provider, at)
    counts["callbacks"] = _settle_callback_attempts(callback_updates)
    if any(counts.values()):
        log.info("reconciliation filled in: %s", counts)
        metrics_state.count(svc.redis, "reconcile_repairs", counts)
    return counts


def _close_calls(s, finished: dict, since: datetime, at: datetime) -> int:
    """Inbound calls whose final status never arrived."""
    closed = 0
    for call in s.scalars(
        select(Call).where(
            Call.received_at >= since, Call.received_at < at - GRACE, Call.ended_at.is_(None)
        )
    ):
        pc = finished.get(call.call_sid)
        if pc is None:
            continue
        call.status = pc.status
        call.ended_at = pc.end_time or at
        call.duration_s = call.duration_s or pc.duration
        call.outcome = call.outcome or "abandoned"
        _event(s, call.call_sid, pc.status)
        closed += 1
    return closed


def _close_legs(s, finished: dict, since: datetime, at: datetime) -> int:
    """Legs whose final status never arrived."""
    closed = 0
    for leg in s.scalars(
        select(Leg).where(
            Leg.created_at >= since,
            Leg.call_sid.is_not(None),
            Leg.status.not_in(tflow.TERMINAL),
        )
    ):
        pc = finished.get(leg.call_sid)
        if pc is None:
            continue
        leg.status = pc.status
        leg.ended_at = pc.end_time or at
        leg.outcome = leg.outcome or tflow.leg_outcome(
            pc.status, leg.answered_at is not None, leg.accepted_at is not None
        )
        _event(s, leg.call_sid, pc.status)
        closed += 1
    return closed


def _close_transfers(s, since: datetime, at: datetime) -> int:
    """Transfers left open by those lost callbacks."""
    closed = 0
    for tr in s.scalars(
        select(Transfer).where(
            Transfer.created_at >= since,
            Transfer.created_at < at - GRACE,
            Transfer.state.in_(("dialling", "connected")),
        )
    ):
        legs = s.scalars(
            select(Leg).where(Leg.transfer_id == tr.id, Leg.kind == "professional")
        ).all()
        if any(leg.status not in tflow.TERMINAL for leg in legs):
            continue
        if tr.state == "dialling":
            tr.outcome = tflow.transfer_outcome([leg.outcome for leg in legs if leg.outcome])
        tr.state = "ended"
        tr.ended_at = tr.ended_at or max((leg.ended_at for leg in legs if leg.ended_at), default=at)
        if tr.accepted_at is not None and tr.duration_s is None:
            tr.duration_s = round((tr.ended_at - tr.accepted_at).total_seconds(), 2)
        closed += 1
    return closed


def _ended_callback_attempts(s, finished: dict) -> list[tuple[str, int, str, str]]:
    """Callback attempts whose professional leg ended unreported: (request id, attempt,
    state, the leg's final status), settled once this transaction is committed."""
    updates: list[tuple[str, int, str, str]] = []
    for req in s.scalars(
        select(CallbackRequest).where(
            CallbackRequest.state.in_(callbacks.ACTIVE), CallbackRequest.call_sid.is_not(None)
        )
    ):
        pc = finished.get(req.call_sid)
        if pc is not None:
            updates.append((req.id, req.attempts, req.state, pc.status))
            _event(s, req.call_sid, pc.status)
    return updates


def _reconstruct_calls(s, svc, provider: dict, at: datetime) -> int:
    """Inbound calls the log never saw."""
    known = set(s.scalars(select(Call.call_sid).where(Call.call_sid.in_(list(provider)))))
    internal = svc.directory.internal_number
    added = 0
    for pc in provider.values():
        if pc.sid in known or pc.direction != "inbound" or pc.to != internal:
            continue
        if pc.start_time is not None and pc.start_time > at - GRACE:
            continue
        number = routing.normalise_number(pc.from_)
        caller = routing.identify(svc.directory, number)
        call_id = uuid.uuid4().hex
        s.add(
            Call(
                id=call_id,
                call_sid=pc.sid,
                caller_org=caller.id if caller else None,
                identified_by="number" if caller else None,
                from_hmac=svc.pseudonyms.pseudonym(number or pc.from_ or None),
                from_masked=mask(number or pc.from_ or None),
                received_at=pc.start_time or at,
                ended_at=pc.end_time,
                status=pc.status,
                duration_s=pc.duration,
                outcome="reconstructed",
                urgent=False,
                consent=False,
            )
        )
        subject = svc.pseudonyms.pseudonym(number or pc.from_ or None)
        ldv_store.write(  # the call was received and identified, though no webhook told us
            s,
            ldv.arrival(
                svc.directory.register,
                call_id=call_id,
                at=pc.start_time or at,
                subject=subject,
                caller_org=caller.id if caller else None,
                identified_by="number" if caller else None,
            ),
        )
        _event(s, pc.sid, pc.status or "-")
        added += 1
    return added


def _settle_callback_attempts(updates: list[tuple[str, int, str, str]]) -> int:
    """Close the callback attempts found ended, each in its own step of the callback flow."""
    for request_id, attempt, state, status in updates:
        if state == "dialling":
            callbacks.attempt_failed(request_id, attempt, tflow.leg_outcome(status, False, False))
        elif state == "connected":
            callbacks.finished(request_id, attempt, "connected")
        else:
            callbacks.attempt_failed(request_id, attempt, "professional-left")
    return len(updates)


def reconcile_and_reschedule() -> dict:
    """RQ job: reconcile, then schedule the next run (one job per hour, by its id)."""
    counts = reconcile()
    schedule()
    return counts


def schedule() -> None:
    svc = services.current()
    nxt = (now() + EVERY).replace(minute=5, second=0, microsecond=0)
    try:
        svc.queue("default").enqueue_at(
            nxt,
            reconcile_and_reschedule,
            job_id=f"reconcile-{nxt:%Y%m%d%H}",
            result_ttl=3600,
            failure_ttl=24 * 3600,
        )
    except (RedisError, OSError):
        log.warning("could not schedule the reconciliation")
