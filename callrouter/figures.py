"""The dashboard's figures per local day, and their rollup for days that no longer change.

A figure cell is what one viewer may see of one local day, for one target organisation and
line: calls, connected calls, callbacks requested, minutes saved and a histogram of the time
to answer (whole seconds -> count, so that a median over many days stays exact). Viewers are
"*" (an admin) and each organisation, with the dashboard's scopes: a call is seen by its caller
organisation, its chosen organisation and every organisation one of its transfers went to; a
transfer or a callback by its caller and target organisations.

Cells of a day are computed from the call log (`cells`); once a day is settled (it ended
`SETTLE` ago: no webhook, watchdog or reconciliation touches its calls any more) a daily job
stores them in `figure_cells` (`build`), so that a year of figures reads a few thousand rows
instead of a million. Reading (`daily`) takes stored days from the rollup and computes the
others (today, the days not yet built) from the call log, so the figures are the same either
way. What retention removes (numbers) is not part of the figures: they survive it.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from callrouter.models import (
    Call,
    CallbackRequest,
    Case,
    CaseFigureCell,
    CaseStep,
    Consent,
    FigureCell,
    FigureDay,
    Transfer,
)

log = logging.getLogger(__name__)

ADMIN = "*"
SETTLE = timedelta(days=2)


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
    """The local day of UTC instants, converted once per UTC hour."""

    def __init__(self, tz: ZoneInfo):
        self.tz = tz
        self.cache: dict[tuple[int, int, int, int], date] = {}

    def __call__(self, moment: datetime) -> date:
        key = (moment.year, moment.month, moment.day, moment.hour)
        day = self.cache.get(key)
        if day is None:
            day = self.cache[key] = moment.astimezone(self.tz).date()
        return day


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

    call_q = select(
        Call.id, Call.received_at, Call.caller_org, Call.target_org, Call.line_id, Call.outcome
    ).where(Call.received_at >= since, Call.received_at < until)
    tr_q = select(
        Transfer.created_at,
        Transfer.caller_org,
        Transfer.target_org,
        Transfer.line_id,
        Transfer.time_to_answer_s,
        Transfer.minutes_saved,
    ).where(Transfer.created_at >= since, Transfer.created_at < until)
    cb_q = select(
        CallbackRequest.requested_at,
        CallbackRequest.caller_org,
        CallbackRequest.target_org,
        CallbackRequest.line_id,
    ).where(CallbackRequest.requested_at >= since, CallbackRequest.requested_at < until)
    also: dict[str, set[str]] = {}  # call id -> organisations its transfers went to
    if org is not None and not all_viewers:
        from callrouter.dashboard.queries import call_scope, callback_scope, transfer_scope

        call_q = call_q.where(call_scope(org))
        tr_q = tr_q.where(transfer_scope(org))
        cb_q = cb_q.where(callback_scope(org))
    elif all_viewers:
        for call_id, target in session.execute(
            select(Transfer.call_id, Transfer.target_org)
            .distinct()
            .join(Call, Call.id == Transfer.call_id)
            .where(Call.received_at >= since, Call.received_at < until)
        ):
            also.setdefault(call_id, set()).add(target)

    for call_id, received, caller, target, line, outcome in session.execute(call_q):
        day = local(received)
        who = _viewers(None, caller, target, *also.get(call_id, ())) if all_viewers else (viewer,)
        for w in who:
            c = cell(day, w, target, line)
            c.calls += 1
            if outcome == "connected":
                c.connected += 1
    for created, caller, target, line, answer_s, saved in session.execute(tr_q):
        day = local(created)
        for w in _viewers(None, caller, target) if all_viewers else (viewer,):
            c = cell(day, w, target, line)
            c.minutes_saved += float(saved or 0)
            if answer_s is not None:
                c.answer_times[math.floor(answer_s + 0.5)] += 1  # half up, as SQL's round
    for requested, caller, target, line in session.execute(cb_q):
        day = local(requested)
        for w in _viewers(None, caller, target) if all_viewers else (viewer,):
            cell(day, w, target, line).callbacks += 1
    return out


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
        from callrouter.dashboard.queries import case_scope

        scope = (case_scope(org),)
    cases = session.execute(
        select(Case.id, Case.opened_at, Case.caller_org, Case.life_event).where(*period, *scope)
    ).all()
    steps: dict[str, list[tuple[str, str]]] = {}
    for case_id, target, state in session.execute(
        select(CaseStep.case_id, CaseStep.target_org, CaseStep.state)
        .join(Case, Case.id == CaseStep.case_id)
        .where(*period, *scope)
    ):
        steps.setdefault(case_id, []).append((target, state))
    consents: dict[str, set[str]] = {}
    if all_viewers:
        for case_id, target in session.execute(
            select(Consent.case_id, Consent.target_org)
            .join(Case, Case.id == Consent.case_id)
            .where(*period)
        ):
            consents.setdefault(case_id, set()).add(target)
    local = _LocalDay(tz)
    viewer = org or ADMIN
    out: dict[tuple[date, str], CaseCell] = {}
    for case_id, opened, caller, event in cases:
        st = steps.get(case_id, [])
        multi = len({t for t, state in st if state not in _NOT_NEEDED}) > 1
        done = sum(1 for _, state in st if state in _REACHED)
        who = (
            _viewers(None, caller, *(t for t, _ in st), *consents.get(case_id, ()))
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


def case_daily(session, tz: ZoneInfo, org: str | None, first: date, last: date) -> CaseCell:
    """The case figures of one viewer over first..last: stored days from the rollup, the
    others from the case tables."""
    viewer = org or ADMIN
    built = _stored_days(session, tz, first, last)
    total = CaseCell()
    if built:
        for row in session.scalars(
            select(CaseFigureCell).where(
                CaseFigureCell.tz == tz.key,
                CaseFigureCell.viewer == viewer,
                CaseFigureCell.day >= first,
                CaseFigureCell.day <= last,
            )
        ):
            if row.day in built:
                events = Counter({k: int(v) for k, v in (row.life_events or {}).items()})
                total.add(
                    CaseCell(
                        row.cases,
                        row.multi_org,
                        row.chains,
                        row.chain_steps,
                        row.chain_steps_done,
                        row.chains_complete,
                        events,
                    )
                )
    missing = [d for d in _each_day(first, last) if d not in built]
    for a, b in _runs(missing):
        for c in case_cells(session, tz, a, b, org).values():
            total.add(c)
    return total


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def daily(
    session, tz: ZoneInfo, org: str | None, first: date, last: date
) -> dict[tuple[date, str, str], Cell]:
    """(local day, target organisation, line) -> cell for one viewer over first..last: stored
    days from the rollup, the others from the call log."""
    viewer = org or ADMIN
    built = _stored_days(session, tz, first, last)
    out: dict[tuple[date, str, str], Cell] = {}
    if built:
        for day, target, line, calls, conn, cbs, saved, answers in session.execute(
            select(
                FigureCell.day,
                FigureCell.target_org,
                FigureCell.line_id,
                FigureCell.calls,
                FigureCell.connected,
                FigureCell.callbacks,
                FigureCell.minutes_saved,
                FigureCell.answer_times,
            ).where(
                FigureCell.tz == tz.key,
                FigureCell.viewer == viewer,
                FigureCell.day >= first,
                FigureCell.day <= last,
            )
        ):
            if day in built:
                out[(day, target, line)] = Cell(
                    calls,
                    conn,
                    cbs,
                    saved,
                    Counter({int(k): int(v) for k, v in (answers or {}).items()}),
                )
    missing = [d for d in _each_day(first, last) if d not in built]
    for a, b in _runs(missing):
        for (d, _who, target, line), c in cells(session, tz, a, b, org).items():
            out[(d, target, line)] = c
    return out


def settled_until(tz: ZoneInfo, moment: datetime) -> date:
    """The last local day that has settled at `moment`."""
    return (moment - SETTLE).astimezone(tz).date() - timedelta(days=1)


def pending(session_factory, tz: ZoneInfo, moment: datetime) -> list[date]:
    """The settled days not stored yet, oldest first (from the first call or case on)."""
    return _days_to_build(session_factory, tz, moment, rebuild=False)


def _days_to_build(session_factory, tz: ZoneInfo, moment: datetime, rebuild: bool) -> list[date]:
    last = settled_until(tz, moment)
    with session_factory() as s:
        oldest = [
            t
            for t in (
                s.scalar(select(func.min(Call.received_at))),
                s.scalar(select(func.min(Case.opened_at))),
            )
            if t is not None
        ]
        if not oldest:
            return []
        first = min(oldest).astimezone(tz).date()
        built = set() if rebuild else _stored_days(s, tz, first, last)
    return [d for d in _each_day(first, last) if d not in built]


def _each_day(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def build(
    session_factory,
    tz: ZoneInfo,
    moment: datetime,
    rebuild: bool = False,
    chunk_days: int = 7,
    limit_days: int | None = None,
) -> int:
    """Store the cells of every settled day not stored yet (all of them again with
    `rebuild`), the oldest first and at most `limit_days`; returns how many days were stored.

    A chunk of days is computed in one read, then written in one short transaction that
    claims its days first (figure_days' key): a concurrent builder never duplicates a day, and
    readers see a day's old cells or its new ones, never none."""
    todo = _days_to_build(session_factory, tz, moment, rebuild)
    if limit_days is not None:
        todo = todo[:limit_days]
    stored = 0
    for a, b in _runs(todo):
        while a <= b:
            end = min(b, a + timedelta(days=chunk_days - 1))
            stored += _store(session_factory, tz, a, end, moment, replace=rebuild)
            a = end + timedelta(days=1)
    if stored:
        log.info("figures: %d days rolled up", stored)
    return stored


def _store(
    session_factory, tz: ZoneInfo, first: date, last: date, moment: datetime, replace: bool = False
) -> int:
    with session_factory() as s:  # the read ends here: no write lock held while computing
        computed = cells(s, tz, first, last, all_viewers=True)
        computed_cases = case_cells(s, tz, first, last, all_viewers=True)
    case_rows = [
        {
            "tz": tz.key,
            "viewer": viewer,
            "day": day,
            "cases": c.cases,
            "multi_org": c.multi_org,
            "chains": c.chains,
            "chain_steps": c.chain_steps,
            "chain_steps_done": c.chain_steps_done,
            "chains_complete": c.chains_complete,
            "life_events": dict(sorted(c.life_events.items())),
        }
        for (day, viewer), c in sorted(computed_cases.items())
    ]
    calls: Counter = Counter()
    rows = []
    for (day, viewer, target, line), c in sorted(computed.items()):
        if viewer == ADMIN:
            calls[day] += c.calls
        rows.append(
            {
                "tz": tz.key,
                "day": day,
                "viewer": viewer,
                "target_org": target,
                "line_id": line,
                "calls": c.calls,
                "connected": c.connected,
                "callbacks": c.callbacks,
                "minutes_saved": c.minutes_saved,
                "answer_times": {str(k): v for k, v in sorted(c.answer_times.items())},
            }
        )
    days = [
        {"tz": tz.key, "day": d, "built_at": moment, "calls": calls[d]}
        for d in _each_day(first, last)
    ]
    with session_factory() as s:
        try:
            if replace:
                for model in (FigureCell, CaseFigureCell, FigureDay):
                    s.execute(
                        delete(model).where(
                            model.tz == tz.key, model.day >= first, model.day <= last
                        )
                    )
            s.execute(insert(FigureDay), days)  # the claim, before the cells
            if rows:
                s.execute(insert(FigureCell), rows)
            if case_rows:
                s.execute(insert(CaseFigureCell), case_rows)
            s.commit()
            return len(days)
        except IntegrityError:  # another builder stored some of these days first
            s.rollback()
    if first == last:
        return 0
    with session_factory() as s:
        taken = _stored_days(s, tz, first, last)
    return sum(
        _store(session_factory, tz, d, d, moment) for d in _each_day(first, last) if d not in taken
    )


def _stored_days(session, tz: ZoneInfo, first: date, last: date) -> set[date]:
    """The days first..last whose figures are stored for the time zone `tz`."""
    return set(
        session.scalars(
            select(FigureDay.day).where(
                FigureDay.tz == tz.key, FigureDay.day >= first, FigureDay.day <= last
            )
        )
    )


def forget(session, first: date) -> None:
    """Drop the stored days from `first` on (every time zone): for writers of past call log
    rows, such as the demo traffic of `network simulate`. The figures of those days come from
    the call log until the next build."""
    for model in (FigureCell, CaseFigureCell, FigureDay):
        session.execute(delete(model).where(model.day >= first))


JOB_DAYS = 14


def build_now(rebuild: bool = False, limit_days: int | None = None) -> int:
    """`build` for the running service (the CLI, and the job below)."""
    from callrouter import clock, services

    svc = services.current()
    return build(
        svc.sessions, svc.directory.tz, clock.now(), rebuild=rebuild, limit_days=limit_days
    )


def build_job() -> int:
    """RQ job (the daily job, the worker's start): a fortnight of days at a time, then a job
    for the rest, so that the transfer jobs sharing the worker never wait long behind a
    year of history (about a second per fortnight at 2,700 calls a day)."""
    from redis.exceptions import RedisError

    from callrouter import clock, services

    stored = build_now(limit_days=JOB_DAYS)
    svc = services.current()
    # Chained while this job made progress and days are left; a job that stored nothing
    # met another builder at work, which goes on itself.
    if stored and pending(svc.sessions, svc.directory.tz, clock.now()):
        try:
            svc.queue(services.QUEUE_DEFAULT).enqueue(build_job, result_ttl=3600, failure_ttl=86400)
        except (RedisError, OSError):
            log.warning("figures: could not queue the rest of the rollup")
    return stored
