"""The inbound call's rows: look-ups, the status callback's one conditional UPDATE, the
outcome, and the webhook log (`events`) that makes every delivery count once."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Integer,
    Table,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from callrouter import db
from callrouter.flows import transfer as tflow
from callrouter.models import TS as UTC_TS
from callrouter.models import Call, Event


def by_sid(s: Session, call_sid: str) -> Call | None:
    return s.scalar(select(Call).where(Call.call_sid == call_sid))


def set_outcome(s: Session, call_id: str, outcome: str, only_if_empty: bool = False) -> None:
    call = s.get(Call, call_id)
    if call is not None and not (only_if_empty and call.outcome):
        call.outcome = outcome


def record_event(
    s, source: str, sid: str, event: str, sequence: int, at: datetime, detail: dict, **ids
) -> bool:
    """Keep a webhook once; False when it was seen before (a duplicate delivery)."""
    return db.insert_ignore(
        s,
        cast(Table, Event.__table__),
        dict(
            source=source,
            sid=sid or "-",
            event=event[:96],
            sequence=sequence,
            received_at=at,
            detail=detail,
            call_id=ids.get("call_id"),
            transfer_id=ids.get("transfer_id"),
        ),
    )


_STATUS_UPDATES: dict = {}


def _status_update(status: str):
    """The UPDATE for an inbound call's status, built once per status value (Core, bound
    parameters): moves the status forward only, fills the end once, and returns whether a
    transfer of the call is still ringing or talking. None when the status changes nothing."""
    if status in _STATUS_UPDATES:
        return _STATUS_UPDATES[status]
    calls = cast(Table, Call.__table__)
    earlier = tflow.earlier_than(status)
    values: dict = {}
    if earlier:  # a late or repeated status never moves the call back
        values["status"] = case(
            (
                or_(calls.c.status.is_(None), *[calls.c.status == e for e in earlier]),
                literal(status),
            ),
            else_=calls.c.status,
        )
    if status in tflow.TERMINAL:
        values["ended_at"] = func.coalesce(calls.c.ended_at, bindparam("now", type_=UTC_TS))
        values["outcome"] = func.coalesce(calls.c.outcome, literal("abandoned"))
        values["duration_s"] = func.coalesce(
            bindparam("duration", type_=Integer), calls.c.duration_s
        )
    stmt = None
    if values:
        # Written out: in RETURNING, SQLAlchemy leaves the updated table's columns unqualified,
        # and an unqualified `id` inside the subquery would mean transfers.id.
        ringing: ColumnElement[bool] = literal_column(
            "EXISTS (SELECT 1 FROM transfers AS t WHERE "
            "t.call_id = calls.id AND t.state = 'dialling')"
        )
        talking: ColumnElement[bool] = literal_column(
            "EXISTS (SELECT 1 FROM transfers AS t WHERE "
            "t.call_id = calls.id AND t.state = 'connected')"
        )
        stmt = (
            update(calls)
            .where(calls.c.call_sid == bindparam("sid"))
            .values(**values)
            .returning(calls.c.id, ringing, talking)
        )
    if len(_STATUS_UPDATES) < 64:  # statuses are validated to a short safe alphabet
        _STATUS_UPDATES[status] = stmt
    return stmt


def apply_status(conn, sid: str, status: str, duration: int | None, at: datetime) -> str | None:
    """Move the call's status forward (one prepared statement on the hot connection); the
    call's id when it ended with a transfer still ringing or talking, else None."""
    stmt = _status_update(status)
    if stmt is None:
        return None
    row = db.run_prepared(conn, stmt, {"sid": sid, "now": at, "duration": duration}).first()
    if row is not None and (row[1] or row[2]) and status in tflow.TERMINAL:
        return row[0]
    return None
