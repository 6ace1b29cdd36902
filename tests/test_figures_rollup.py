"""The figures' daily rollup: stored days give exactly the figures the call log gives, for the
admin and every organisation's scope, across a change of daylight saving time; only settled
days are stored, once; the daily job and the CLI build it."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from callrouter import figures
from callrouter.dashboard import queries
from callrouter.models import FigureCell, FigureDay, Transfer

from dashboard_helpers import add_call

AMS = ZoneInfo("Europe/Amsterdam")
# Sunday 25 October 2026 is the end of summer time in Europe/Amsterdam (a 25-hour day).
FIRST, LAST = date(2026, 10, 20), date(2026, 10, 30)
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
LINES = [
    ("svb", "svb-aow"),
    ("svb", "svb-kinderbijslag"),
    ("toeslagen", "toeslagen-algemeen"),
    ("ind", "ind-verblijf"),
]
VIEWERS = [None, "utrecht", "amsterdam", "svb", "toeslagen", "ind"]


def fill(app, seed: int = 7, per_day: int = 12) -> None:
    """Calls of two municipalities on every day, at every hour (midnight and the repeated hour
    of the DST change included), with the outcomes, answer times, callbacks and the second
    transfers (to another organisation) that each viewer's scope depends on."""
    rng = random.Random(seed)
    svc = app.extensions["callrouter"]
    day = FIRST - timedelta(days=1)
    while day <= LAST + timedelta(days=1):
        start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=2)
        for i in range(per_day):
            at = start + timedelta(minutes=rng.randrange(0, 26 * 60))
            target, line = rng.choice(LINES)
            outcome = rng.choice(["connected", "connected", "no-answer", "closed", None])
            ids = add_call(
                app,
                at=at,
                caller=rng.choice(["utrecht", "amsterdam"]),
                target=target,
                line=line,
                outcome=outcome,
                tta=round(rng.uniform(3, 60), 1) if outcome == "connected" else None,
                minutes_saved=rng.choice([None, 12.5, 20.0]),
                transfer=outcome is not None,
                callback_state="pending" if outcome == "closed" else None,
            )
            if ids.get("transfer") and i % 4 == 0:  # a second organisation on the same call
                other_org, other_line = rng.choice([x for x in LINES if x[0] != target])
                with svc.sessions.begin() as s:
                    s.add(
                        Transfer(
                            id=uuid.uuid4().hex,
                            call_id=ids["call"],
                            caller_org="utrecht",
                            target_org=other_org,
                            line_id=other_line,
                            state="ended",
                            outcome="connected",
                            created_at=at + timedelta(minutes=7),
                            time_to_answer_s=9.5,
                            minutes_saved=15.0,
                        )
                    )
        day += timedelta(days=1)


def snapshot(fig: queries.Figures) -> dict:
    def row(b):
        return (
            b.calls,
            b.connected,
            b.callbacks,
            round(b.minutes_saved, 6),
            b.median_answer_s,
            sorted(b.answer_times.items()),
        )

    return {
        "periods": [(b.label, row(b)) for b in fig.periods],
        "orgs": sorted((b.label, row(b)) for b in fig.organisations),
        "lines": sorted((b.label, row(b)) for b in fig.lines),
        "total": row(fig.total),
    }


def all_figures(app, per: str = "day") -> dict:
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        return {
            v: snapshot(queries.figures(s, v, svc.directory, FIRST, LAST, per)) for v in VIEWERS
        }


def test_stored_days_give_the_figures_of_the_call_log_for_every_scope(app):
    """Before and after the rollup, per day and per week, every viewer sees the same numbers;
    after it the settled days are read from figure_cells."""
    fill(app)
    svc = app.extensions["callrouter"]
    live = {per: all_figures(app, per) for per in ("day", "week")}
    assert live["day"][None]["total"][0] > 100  # the data is there
    assert live["day"]["svb"]["total"] != live["day"]["utrecht"]["total"]
    stored = figures.build(svc.sessions, AMS, NOW)
    assert stored > 0
    with svc.sessions() as s:
        assert s.scalar(select(func.count()).select_from(FigureCell)) > 0
        days = set(s.scalars(select(FigureDay.day)))
    assert {FIRST, LAST} <= days
    for per in ("day", "week"):
        assert all_figures(app, per) == live[per]


