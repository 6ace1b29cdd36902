"""A worker's choice of an open line, written in one transaction on the hot connection.

The menu's most frequent answer (two keys: organisation and topic, the line open) touches the
call, its case and a new step of that case. Through the ORM that was nine statements and four
flushes; here it is four or five prepared statements on the driver's connection (`db.hot`),
writing the same rows as `cases.open_case`, `cases.add_step` and the ORM's update of the call.
Rarer answers (a closed line, a life event, a cancelled callback) keep the ORM path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Table, bindparam, exists, func, insert, select, update

from callrouter import cases, db
from callrouter.flows import reference as refs
from callrouter.ldv import kinds as ldv
from callrouter.ldv import store as ldv_store
from callrouter.models import Call, Case, CaseStep, Consent

_calls = cast(Table, Call.__table__)
_cases = cast(Table, Case.__table__)
_steps = cast(Table, CaseStep.__table__)
_consents = cast(Table, Consent.__table__)

# Built once: `db.run_prepared` compiles each per dialect on first use.
_CALL = select(_calls.c.id, _calls.c.caller_org, _calls.c.identified_by, _calls.c.case_id).where(
    _calls.c.call_sid == bindparam("sid")
)
_CASE_STEPS = select(
    select(func.count())
    .select_from(_steps)
    .where(_steps.c.case_id == bindparam("case"))
    .scalar_subquery()
).where(_cases.c.id == bindparam("case"))
_WITHDRAWN = select(
    exists().where(
        _consents.c.case_id == bindparam("case"),
        _consents.c.target_org == bindparam("org"),
        _consents.c.withdrawn_at.is_not(None),
    )
)
_ADD_STEP = insert(_steps).values(
    {
        name: bindparam(name, type_=_steps.c[name].type)
        for name in (
            "id",
            "case_id",
            "position",
            "line_id",
            "target_org",
            "reason",
            "state",
            "updated_at",
        )
    }
)
_CHOOSE = (
    update(_calls)
    .where(_calls.c.id == bindparam("call"))
    .values(
        case_id=bindparam("case_id"),
        target_org=bindparam("target_org"),
        line_id=bindparam("line_id"),
        selected_by=bindparam("selected_by"),
        selected_term=bindparam("selected_term"),
        menu_done_at=bindparam("at", type_=_calls.c.menu_done_at.type),
    )
)


class MenuCall(NamedTuple):
    id: str
    caller_org: str | None
    identified_by: str | None
    case_id: str | None


class Chosen(NamedTuple):
    case_id: str
    reference: str | None  # only when the case was opened now (the worker hears it)
    position: int  # the new step's
    withdrawn: bool  # a consent for this organisation on this case was withdrawn


def identified_call(conn, sid: str) -> MenuCall | None:
    """The call of a recognised front-desk worker (not a professional on the way back)."""
    row = db.run_prepared(conn, _CALL, {"sid": sid}).first()
    if row is None or not row[1] or row[2] == "staff":
        return None
    return MenuCall(*row)


def choose_line(
    conn,
    call: MenuCall,
    *,
    org_id: str,
    line,
    selected_by: str,
    term: str | None,
    at: datetime,
    new_case: Callable[[str], dict],
    register,
) -> Chosen:
    """Record the choice: the call's case (opened now if it has none, `new_case(reference)`
    giving its row), a new pending step on `line`, the call's chosen line."""
    reference = None
    position = None
    if call.case_id:
        position = db.run_prepared(conn, _CASE_STEPS, {"case": call.case_id}).scalar()
    if position is not None:
        case_id = call.case_id
        withdrawn = bool(
            db.run_prepared(conn, _WITHDRAWN, {"case": case_id, "org": org_id}).scalar()
        )
    else:  # no case yet (or its row is gone): a new one, which has no steps or consents
        row = _open(conn, new_case)
        case_id, reference, position, withdrawn = row["id"], row["reference"], 0, False
        ldv_store.write(
            conn,
            [
                ldv.case_opened(
                    register,
                    call_id=call.id,
                    case_id=case_id,
                    worker_hmac=row["worker_hmac"],
                    caller_org=row["caller_org"],
                    life_event=None,
                    at=at,
                )
            ],
        )
    # A plain insert: a step taken meanwhile at this position is an error, as through the ORM.
    db.run_prepared(conn, _ADD_STEP, cases.step_values(case_id, position, line, at))
    db.run_prepared(
        conn,
        _CHOOSE,
        {
            "call": call.id,
            "case_id": case_id,
            "target_org": org_id,
            "line_id": line.id,
            "selected_by": selected_by,
            "selected_term": term[:100] if term else None,
            "at": at,
        },
    )
    return Chosen(case_id, reference, position, withdrawn)


def _open(conn, new_case: Callable[[str], dict]) -> dict:
    for _ in range(cases.REFERENCE_DRAWS):
        row = new_case(refs.new_reference())
        if db.insert_ignore(conn, _cases, row):  # nothing when the reference is taken
            return row
    raise RuntimeError(f"no free case reference after {cases.REFERENCE_DRAWS} draws")
