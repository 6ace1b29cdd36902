"""A warm transfer's rows as the pure model's state (`flows.warm_transfer`), and back.

`load` reads the transfer with its legs (the transfer row locked on PostgreSQL; on SQLite the
write gate already serialises transactions), `apply` runs one event through the model and
writes what changed in the caller's transaction, returning the actions that are left for after
the commit (jobs). Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from callrouter import cases, db
from callrouter.flows import warm_transfer as wt
from callrouter.flows.transfer import TERMINAL
from callrouter.models import Call, Case, Leg, Transfer


@dataclass
class Loaded:
    row: Transfer
    legs: list[Leg]
    state: wt.Transfer
    chain: Case | None  # the life-event case this transfer is a step of


_KNOWN = select(Transfer.id).where(Transfer.id == bindparam("id"))


def known(engine, transfer_id: str | None) -> bool:
    """Whether the service holds this transfer: one read, before any write transaction (the
    events of transfers it no longer holds, or never did, need none)."""
    if not transfer_id:
        return False
    with db.read(engine) as conn:
        return db.run_prepared(conn, _KNOWN, {"id": transfer_id}).first() is not None


def load(s: Session, transfer_id: str | None, directory, *, lock: bool = True) -> Loaded | None:
    if not transfer_id:
        return None
    q = select(Transfer).where(Transfer.id == transfer_id)
    row = s.scalar(q.with_for_update() if lock else q)
    if row is None:
        return None
    legs = list(
        s.scalars(select(Leg).where(Leg.transfer_id == row.id).order_by(Leg.kind, Leg.position))
    )
    chain = None
    if row.case_id is not None and row.step is not None and row.direction is None:
        case = s.get(Case, row.case_id)
        chain = case if case is not None and case.life_event else None
    org = directory.organisation(row.target_org)
    state = wt.Transfer(
        id=row.id,
        phase=row.state,
        created_at=row.created_at,
        worker=_place(row),
        legs=tuple(_leg_state(leg) for leg in legs),
        outcome=row.outcome,
        chain=chain is not None,
        public_wait_minutes=org.public_wait_minutes if org else 0,
        conference_sid=row.conference_sid,
        worker_conference=row.worker_conference_sid,
        hold_wanted=row.hold_wanted,
        accepted_at=row.accepted_at,
        ended_at=row.ended_at,
        worker_left_at=row.worker_left_at,
        time_to_answer_s=row.time_to_answer_s,
        minutes_saved=row.minutes_saved,
        duration_s=row.duration_s,
    )
    return Loaded(row, legs, state, chain)


def _place(row: Transfer) -> str:
    if row.worker_place:
        return row.worker_place
    # A row written before the worker's place was kept: the nearest reading of its fields.
    if row.worker_left_at is not None:
        return wt.AWAY
    if row.hold_wanted:
        return wt.MENU
    return wt.WAITING if row.state == "dialling" else wt.TALKING


def _leg_state(leg: Leg) -> wt.Leg:
    return wt.Leg(
        id=leg.id,
        kind=leg.kind,
        position=leg.position,
        status=leg.status,
        accepted=leg.accepted_at is not None,
        left=leg.left_at is not None,
        outcome=leg.outcome,
    )


def who(loaded: Loaded, call_sid: str) -> str | None:
    """The party of a participant event: the worker, a leg's id, or None (not known yet)."""
    if not call_sid:
        return None
    if call_sid == loaded.row.worker_call_sid:
        return wt.WORKER
    return next((leg.id for leg in loaded.legs if leg.call_sid == call_sid), None)


_COPIED = (
    "outcome",
    "conference_sid",
    "hold_wanted",
    "accepted_at",
    "ended_at",
    "worker_left_at",
    "time_to_answer_s",
    "minutes_saved",
    "duration_s",
)


def apply(s: Session, loaded: Loaded, event, now: datetime) -> list:
    """Run `event` through the model, write the new state and the call's and the case step's
    part of it; the actions left for after the commit, the worker's `Reply` among them."""
    new, actions = wt.step(loaded.state, event, now)
    _write(loaded, new, now)
    later = []
    for action in actions:
        if isinstance(action, wt.CallOutcome):
            call = s.get(Call, loaded.row.call_id)
            if call is not None and ("*" in action.over or call.outcome in (None, *action.over)):
                call.outcome = action.outcome
        elif isinstance(action, wt.StepState):
            _step_state(s, loaded, action.state, now)
        else:
            later.append(action)
    loaded.state = new
    return later


def _write(loaded: Loaded, new: wt.Transfer, now: datetime) -> None:
    row = loaded.row
    row.state = new.phase
    row.worker_place = new.worker
    row.worker_conference_sid = new.worker_conference
    for name in _COPIED:
        value = getattr(new, name)
        if getattr(row, name) != value:
            setattr(row, name, value)
    by_id = {leg.id: leg for leg in loaded.legs}
    for leg in new.legs:
        rec = by_id[leg.id]
        if leg.status != rec.status:
            rec.status = leg.status
            if leg.status in ("in-progress", "answered"):
                rec.answered_at = rec.answered_at or now
            if leg.status in TERMINAL:
                rec.ended_at = rec.ended_at or now
        rec.outcome = leg.outcome
        if leg.accepted and rec.accepted_at is None:
            rec.accepted_at = now
        if leg.left and rec.left_at is None:
            rec.left_at = now


def _step_state(s: Session, loaded: Loaded, state: str, now: datetime) -> None:
    row = loaded.row
    if row.case_id is None or row.step is None:
        return
    if state == "done" and loaded.chain is None:
        return  # a single transfer's step stays as it was connected
    step = cases.step_at(s, row.case_id, row.step)
    if step is not None:
        only = cases.OPEN_STEP_STATES if state == "done" else ()
        cases.set_step(s, step.id, state, now, only_from=only)


def reply(actions: list) -> str | None:
    """The kind of the worker's reply among the actions, if the event called for one."""
    return next((a.kind for a in actions if isinstance(a, wt.Reply)), None)


OPEN = ("dialling", "connected")


def open_for_call(
    s: Session, call_id: str, line_id: str | None = None, since: datetime | None = None
) -> Transfer | None:
    """The call's transfer that is still ringing or talking (to `line_id`, started after
    `since`): a webhook retried by Twilio finds it instead of starting a second one."""
    q = select(Transfer).where(Transfer.call_id == call_id, Transfer.state.in_(OPEN))
    if line_id is not None:
        q = q.where(Transfer.line_id == line_id)
    if since is not None:
        q = q.where(Transfer.created_at >= since)
    return s.scalar(q.limit(1))


def open_ids_for_call(s: Session, call_id: str) -> list[str]:
    return list(
        s.scalars(select(Transfer.id).where(Transfer.call_id == call_id, Transfer.state.in_(OPEN)))
    )


def set_result(s: Session, tr_id: str, result: str, at: datetime, **values) -> None:
    """The worker's answer to "was this the right line?": keep the first real answer;
    "unknown" (no answer) never overwrites one."""
    q = update(Transfer).where(Transfer.id == tr_id)
    if result == "unknown":
        q = q.where(Transfer.result.is_(None))
    else:
        q = q.where(
            or_(Transfer.result.is_(None), Transfer.result == "unknown", Transfer.result == result)
        )
    s.execute(q.values(result=result, result_at=at, result_by="worker", **values))