def test_figures_come_from_the_rollup_once_stored(app):
    """A stored day is read from figure_cells: changing a stored cell changes the page's
    figures (so the page does not recount the call log for stored days)."""
    add_call(app, at=datetime(2026, 10, 21, 10, 0, tzinfo=AMS))
    svc = app.extensions["callrouter"]
    figures.build(svc.sessions, AMS, NOW)
    with svc.sessions.begin() as s:
        cell = s.scalar(
            select(FigureCell).where(
                FigureCell.viewer == figures.ADMIN, FigureCell.day == date(2026, 10, 21)
            )
        )
        assert cell.calls == 1 and cell.line_id == "svb-aow"
        cell.calls = 41
    with svc.sessions() as s:
        fig = queries.figures(s, None, svc.directory, FIRST, LAST)
    assert fig.total.calls == 41


def test_only_settled_days_are_stored_and_each_only_once(app):
    """Days that ended less than SETTLE ago stay live; a second build stores nothing; a later
    build adds the days that settled since; a rebuild stores them all again."""
    svc = app.extensions["callrouter"]
    for back in range(6):
        add_call(app, at=NOW - timedelta(days=back))
    assert figures.build(svc.sessions, AMS, NOW) == 3  # 28..30 Oct; 31 Oct - 2 Nov are live
    with svc.sessions() as s:
        days = sorted(s.scalars(select(FigureDay.day)))
    assert days == [date(2026, 10, 28), date(2026, 10, 29), date(2026, 10, 30)]
    assert figures.settled_until(AMS, NOW) == date(2026, 10, 30)
    assert figures.build(svc.sessions, AMS, NOW) == 0
    assert figures.build(svc.sessions, AMS, NOW + timedelta(days=1)) == 1
    assert figures.build(svc.sessions, AMS, NOW + timedelta(days=1), rebuild=True) == 4
    with svc.sessions() as s:
        assert s.scalar(select(func.count()).select_from(FigureDay)) == 4
        assert (
            s.scalar(select(func.sum(FigureCell.calls)).where(FigureCell.viewer == figures.ADMIN))
            == 4
        )


def test_a_concurrent_builder_of_the_same_days_stores_nothing_twice(app):
    """Two builders of one day: the second finds the day's key taken and stores nothing."""
    svc = app.extensions["callrouter"]
    add_call(app, at=datetime(2026, 10, 21, 10, 0, tzinfo=AMS))
    day = date(2026, 10, 21)
    assert figures._store(svc.sessions, AMS, day, day, NOW) == 1
    assert figures._store(svc.sessions, AMS, day, day, NOW) == 0
    with svc.sessions() as s:
        assert (
            s.scalar(select(func.sum(FigureCell.calls)).where(FigureCell.viewer == figures.ADMIN))
            == 1
        )


def test_days_stored_for_another_time_zone_are_not_used(app):
    """A directory with another time zone has other local days: its stored days are ignored,
    the figures come from the call log."""
    add_call(app, at=datetime(2026, 10, 21, 23, 30, tzinfo=UTC))  # 22 Oct in Amsterdam
    svc = app.extensions["callrouter"]
    figures.build(svc.sessions, ZoneInfo("America/New_York"), NOW)
    with svc.sessions() as s:
        fig = queries.figures(s, None, svc.directory, FIRST, LAST)
    assert [b.calls for b in fig.periods if b.calls] == [1]
    assert [b.label for b in fig.periods if b.calls] == ["do 22-10"]


def test_a_time_zone_of_half_hours_splits_its_days_at_local_midnight(app):
    """The call log is bucketed by UTC minute, not hour: in India (UTC+5:30) 18:20 UTC is
    23:50 on one day and 18:40 UTC 00:10 on the next, for calls and for cases alike, read
    live and stored."""
    from callrouter.figure_cells import case_cells, cells
    from callrouter.models import Case

    kolkata = ZoneInfo("Asia/Kolkata")
    svc = app.extensions["callrouter"]
    for minute in (20, 40):
        at = datetime(2026, 10, 21, 18, minute, tzinfo=UTC)
        add_call(app, at=at)
        with svc.sessions.begin() as s:
            s.add(
                Case(
                    id=uuid.uuid4().hex,
                    reference=f"K0000{minute}",
                    caller_org="utrecht",
                    state="open",
                    opened_at=at,
                    updated_at=at,
                )
            )
    days = {date(2026, 10, 21): 1, date(2026, 10, 22): 1}
    with svc.sessions() as s:
        got = cells(s, kolkata, FIRST, LAST)
        assert {k[0]: c.calls for k, c in got.items()} == days
        assert {k[0]: c.cases for k, c in case_cells(s, kolkata, FIRST, LAST).items()} == days
    figures.build(svc.sessions, kolkata, NOW)
    with svc.sessions() as s:
        stored = figures.daily(s, kolkata, None, FIRST, LAST)
        assert {k[0]: c.calls for k, c in stored.items()} == days


