"""The figures page's numbers: calls, share connected, median time to answer, callbacks and
minutes saved per period, organisation and line; and the case figures.

Local days come from callrouter.figures (the rollup of settled days, the call log for the
others); here they are folded into the page's tables. `case_figures` counts the same case
figures straight from the case tables, within the asker's case scope.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import case, func, select

from callrouter import figures as figures_mod
from callrouter.dashboard.scopes import case_scope
from callrouter.models import Case, CaseStep


@dataclass
class Bucket:
    """Figures of one period (a day, a week), an organisation or a line."""

    label: str
    calls: int = 0
    connected: int = 0
    callbacks: int = 0
    minutes_saved: float = 0.0
    answer_times: Counter = field(default_factory=Counter)  # whole seconds -> count

    @property
    def connected_share(self) -> float | None:
        return self.connected / self.calls if self.calls else None

    @property
    def median_answer_s(self) -> float | None:
        total = sum(self.answer_times.values())
        if not total:
            return None
        values = sorted(self.answer_times.elements())
        return float(statistics.median(values))


@dataclass
class Figures:
    periods: list[Bucket]
    organisations: list[Bucket]
    lines: list[Bucket]
    total: Bucket


def figures(
    session, org: str | None, directory, first: date, last: date, granularity: str = "day"
) -> Figures:
    """Calls, share connected, median time to answer, callbacks and minutes saved, per day or
    week, per organisation and per line, over the local days `first`..`last`.

    Local days come from callrouter.figures (the rollup of settled days, the call log for the
    others); here they are folded into periods, organisations and lines."""
    tz = directory.tz
    periods: dict[date, Bucket] = {}
    day = first
    while day <= last:
        key = day - timedelta(days=day.weekday()) if granularity == "week" else day
        periods.setdefault(key, Bucket(_period_label(key, granularity)))
        day += timedelta(days=1)
    orgs: dict[str, Bucket] = {}
    lines: dict[str, Bucket] = {}
    total = Bucket("totaal")

    def org_bucket(org_id):
        bucket = orgs.get(org_id or "-")
        if bucket is None:
            o = directory.organisation(org_id)
            bucket = orgs[org_id or "-"] = Bucket(o.name if o else (org_id or "geen keuze"))
        return bucket

    def line_bucket(line_id):
        bucket = lines.get(line_id or "-")
        if bucket is None:
            ln = directory.line(line_id)
            label = (
                f"{directory.organisation(ln.organisation_id).name}: {ln.topic}"
                if ln
                else (line_id or "geen lijn")
            )
            bucket = lines[line_id or "-"] = Bucket(label)
        return bucket

    for (day, target, line_id), c in figures_mod.daily(session, tz, org, first, last).items():
        key = day - timedelta(days=day.weekday()) if granularity == "week" else day
        for b in (periods[key], org_bucket(target or None), line_bucket(line_id or None), total):
            b.calls += c.calls
            b.connected += c.connected
            b.callbacks += c.callbacks
            b.minutes_saved += c.minutes_saved
            b.answer_times.update(c.answer_times)

    return Figures(
        periods=[periods[k] for k in sorted(periods)],
        organisations=sorted(orgs.values(), key=lambda b: -b.calls),
        lines=sorted(lines.values(), key=lambda b: -b.calls),
        total=total,
    )


_WEEKDAYS = ("ma", "di", "wo", "do", "vr", "za", "zo")


def _period_label(day: date, granularity: str) -> str:
    if granularity == "week":
        iso = day.isocalendar()
        return f"week {iso.week} ({iso.year})"
    return f"{_WEEKDAYS[day.weekday()]} {day.day}-{day.month}"


# --------------------------------------------------------------------------- case figures


@dataclass
class CaseFigures:
    cases: int
    multi_org: int  # cases that needed more than one organisation
    life_events: list[tuple[str, int]]  # (event id, cases)
    chain_steps: int
    chain_steps_done: int  # reached (done/connected) out of all chain steps
    chains_complete: int  # chains whose every step was reached
    chains: int

    @property
    def multi_org_share(self) -> float | None:
        return self.multi_org / self.cases if self.cases else None

    @property
    def completion(self) -> float | None:
        return self.chain_steps_done / self.chain_steps if self.chain_steps else None


def case_figures_days(session, org: str | None, directory, first: date, last: date) -> CaseFigures:
    """The case figures of the local days first..last: the rollup of settled days, the case
    tables for the others (callrouter.figures), the same numbers as `case_figures`."""
    c = figures_mod.case_daily(session, directory.tz, org, first, last)
    return CaseFigures(
        cases=c.cases,
        multi_org=c.multi_org,
        life_events=c.life_events.most_common(),
        chain_steps=c.chain_steps,
        chain_steps_done=c.chain_steps_done,
        chains_complete=c.chains_complete,
        chains=c.chains,
    )


def case_figures(session, org: str | None, since: datetime, until: datetime) -> CaseFigures:
    base = select(Case.id).where(case_scope(org), Case.opened_at >= since, Case.opened_at < until)
    ids = base.subquery()
    n_cases = session.scalar(select(func.count()).select_from(ids)) or 0
    orgs_per_case = (
        select(CaseStep.case_id, func.count(func.distinct(CaseStep.target_org)).label("n"))
        .where(
            CaseStep.case_id.in_(select(ids.c.id)), CaseStep.state.not_in(("skipped", "stopped"))
        )
        .group_by(CaseStep.case_id)
        .subquery()
    )
    multi = (
        session.scalar(select(func.count()).select_from(orgs_per_case).where(orgs_per_case.c.n > 1))
        or 0
    )
    events = session.execute(
        select(Case.life_event, func.count())
        .where(Case.id.in_(select(ids.c.id)), Case.life_event.is_not(None))
        .group_by(Case.life_event)
        .order_by(func.count().desc())
    ).all()
    reached = case((CaseStep.state.in_(("done", "connected")), 1), else_=0)
    per_chain = session.execute(
        select(CaseStep.case_id, func.count(), func.sum(reached))
        .join(Case, Case.id == CaseStep.case_id)
        .where(Case.id.in_(select(ids.c.id)), Case.life_event.is_not(None))
        .group_by(CaseStep.case_id)
    ).all()
    steps = sum(int(n) for _, n, _ in per_chain)
    done = sum(int(d or 0) for _, _, d in per_chain)
    complete = sum(1 for _, n, d in per_chain if int(d or 0) == int(n))
    return CaseFigures(
        cases=int(n_cases),
        multi_org=int(multi),
        life_events=[(e, int(n)) for e, n in events],
        chain_steps=steps,
        chain_steps_done=done,
        chains_complete=complete,
        chains=len(per_chain),
    )
