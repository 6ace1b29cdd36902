"""Opening hours: is a line open at an instant, and when does it open next.

Times are evaluated on the local wall clock of the directory's time zone, so a line that opens
at 08:30 opens at 08:30 on both sides of a daylight-saving switch. Public holidays come from the
`holidays` package for the directory's country.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_pkg

from callrouter.directory import Directory, Line, WeeklyHours

# Far enough to cover a line closed for a long holiday season, short enough to stay cheap.
HORIZON_DAYS = 400


@lru_cache(maxsize=64)
def _holiday_table(country: str, year: int) -> holidays_pkg.HolidayBase:
    return holidays_pkg.country_holidays(country, years=year)


def is_holiday(country: str, day: date) -> bool:
    return day in _holiday_table(country, day.year)


def holiday_name(country: str, day: date) -> str | None:
    return _holiday_table(country, day.year).get(day)


def _closed_all_day(line: Line, country: str, day: date) -> bool:
    if day in line.closed_on:
        return True
    return not line.open_on_holidays and is_holiday(country, day)


def _minute_open(hours: WeeklyHours, weekday: int, minute: int) -> bool:
    return any(s.start <= minute < s.end for s in hours.days[weekday])


def _local(now: datetime, tz: ZoneInfo) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(tz)


def is_open(directory: Directory, line: Line, now: datetime) -> bool:
    """True when the line takes calls at the instant `now` (timezone-aware)."""
    local = _local(now, directory.tz)
    if _closed_all_day(line, directory.holidays, local.date()):
        return False
    return _minute_open(line.hours, local.weekday(), local.hour * 60 + local.minute)


def hours_open(
    directory: Directory, hours: WeeklyHours | None, now: datetime, respect_holidays: bool = True
) -> bool:
    """True when a weekly schedule (for instance a caller organisation's) is open at `now`."""
    if hours is None:
        return True
    local = _local(now, directory.tz)
    if respect_holidays and is_holiday(directory.holidays, local.date()):
        return False
    return _minute_open(hours, local.weekday(), local.hour * 60 + local.minute)


def _wall_clock(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The instant at which the local wall clock shows `minute` on `day`.

    A time that does not exist (skipped by the spring-forward switch) is moved to the first
    instant after the gap, which is when the clock on the wall jumps past it.
    """
    naive = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
    early = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    late = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if late.astimezone(tz).replace(tzinfo=None) == naive:
        return (
            min(early, late).astimezone(tz)
            if (early.astimezone(tz).replace(tzinfo=None) == naive)
            else late.astimezone(tz)
        )
    # Inside the gap: step from before the gap to the first minute the clock shows past it.
    t = min(early, late)
    while t.astimezone(tz).replace(tzinfo=None) < naive:
        t += timedelta(minutes=1)
    return t.astimezone(tz)


def next_opening(directory: Directory, line: Line, now: datetime) -> datetime | None:
    """The first instant at or after `now` when the line is open; None if never in the horizon."""
    return _next_open(
        directory, line.hours, now, lambda day: _closed_all_day(line, directory.holidays, day)
    )


def next_opening_hours(
    directory: Directory, hours: WeeklyHours | None, now: datetime, respect_holidays: bool = True
) -> datetime | None:
    """Like `next_opening`, for a bare weekly schedule."""
    if hours is None:
        return now
    return _next_open(
        directory, hours, now, lambda day: respect_holidays and is_holiday(directory.holidays, day)
    )


def _next_open(
    directory: Directory, hours: WeeklyHours, now: datetime, closed_day
) -> datetime | None:
    tz = directory.tz
    local = _local(now, tz)
    today = local.date()
    minute_now = local.hour * 60 + local.minute
    for offset in range(HORIZON_DAYS):
        day = today + timedelta(days=offset)
        if closed_day(day):
            continue
        for span in hours.days[day.weekday()]:
            if offset == 0:
                if span.end <= minute_now:
                    continue
                if span.start <= minute_now:
                    return now
            start = _wall_clock(day, span.start, tz)
            # A span that begins where the previous day's ends (a 24/7 line) is one opening.
            if start >= now:
                return start.astimezone(tz)
    return None


def opening_end(directory: Directory, line: Line, now: datetime) -> datetime | None:
    """When the span that holds `now` ends (None when the line is closed now)."""
    if not is_open(directory, line, now):
        return None
    local = _local(now, directory.tz)
    minute = local.hour * 60 + local.minute
    for span in line.hours.days[local.weekday()]:
        if span.start <= minute < span.end:
            if span.end >= 1440:
                return _wall_clock(local.date() + timedelta(days=1), 0, directory.tz)
            return _wall_clock(local.date(), span.end, directory.tz)
    return None