@pytest.fixture
def at_now(monkeypatch):
    from callrouter import clock, retention

    monkeypatch.setattr(clock, "now", lambda: NOW)
    monkeypatch.setattr(retention, "now", lambda: NOW)


def test_the_daily_job_and_the_cli_build_the_rollup(app, at_now):
    """The daily retention job stores the settled days after its purge; `flask figures rollup`
    does it on demand (and --rebuild again)."""
    from callrouter import retention

    add_call(app, at=datetime(2026, 10, 21, 10, 0, tzinfo=AMS))
    with app.app_context():
        counts = retention.purge_and_reschedule()
    assert counts["figure_days"] == 10  # 21..30 Oct
    runner = app.test_cli_runner()
    result = runner.invoke(args=["figures", "rollup"])
    assert result.exit_code == 0 and "days stored: 0" in result.output
    result = runner.invoke(args=["figures", "rollup", "--rebuild"])
    assert result.exit_code == 0 and "days stored: 10" in result.output


def test_the_job_stores_a_fortnight_at_a_time_and_queues_the_rest(app, at_now, redis_client):
    """A long history is rolled up in jobs of JOB_DAYS days (the worker's transfer jobs never
    wait behind a year of it): the first job stores 14 days and queues the next, which a real
    RQ worker runs to store the rest."""
    from rq import SimpleWorker

    add_call(app, at=datetime(2026, 10, 1, 10, 0, tzinfo=AMS))  # 1..30 Oct settled: 30 days
    svc = app.extensions["callrouter"]
    with app.app_context():
        assert figures.build_job() == figures.JOB_DAYS == 14
        queue = svc.queue("default")
        assert queue.count == 1
        SimpleWorker([queue], connection=svc.redis).work(burst=True)
    with svc.sessions() as s:
        days = sorted(s.scalars(select(FigureDay.day)))
    assert len(days) == 30 and days[0] == date(2026, 10, 1) and days[-1] == date(2026, 10, 30)
    assert queue.count == 0


def test_a_builder_meeting_days_stored_by_another_stores_the_others(app):
    """Days 7 and 8 stored by one builder; another building 7..12 stores 9..12 (day by day
    after its chunk met the taken days), never duplicating 7 and 8."""
    svc = app.extensions["callrouter"]
    for d in range(2, 13):
        add_call(app, at=datetime(2026, 10, d, 10, 0, tzinfo=AMS))
    assert figures._store(svc.sessions, AMS, date(2026, 10, 2), date(2026, 10, 8), NOW) == 7
    assert figures._store(svc.sessions, AMS, date(2026, 10, 7), date(2026, 10, 12), NOW) == 4
    with svc.sessions() as s:
        assert s.scalar(select(func.count()).select_from(FigureDay)) == 11
        assert (
            s.scalar(select(func.sum(FigureCell.calls)).where(FigureCell.viewer == figures.ADMIN))
            == 11
        )


def test_answer_seconds_round_half_up_in_figures_and_network_report(app):
    """7.5 s and 8.5 s are seconds 8 and 9 in the figures (stored or not) and in the network
    report, on SQLite and PostgreSQL alike (PostgreSQL's round() of a double would give 8, 8)."""
    from callrouter import network

    add_call(app, at=datetime(2026, 10, 21, 10, 0, tzinfo=AMS), tta=7.5)
    add_call(app, at=datetime(2026, 10, 21, 11, 0, tzinfo=AMS), tta=8.5)
    svc = app.extensions["callrouter"]
    with svc.sessions() as s:
        live = queries.figures(s, None, svc.directory, FIRST, LAST).total.answer_times
        report = network.collect(
            s, svc.directory, datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC)
        )
    figures.build(svc.sessions, AMS, NOW)
    with svc.sessions() as s:
        stored = queries.figures(s, None, svc.directory, FIRST, LAST).total.answer_times
    assert live == stored == report.lines["svb-aow"].answer_times == {8: 1, 9: 1}


