"""The rollup of the dashboard's figures for days that no longer change, and their reading.

The cells of a day (callrouter.figure_cells: what one viewer may see of one local day) are
computed from the call log; once a day is settled (it ended `SETTLE` ago: no webhook, watchdog
or reconciliation touches its calls any more) a daily job stores them in `figure_cells`
(`build`), so that a year of figures reads a few thousand rows instead of a million. Reading
(`daily`) takes stored days from the rollup and computes the others (today, the days not yet
built) from the call log, so the figures are the same either way. What retention removes
(numbers) is not part of the figures: they survive it.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import cast, delete, func, insert, literal, null, select, union_all
from sqlalchemy.exc import IntegrityError

from callrouter import db, network_cells
from callrouter.figure_cells import ADMIN, CaseCell, Cell, case_cells, cells, day_start
from callrouter.models import (
    Call,
    Case,
    CaseFigureCell,
    FigureCell,
    FigureDay,
    NetworkCell,
    Transfer,
)

__all__ = [
    "ADMIN",
    "JOB_DAYS",
    "SETTLE",
    "build",
    "build_job",
    "build_now",
    "case_daily",
    "daily",
    "day_start",
    "forget",
    "forget_day",
    "pending",
    "runs",
    "settled_until",
    "stored_days",
]

log = logging.getLogger(__name__)

SETTLE = timedelta(days=2)
# A supervisor may mark an old transfer as the wrong line (its day's network evidence
# changes): days whose transfers were marked this close to a build's start are not stored by
# it (the mark may have missed the build's read); the next build stores them.
MARK_MARGIN = timedelta(minutes=5)
_MODELS = (FigureCell, CaseFigureCell, NetworkCell, FigureDay)  # a day's rollup, claim last
# What a stored day holds: 1 figures and case figures, 2 the network evidence too. A day
# stored by an older version (a builder of the previous release, still running while the
# new one migrates) counts as not stored: read from the call log, and stored again.
ROLLUP_VERSION = 2


def case_daily(session, tz: ZoneInfo, org: str | None, first: date, last: date) -> CaseCell:
    """The case figures of one viewer over first..last: stored days from the rollup, the
    others from the case tables."""
    built, rows = stored_rows(
        session,
        CaseFigureCell,
        tz,
        org or ADMIN,
        first,
        last,
        CaseFigureCell.day,
        CaseFigureCell.cases,
        CaseFigureCell.multi_org,
        CaseFigureCell.chains,
        CaseFigureCell.chain_steps,
        CaseFigureCell.chain_steps_done,
        CaseFigureCell.chains_complete,
        CaseFigureCell.life_events,
    )
    total = CaseCell()
    for _day, cases, multi, chains, steps, done, complete, life_events in rows:
        events = Counter({k: int(v) for k, v in (life_events or {}).items()})
        total.add(CaseCell(cases, multi, chains, steps, done, complete, events))
    missing = [d for d in _each_day(first, last) if d not in built]
    for a, b in runs(missing):
        for c in case_cells(session, tz, a, b, org).values():
            total.add(c)
    return total


def stored_rows(
    session, model, tz: ZoneInfo, viewer: str, first: date, last: date, *cols
) -> tuple[set[date], list[tuple]]:
    """The days first..last stored for `tz`, and one viewer's rows of the cell table
    `model` on them (`cols`, the first its day), in ONE statement: a day that a build stores
    or a mark drops meanwhile is in the answer with its rows or not at all, never stored
    without them (each statement sees its own snapshot). Two plain range reads of primary
    keys, joined by UNION ALL, not by a join (whose plan on a freshly filled table can read
    every cell of the viewer once per day)."""
    days = select(literal(0), FigureDay.day, *(cast(null(), c.type) for c in cols[1:])).where(
        FigureDay.tz == tz.key,
        FigureDay.day >= first,
        FigureDay.day <= last,
        FigureDay.version >= ROLLUP_VERSION,
    )
    cells = select(literal(1), *cols).where(
        model.tz == tz.key, model.viewer == viewer, model.day >= first, model.day <= last
    )
    built: set[date] = set()
    found = []
    for kind, day, *values in session.execute(union_all(days, cells)):
        if kind == 0:
            built.add(day)
        else:
            found.append((day, *values))
    return built, [row for row in found if row[0] in built]


def runs(days: list[date]) -> list[tuple[date, date]]:
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
    built, rows = stored_rows(
        session,
        FigureCell,
        tz,
        org or ADMIN,
        first,
        last,
        FigureCell.day,
        FigureCell.target_org,
        FigureCell.line_id,
        FigureCell.calls,
        FigureCell.connected,
        FigureCell.callbacks,
        FigureCell.minutes_saved,
        FigureCell.answer_times,
    )
    out: dict[tuple[date, str, str], Cell] = {}
    for day, target, line, calls, conn, cbs, saved, answers in rows:
        out[(day, target, line)] = Cell(
            calls, conn, cbs, saved, Counter({int(k): int(v) for k, v in (answers or {}).items()})
        )
    missing = [d for d in _each_day(first, last) if d not in built]
    for a, b in runs(missing):
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
        built = set() if rebuild else stored_days(s, tz, first, last)
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
    for a, b in runs(todo):
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
        network_rows = network_cells.rows(tz, network_cells.day_cells(s, tz, first, last))
    rows, calls = _figure_rows(tz, computed)
    case_rows = _case_rows(tz, computed_cases)
    days = [
        {"tz": tz.key, "day": d, "built_at": moment, "calls": calls[d], "version": ROLLUP_VERSION}
        for d in _each_day(first, last)
    ]
    with session_factory() as s:
        try:
            db.serialise(s, "rollup")  # against a supervisor's mark (forget_day)
            _drop(s, tz, first, last, everything=replace)
            s.execute(insert(FigureDay), days)  # the claim, before the cells
            if _marked_since(s, tz, first, last, moment - MARK_MARGIN):
                s.rollback()
                if first == last:
                    log.info("figures: %s marked during the rollup, left for the next", first)
                    return 0
                return sum(  # day by day: only the marked day waits
                    _store(session_factory, tz, d, d, moment, replace)
                    for d in _each_day(first, last)
                )
            for model, values in ((FigureCell, rows), (CaseFigureCell, case_rows)):
                if values:
                    s.execute(insert(model), values)
            if network_rows:
                s.execute(insert(NetworkCell), network_rows)
            s.commit()
            return len(days)
        except IntegrityError:  # another builder stored some of these days first
            s.rollback()
    if first == last:
        return 0
    with session_factory() as s:
        taken = stored_days(s, tz, first, last)
    return sum(
        _store(session_factory, tz, d, d, moment) for d in _each_day(first, last) if d not in taken
    )


def _figure_rows(tz: ZoneInfo, computed: dict) -> tuple[list[dict], Counter]:
    """figure_cells rows of computed cells, and the admin's calls per day."""
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
    return rows, calls


