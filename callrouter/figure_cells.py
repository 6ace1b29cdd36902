"""The dashboard's figure cells per local day, computed from the call log and the case tables.

A figure cell is what one viewer may see of one local day, for one target organisation and
line: calls, connected calls, callbacks requested, minutes saved and a histogram of the time
to answer (whole seconds -> count, so that a median over many days stays exact). Viewers are
"*" (an admin) and each organisation, with the dashboard's scopes: a call is seen by its caller
organisation, its chosen organisation and every organisation one of its transfers went to; a
transfer or a callback by its caller and target organisations. A case cell holds the case
figures of one local day and viewer. The rollup of settled days (callrouter.figures) stores
these cells; what it has not stored yet is computed here.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import literal_column, select

from callrouter import db
from callrouter.dashboard.scopes import call_scope, callback_scope, case_scope, transfer_scope
from callrouter.models import Call, CallbackRequest, Case, CaseStep, Consent, Transfer

ADMIN = "*"


@dataclass
class Cell:
    calls: int = 0
    connected: int = 0
    callbacks: int = 0
    minutes_saved: float = 0.0
    answer_times: Counter = field(default_factory=Counter)  # whole seconds -> count

    def add(self, other: Cell) -> None:
        self.calls += other.calls
        self.connected += other.connected
        self.callbacks += other.callbacks
        self.minutes_saved += other.minutes_saved
        self.answer_times.update(other.answer_times)


Key = tuple[date, str, str, str]  # (local day, viewer, target organisation, line)


def day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


class _LocalDay:
    """The local day of a UTC minute as the database gives it ('YYYY-MM-DD HH:MM', from
    `db.utc_text`), converted once per minute: rows are read as plain text, never turned
    into datetimes one by one (a time zone's offset is whole minutes, some half hours)."""

    def __init__(self, tz: ZoneInfo):
        self.tz = tz
        self.cache: dict[str, date] = {}

    def __call__(self, minute: str) -> date:
        day = self.cache.get(minute)
        if day is None:
            y, mo, d, h, mi = (int(minute[a:b]) for a, b in _MINUTE_FIELDS)
            utc = datetime(y, mo, d, h, mi, tzinfo=UTC)
            day = self.cache[minute] = utc.astimezone(self.tz).date()
        return day


_MINUTE_FIELDS = ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16))  # 'YYYY-MM-DD HH:MM'


def _rows(conn, stmt) -> list[tuple]:
    """The rows of a Core SELECT as the driver gives them (no per-value conversion)."""
    return db.run_raw(conn, stmt).cursor.fetchall()


def _viewers(org: str | None, *orgs) -> tuple[str, ...]:
    """Who sees a row: everyone in `orgs` and the admin; or, for one viewer, only that one."""
    if org is not None:
        return (org,)
    return (ADMIN, *{o for o in orgs if o})


def cells(
    session,
    tz: ZoneInfo,
    first: date,
    last: date,
    org: str | None = None,
    all_viewers: bool = False,
) -> dict[Key, Cell]:
    """The cells of the local days first..last computed from the call log: for one viewer
    (`org`, None for the admin), or for every viewer (`all_viewers`, to store them)."""
    since, until = day_start(first, tz), day_start(last + timedelta(days=1), tz)
    local = _LocalDay(tz)
    out: dict[Key, Cell] = {}
    viewer = None if all_viewers else (org or ADMIN)

    def cell(day, who, target, line) -> Cell:
        key = (day, who, target or "", line or "")
        c = out.get(key)
        if c is None:
            c = out[key] = Cell()
        return c

    conn = session.connection()
    call_q, tr_q, cb_q = _period_queries(conn.dialect, since, until)
    also: dict[str, set[str]] = {}  # call id -> organisations its transfers went to
    if org is not None and not all_viewers:
        call_q = call_q.where(call_scope(org))
        tr_q = tr_q.where(transfer_scope(org))
        cb_q = cb_q.where(callback_scope(org))
    elif all_viewers:
        for call_id, target in _rows(
            conn,
            select(Transfer.call_id, Transfer.target_org)
            .distinct()
            .join(Call, Call.id == Transfer.call_id)
            .where(Call.received_at >= since, Call.received_at < until),
        ):
            also.setdefault(call_id, set()).add(target)

    for call_id, received, caller, target, line, outcome in _rows(conn, call_q):
        day = local(received)
        who = _viewers(None, caller, target, *also.get(call_id, ())) if all_viewers else (viewer,)
        for w in who:
            c = cell(day, w, target, line)
            c.calls += 1
            if outcome == "connected":
                c.connected += 1
    for created, caller, target, line, answer_s, saved in _rows(conn, tr_q):
        day = local(created)
        for w in _viewers(None, caller, target) if all_viewers else (viewer,):
            c = cell(day, w, target, line)
            c.minutes_saved += float(saved or 0)
            if answer_s is not None:
                c.answer_times[math.floor(answer_s + 0.5)] += 1  # half up, as SQL's round
    for requested, caller, target, line in _rows(conn, cb_q):
        day = local(requested)
        for w in _viewers(None, caller, target) if all_viewers else (viewer,):
            cell(day, w, target, line).callbacks += 1
    return out


