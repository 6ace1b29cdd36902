"""The network report's daily rollup: stored days give exactly the report of the call log, for
the admin and every organisation's scope, over a change of daylight saving time; a
supervisor's wrong-line mark on a stored day shows at once and is stored by the next build; a
build that may have missed a mark leaves those days for the next one."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from callrouter import figures, network, simulate
from callrouter.figure_cells import day_start
from callrouter.models import FigureDay, NetworkCell, Transfer

from dashboard_helpers import csrf_of, login, make_user

ROOT = Path(__file__).resolve().parent.parent
# A period over the end of summer time (Sunday 25 October 2026 in Europe/Amsterdam).
UNTIL = date(2026, 11, 2)
FIRST, LAST = date(2026, 10, 6), date(2026, 11, 1)
NOW = datetime(2026, 11, 9, 12, tzinfo=UTC)  # every day of the period has settled


@pytest.fixture(scope="module")
def lines_file(tmp_path_factory):
    """The shipped directory (the simulation uses its opening hours and keywords)."""
    path = tmp_path_factory.mktemp("shipped") / "lines.yaml"
    shutil.copy(ROOT / "config" / "lines.yaml", path)
    return path


def normal(report, directory) -> dict:
    """The report as the page shows it to an admin, in an order that does not depend on how
    it was added up."""
    d = network.as_dict(report, directory, admin=True)
    d["lines"] = sorted(d["lines"], key=lambda ln: ln["line"])
    d["terms"] = sorted(d["terms"], key=lambda t: (t["term"], t["line"]))
    d["combinations"] = sorted(d["combinations"], key=lambda c: (c["lines"], c["cases"]))
    d["suggestions"] = sorted(s["text"] for s in d["suggestions"])
    return d


def viewers(directory) -> list[str | None]:
    return [None, *sorted({ln.organisation_id for ln in directory.lines}), "utrecht"]


def reports(app, first=FIRST, last=LAST, stored=True) -> dict:
    svc = app.extensions["callrouter"]
    d = svc.directory
    out = {}
    with svc.sessions() as s:
        for org in viewers(d):
            if stored:
                report = network.collect_days(s, d, first, last, org)
            else:
                since, until = day_start(first, d.tz), day_start(last + timedelta(days=1), d.tz)
                report = network.collect(s, d, since, until, org)
            out[org] = normal(report, d)
    return out


def test_stored_days_give_the_report_of_the_call_log_for_every_scope(app):
    """Before and after the rollup, every viewer gets the same report; after it the days
    come from network_cells, and a period partly stored adds the rest from the call log."""
    svc = app.extensions["callrouter"]
    simulate.simulate(svc.engine, svc.directory, 30, 7, simulate.PLANTS, until=UNTIL)
    live = reports(app, stored=False)
    assert live[None]["lines"] and live[None]["suggestions"]  # the data is there
    assert live["svb"] != live[None] and live["utrecht"] != live["svb"]
    assert reports(app) == live  # nothing stored yet: from the call log
    assert figures.build(svc.sessions, svc.directory.tz, NOW) > 0
    with svc.sessions() as s:
        assert s.scalar(select(func.count()).select_from(NetworkCell)) > 0
        assert {FIRST, LAST} <= set(s.scalars(select(FigureDay.day)))
    assert reports(app) == live
    # The last week stored no more: those days come from the call log, the rest stored.
    with svc.sessions.begin() as s:
        s.execute(FigureDay.__table__.delete().where(FigureDay.day > LAST - timedelta(days=7)))
    assert reports(app) == live


def test_a_stored_day_is_read_from_the_rollup(app):
    """Changing a stored cell changes the report: the stored days are really read."""
    svc = app.extensions["callrouter"]
    simulate.simulate(svc.engine, svc.directory, 10, 3, (), until=UNTIL)
    figures.build(svc.sessions, svc.directory.tz, NOW)
    before = reports(app, LAST - timedelta(days=9), LAST)[None]
    with svc.sessions.begin() as s:
        s.execute(update(NetworkCell).where(NetworkCell.viewer == "*").values(transfers=0))
    after = reports(app, LAST - timedelta(days=9), LAST)[None]
    assert sum(ln["transfers"] or 0 for ln in before["lines"]) > 0
    assert sum(ln["transfers"] or 0 for ln in after["lines"]) == 0


def _mark_wrong_line(app, tr: Transfer, right_line: str) -> None:
    make_user(app, f"sup@{tr.target_org}.nl", "supervisor", tr.target_org)
    with app.test_client() as c:
        login(c, f"sup@{tr.target_org}.nl")
        page = c.get(f"/dashboard/calls/{tr.call_id}").get_data(as_text=True)
        resp = c.post(
            f"/dashboard/transfers/{tr.id}/wrong-line",
            data={"csrf_token": csrf_of(page), "line": right_line},
        )
        assert resp.status_code == 302


def test_a_wrong_line_mark_on_a_stored_day_shows_at_once_and_is_stored_again(app, monkeypatch):
    """The supervisor's mark drops the transfer's stored day (the report reads it from the
    call log, with the mark); the next build stores it again, with the mark."""
    from callrouter import clock

    svc = app.extensions["callrouter"]
    tz = svc.directory.tz
    simulate.simulate(svc.engine, svc.directory, 10, 5, (), until=UNTIL)
    figures.build(svc.sessions, tz, NOW)
    with svc.sessions() as s:
        tr = s.scalar(
            select(Transfer)
            .where(Transfer.result == "resolved", Transfer.direction.is_(None))
            .order_by(Transfer.created_at)
            .limit(1)
        )
    day = tr.created_at.astimezone(tz).date()
    other = next(ln for ln in svc.directory.lines if ln.id != tr.line_id)
    around = (day - timedelta(days=3), day + timedelta(days=3))
    before = reports(app, *around)
    monkeypatch.setattr(clock, "now", lambda: NOW)
    _mark_wrong_line(app, tr, other.id)
    with svc.sessions() as s:
        stored = set(s.scalars(select(FigureDay.day)))
    assert day not in stored and day + timedelta(days=1) in stored
    live = reports(app, *around, stored=False)
    assert live[tr.target_org] != before[tr.target_org]  # the mark is in the call log
    assert reports(app, *around) == live
    # A build just after the mark may have read the day before it: it leaves the day.
    assert figures.build(svc.sessions, tz, NOW + timedelta(minutes=1)) == 0
    with svc.sessions() as s:
        assert day not in set(s.scalars(select(FigureDay.day)))
    assert figures.build(svc.sessions, tz, NOW + figures.MARK_MARGIN * 2) == 1
    with svc.sessions() as s:
        assert day in set(s.scalars(select(FigureDay.day)))
    assert reports(app, *around) == live


def test_a_build_meeting_a_recent_mark_stores_the_other_days(app):
    """Only the marked transfer's day waits for the next build; every other settled day,
    those of its chunk included, is stored."""
    svc = app.extensions["callrouter"]
    tz = svc.directory.tz
    simulate.simulate(svc.engine, svc.directory, 20, 6, (), until=UNTIL)
    with svc.sessions.begin() as s:
        tr = s.scalar(
            select(Transfer).where(Transfer.direction.is_(None)).order_by(Transfer.created_at)
        )
        s.execute(
            update(Transfer)
            .where(Transfer.id == tr.id)
            .values(result="wrong-line", result_by="supervisor", result_at=NOW)
        )
    stored = figures.build(svc.sessions, tz, NOW)
    with svc.sessions() as s:
        days = set(s.scalars(select(FigureDay.day)))
    marked = tr.created_at.astimezone(tz).date()
    assert marked not in days and stored == len(days) > 10
    assert marked + timedelta(days=1) in days  # the rest of its chunk of days
    assert figures.build(svc.sessions, tz, NOW + figures.MARK_MARGIN * 2) == 1


def test_a_day_stored_by_an_older_rollup_is_read_live_and_stored_again(app):
    """A day an older builder stored (no network evidence, version 0) counts as not stored:
    the report and the figures read it from the call log, and the next build replaces it."""
    svc = app.extensions["callrouter"]
    tz = svc.directory.tz
    simulate.simulate(svc.engine, svc.directory, 10, 8, (), until=UNTIL)
    figures.build(svc.sessions, tz, NOW)
    old = LAST - timedelta(days=3)
    with svc.sessions.begin() as s:  # what a builder of the previous release leaves
        s.execute(update(FigureDay).where(FigureDay.day == old).values(version=0))
        s.execute(NetworkCell.__table__.delete().where(NetworkCell.day == old))
    live = reports(app, LAST - timedelta(days=9), LAST, stored=False)
    assert reports(app, LAST - timedelta(days=9), LAST) == live
    with svc.sessions() as s:
        assert old not in figures.stored_days(s, tz, FIRST, LAST)
    assert figures.build(svc.sessions, tz, NOW) == 1
    with svc.sessions() as s:
        assert old in figures.stored_days(s, tz, FIRST, LAST)
        kept = s.scalar(select(func.count()).select_from(NetworkCell).where(NetworkCell.day == old))
    assert kept > 0
    assert reports(app, LAST - timedelta(days=9), LAST) == live