def test_demo_traffic_drops_the_stored_days_it_writes_into(app):
    """`network simulate` writes calls into past days: their stored figures are dropped, so
    the figures show the new traffic (from the call log until the next build)."""
    from callrouter import simulate

    add_call(app, at=datetime(2026, 10, 15, 10, 0, tzinfo=AMS))  # before the period
    add_call(app, at=datetime(2026, 10, 21, 10, 0, tzinfo=AMS))
    svc = app.extensions["callrouter"]
    figures.build(svc.sessions, AMS, NOW)
    with svc.sessions() as s:
        before = queries.figures(s, None, svc.directory, FIRST, LAST).total.calls
    counts = simulate.simulate(svc.engine, svc.directory, 5, seed=3, until=date(2026, 10, 27))
    assert counts["calls"] > 0 and before == 1
    with svc.sessions() as s:
        after = queries.figures(s, None, svc.directory, FIRST, LAST).total.calls
        kept = sorted(s.scalars(select(FigureDay.day)))
    assert after == before + counts["calls"]
    assert kept == [date(2026, 10, 15) + timedelta(days=i) for i in range(6)]  # 15..20 Oct


def fill_cases(app, seed: int = 11, per_day: int = 8) -> None:
    """Cases of two municipalities on every day: single steps, life-event chains with steps
    in every state, several organisations per case, consents to organisations without a
    step, and life-event cases without steps."""
    from callrouter.models import Case, CaseStep, Consent

    rng = random.Random(seed)
    svc = app.extensions["callrouter"]
    states = ["done", "connected", "unanswered", "closed", "skipped", "stopped", "pending"]
    day = FIRST - timedelta(days=1)
    n = 0
    with svc.sessions.begin() as s:
        while day <= LAST + timedelta(days=1):
            start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=2)
            for _ in range(per_day):
                n += 1
                at = start + timedelta(minutes=rng.randrange(0, 26 * 60))
                case_id = uuid.uuid4().hex
                event = rng.choice([None, None, "verhuizing", "overlijden"])
                s.add(
                    Case(
                        id=case_id,
                        reference=f"R{n:06d}",
                        caller_org=rng.choice(["utrecht", "amsterdam"]),
                        call_id=uuid.uuid4().hex,
                        life_event=event,
                        state="open",
                        opened_at=at,
                        updated_at=at,
                    )
                )
                s.flush()
                for pos in range(rng.choice([0, 1, 1, 2, 3])):
                    target, line = rng.choice(LINES)
                    s.add(
                        CaseStep(
                            id=uuid.uuid4().hex,
                            case_id=case_id,
                            position=pos,
                            line_id=line,
                            target_org=target,
                            state=rng.choice(states),
                            updated_at=at,
                        )
                    )
                if rng.random() < 0.3:
                    s.add(
                        Consent(
                            id=uuid.uuid4().hex,
                            case_id=case_id,
                            target_org=rng.choice(["ind", "toeslagen"]),
                            choice="case",
                            recorded_at=at,
                        )
                    )
            day += timedelta(days=1)


def test_stored_case_figures_equal_the_case_tables_for_every_scope(app):
    """The case figures (cases, multi-organisation, life events, chains) are the same from
    the SQL over the case tables, from the Python fold before the rollup and from the rollup."""
    fill_cases(app)
    svc = app.extensions["callrouter"]
    since, until = figures.day_start(FIRST, AMS), figures.day_start(LAST + timedelta(1), AMS)

    def snap(cf):
        return (
            cf.cases,
            cf.multi_org,
            sorted(cf.life_events),
            cf.chains,
            cf.chain_steps,
            cf.chain_steps_done,
            cf.chains_complete,
        )

    with svc.sessions() as s:
        sql = {v: snap(queries.case_figures(s, v, since, until)) for v in VIEWERS}
        live = {
            v: snap(queries.case_figures_days(s, v, svc.directory, FIRST, LAST)) for v in VIEWERS
        }
    assert sql == live
    assert sql[None][0] > 50 and sql[None][1] > 0 and sql[None][3] > 0
    assert sql["ind"] != sql["svb"]
    figures.build(svc.sessions, AMS, NOW)
    with svc.sessions() as s:
        from callrouter.models import CaseFigureCell

        assert s.scalar(select(func.count()).select_from(CaseFigureCell)) > 0
        stored = {
            v: snap(queries.case_figures_days(s, v, svc.directory, FIRST, LAST)) for v in VIEWERS
        }
    assert stored == sql