def _period_queries(dialect, since: datetime, until: datetime):
    """The calls, transfers and callback requests of [since, until) that make cells, each
    with its instant as UTC text to the minute."""
    minute = functools.partial(db.utc_text, dialect, unit="minute")
    call_q = select(
        Call.id,
        minute(Call.received_at),
        Call.caller_org,
        Call.target_org,
        Call.line_id,
        Call.outcome,
    ).where(Call.received_at >= since, Call.received_at < until)
    tr_q = select(
        minute(Transfer.created_at),
        Transfer.caller_org,
        Transfer.target_org,
        Transfer.line_id,
        Transfer.time_to_answer_s,
        Transfer.minutes_saved,
    ).where(Transfer.created_at >= since, Transfer.created_at < until)
    cb_q = select(
        minute(CallbackRequest.requested_at),
        CallbackRequest.caller_org,
        CallbackRequest.target_org,
        CallbackRequest.line_id,
    ).where(CallbackRequest.requested_at >= since, CallbackRequest.requested_at < until)
    return call_q, tr_q, cb_q


@dataclass
class CaseCell:
    cases: int = 0
    multi_org: int = 0  # cases that needed more than one organisation
    chains: int = 0  # life-event cases with steps
    chain_steps: int = 0
    chain_steps_done: int = 0  # reached (done or connected)
    chains_complete: int = 0  # chains whose every step was reached
    life_events: Counter = field(default_factory=Counter)  # event id -> cases

    def add(self, other: CaseCell) -> None:
        self.cases += other.cases
        self.multi_org += other.multi_org
        self.chains += other.chains
        self.chain_steps += other.chain_steps
        self.chain_steps_done += other.chain_steps_done
        self.chains_complete += other.chains_complete
        self.life_events.update(other.life_events)


_NOT_NEEDED = ("skipped", "stopped")
_REACHED = ("done", "connected")


def case_cells(
    session,
    tz: ZoneInfo,
    first: date,
    last: date,
    org: str | None = None,
    all_viewers: bool = False,
) -> dict[tuple[date, str], CaseCell]:
    """(local day, viewer) -> case figures of the cases opened on the local days first..last,
    from the case tables: for one viewer (`org`, None for the admin) or for every viewer. A
    case is seen by its calling organisation and every organisation of a step or a consent
    (the dashboard's case scope)."""
    since, until = day_start(first, tz), day_start(last + timedelta(days=1), tz)
    period = (Case.opened_at >= since, Case.opened_at < until)
    scope: tuple = ()
    if org is not None and not all_viewers:
        scope = (case_scope(org),)
    conn = session.connection()
    # Each case's steps (and, to store every viewer, consents) by a correlated subquery: an
    # index look-up per case of the period on both databases (see db.words).
    steps_q = (
        select(db.words(conn.dialect, CaseStep.target_org, CaseStep.state))
        .where(CaseStep.case_id == Case.id)
        .correlate(Case)
        .scalar_subquery()
    )
    consents_q = (
        select(db.words(conn.dialect, Consent.target_org))
        .where(Consent.case_id == Case.id)
        .correlate(Case)
        .scalar_subquery()
        if all_viewers
        else literal_column("NULL")
    )
    cases = _rows(
        conn,
        select(
            db.utc_text(conn.dialect, Case.opened_at, "minute"),
            Case.caller_org,
            Case.life_event,
            steps_q,
            consents_q,
        ).where(*period, *scope),
    )
    local = _LocalDay(tz)
    viewer = org or ADMIN
    out: dict[tuple[date, str], CaseCell] = {}
    for opened, caller, event, steps, consents in cases:
        st = db.from_words(steps, 2)
        multi = len({t for t, state in st if state not in _NOT_NEEDED}) > 1
        done = sum(1 for _, state in st if state in _REACHED)
        who = (
            _viewers(None, caller, *(t for t, _ in st), *(t for (t,) in db.from_words(consents, 1)))
            if all_viewers
            else (viewer,)
        )
        day = local(opened)
        for w in who:
            c = out.get((day, w))
            if c is None:
                c = out[(day, w)] = CaseCell()
            c.cases += 1
            c.multi_org += multi
            if event:
                c.life_events[event] += 1
                if st:
                    c.chains += 1
                    c.chain_steps += len(st)
                    c.chain_steps_done += done
                    c.chains_complete += done == len(st)
    return out