def _case_rows(tz: ZoneInfo, computed: dict) -> list[dict]:
    return [
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
        for (day, viewer), c in sorted(computed.items())
    ]


def _drop(s, tz: ZoneInfo, first: date, last: date, everything: bool) -> None:
    """Drop the stored days first..last (`everything`: a rebuild), or those of them stored by
    an older version of the rollup."""
    if everything:
        days = None
    else:
        days = list(
            s.scalars(
                select(FigureDay.day).where(
                    FigureDay.tz == tz.key,
                    FigureDay.day >= first,
                    FigureDay.day <= last,
                    FigureDay.version < ROLLUP_VERSION,
                )
            )
        )
        if not days:
            return
    for model in _MODELS:
        where = [model.tz == tz.key, model.day >= first, model.day <= last]
        if days is not None:
            where.append(model.day.in_(days))
        s.execute(delete(model).where(*where))


def _marked_since(s, tz: ZoneInfo, first: date, last: date, since: datetime) -> bool:
    """Whether a supervisor marked a transfer of the local days first..last at `since` or
    later (the days' stored evidence would miss it)."""
    return (
        s.scalar(
            select(Transfer.id)
            .where(
                Transfer.created_at >= day_start(first, tz),
                Transfer.created_at < day_start(last + timedelta(days=1), tz),
                Transfer.result == "wrong-line",  # a mark's result, and an index to find it
                Transfer.result_by == "supervisor",
                Transfer.result_at >= since,
            )
            .limit(1)
        )
        is not None
    )


def stored_days(session, tz: ZoneInfo, first: date, last: date) -> set[date]:
    """The days first..last whose figures are stored for the time zone `tz`."""
    return set(
        session.scalars(
            select(FigureDay.day).where(
                FigureDay.tz == tz.key,
                FigureDay.day >= first,
                FigureDay.day <= last,
                FigureDay.version >= ROLLUP_VERSION,
            )
        )
    )


def forget(session, first: date) -> None:
    """Drop the stored days from `first` on (every time zone): for writers of past call log
    rows, such as the demo traffic of `network simulate`. The figures of those days come from
    the call log until the next build."""
    for model in _MODELS:
        session.execute(delete(model).where(model.day >= first))


def forget_day(session, tz: ZoneInfo, moment: datetime) -> None:
    """Drop the stored local day (of `tz`) of the instant `moment`, in the transaction of a
    change to one of its transfers (a supervisor's wrong-line mark): the day is read from the
    call log until the next build stores it again."""
    db.serialise(session, "rollup")
    day = moment.astimezone(tz).date()
    for model in _MODELS:
        session.execute(delete(model).where(model.tz == tz.key, model.day == day))


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
