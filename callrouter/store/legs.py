"""A transfer's legs (the professionals' and the citizen's calls): rows written before their
REST request, so that a repeated job or webhook never rings twice, and the look-ups the jobs
need. Nothing here commits."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callrouter.flows.transfer import TERMINAL
from callrouter.models import Leg, Transfer

# A leg row without a call SID this old belongs to a job that died before its REST request.
LOST_LEG = timedelta(seconds=60)
LOST = "lost"  # `add_professional`: the number's earlier attempt died before its request


def add_professional(
    s: Session, tr: Transfer, position: int, number_hmac: str, masked: str, at: datetime
) -> str | None:
    """The leg's row for hunt-group number `position`; None when that leg was placed already,
    LOST when an earlier attempt died between its row and its request (the number then counts
    as failed and the hunt group moves on)."""
    leg = Leg(
        id=uuid.uuid4().hex,
        transfer_id=tr.id,
        kind="professional",
        position=position,
        number_hmac=number_hmac,
        number_masked=masked,
        status="queued",
        created_at=at,
    )
    tr.hunt_position = position
    try:
        with s.begin_nested():
            s.add(leg)
        return leg.id
    except IntegrityError:
        stale = s.scalar(
            select(Leg.id).where(
                Leg.transfer_id == tr.id,
                Leg.kind == "professional",
                Leg.position == position,
                Leg.call_sid.is_(None),
                Leg.status == "queued",
                Leg.created_at < at - LOST_LEG,
            )
        )
        if stale is None:
            return None
        mark_failed(s, stale, at)
        return LOST


def add_citizen(
    s: Session, tr: Transfer, number_hmac: str, masked: str, at: datetime
) -> str | None:
    """A leg row for the citizen; None when that number is being called already (a retried
    webhook, or the same number keyed again: it rings once)."""
    calling = s.scalar(
        select(Leg.id).where(
            Leg.transfer_id == tr.id,
            Leg.kind == "citizen",
            Leg.number_hmac == number_hmac,
            Leg.status.not_in(TERMINAL),
        )
    )
    if calling is not None:
        return None
    position = (
        s.scalar(
            select(func.count())
            .select_from(Leg)
            .where(Leg.transfer_id == tr.id, Leg.kind == "citizen")
        )
        or 0
    )
    leg = Leg(
        id=uuid.uuid4().hex,
        transfer_id=tr.id,
        kind="citizen",
        position=position,
        number_hmac=number_hmac,
        number_masked=masked,
        status="queued",
        created_at=at,
    )
    s.add(leg)
    tr.citizen_added_at = tr.citizen_added_at or at
    return leg.id


def mark_failed(s: Session, leg_id: str, at: datetime) -> None:
    s.execute(
        update(Leg)
        .where(Leg.id == leg_id, Leg.status.not_in(TERMINAL))
        .values(status="failed", outcome="failed", ended_at=at)
    )


def forget(s: Session, leg_id: str) -> None:
    """Remove a leg row whose REST request failed for a passing reason, so that the job's
    retry writes it afresh (the unique key would otherwise read it as placed)."""
    s.execute(delete(Leg).where(Leg.id == leg_id, Leg.call_sid.is_(None)))


def set_call_sid(s: Session, leg_id: str, sid: str) -> None:
    leg = s.get(Leg, leg_id)
    if leg is not None:
        leg.call_sid = leg.call_sid or sid


def professionals_to_cancel(s: Session, transfer_id: str) -> list[tuple[str, str]]:
    """(call SID, status) of every professional leg still ringing or whispering."""
    legs = s.scalars(
        select(Leg).where(
            Leg.transfer_id == transfer_id,
            Leg.kind == "professional",
            Leg.call_sid.is_not(None),
            Leg.accepted_at.is_(None),
        )
    ).all()
    return [(leg.call_sid, leg.status) for leg in legs if leg.status not in TERMINAL]


def accepted_professional(s: Session, transfer_id: str) -> Leg | None:
    """The professional who accepted the transfer (at most one does)."""
    return s.scalars(
        select(Leg)
        .where(
            Leg.transfer_id == transfer_id,
            Leg.kind == "professional",
            Leg.accepted_at.is_not(None),
        )
        .limit(1)
    ).first()
