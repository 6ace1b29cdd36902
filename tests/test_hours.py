"""Opening hours on the Europe/Amsterdam wall clock, with Dutch public holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callrouter.directory import Directory, Line, loads
from callrouter.flows import hours, menu

AMS = ZoneInfo("Europe/Amsterdam")

OFFICE = {"mon-fri": "08:30-17:00"}
DAILY = {"daily": "08:30-17:00"}
LUNCH = {"mon-fri": "08:30-12:00,13:00-17:00"}
ALWAYS = "24/7"
NIGHT_SUNDAY = {"sun": "02:30-04:00"}


def make_yaml(*lines: dict) -> str:
    """A directory text with one caller and one organisation holding `lines`.

    Each line is a dict with `id`, `hours` (a "24/7" string or a {days: spans} mapping) and
    optionally `closed_on` (list of ISO dates) and `open_on_holidays` (bool).
    """
    out = [
        "timezone: Europe/Amsterdam",
        "holidays: NL",
        'internal_number: "+31880100100"',
        "callers:",
        "  - id: utrecht",
        "    name: Gemeente Utrecht",
        '    code: "0344"',
        '    numbers: ["+3130286*"]',
        "organisations:",
        "  - id: svb",
        "    name: SVB",
        "    digit: 3",
        "    lines:",
    ]
    for i, spec in enumerate(lines):
        out += [
            f"      - id: {spec['id']}",
            f"        topic: onderwerp {i + 1}",
            f"        digit: {i + 1}",
            f'        numbers: ["+3188300{i + 1:04d}"]',
        ]
        if isinstance(spec["hours"], str):
            out.append(f'        hours: "{spec["hours"]}"')
        else:
            out.append("        hours:")
            out += [f'          {day}: "{spans}"' for day, spans in spec["hours"].items()]
        if spec.get("closed_on"):
            out.append(
                "        closed_on: [" + ", ".join(f'"{d}"' for d in spec["closed_on"]) + "]"
            )
        if spec.get("open_on_holidays"):
            out.append("        open_on_holidays: true")
    return "\n".join(out) + "\n"


def single_line(hours_spec, closed_on=(), open_on_holidays=False) -> tuple[Directory, Line]:
    """A directory with exactly one line, and that line."""
    directory = loads(
        make_yaml(
            {
                "id": "the-line",
                "hours": hours_spec,
                "closed_on": closed_on,
                "open_on_holidays": open_on_holidays,
            }
        ),
        "test.yaml",
    )
    line = directory.line("the-line")
    assert line is not None
    return directory, line


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=AMS)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def wall(moment: datetime) -> datetime:
    """The naive local wall-clock time of an aware instant."""
    return moment.astimezone(AMS).replace(tzinfo=None)


# --------------------------------------------------------------------------- helper sanity


def test_helper_builds_a_valid_directory_with_several_lines():
    """The YAML helper yields a directory holding every line asked for, in Amsterdam time."""
    d = loads(
        make_yaml(
            {"id": "a", "hours": OFFICE}, {"id": "b", "hours": ALWAYS, "open_on_holidays": True}
        )
    )
    assert [ln.id for ln in d.lines] == ["a", "b"]
    assert d.timezone == "Europe/Amsterdam" and d.holidays == "NL"
    assert d.line("b").hours.always and d.line("b").open_on_holidays


# --------------------------------------------------------------------------- daylight saving


@pytest.mark.parametrize(
    ("day", "utc_0830"),
    [
        (date(2026, 3, 22), utc(2026, 3, 22, 7, 30)),  # Sunday before, CET (+01:00)
        (date(2026, 3, 29), utc(2026, 3, 29, 6, 30)),  # spring forward, CEST (+02:00)
        (date(2026, 10, 25), utc(2026, 10, 25, 7, 30)),  # fall back, CET again
        (date(2026, 10, 26), utc(2026, 10, 26, 7, 30)),  # day after fall back
    ],
    ids=["before-spring", "spring-forward", "fall-back", "after-fall-back"],
)
def test_daily_line_opens_at_0830_local_around_dst(day, utc_0830):
    """A line opening 08:30 opens at 08:30 on the wall clock, also on DST switch days."""
    d, line = single_line(DAILY)
    assert wall(utc_0830) == datetime(day.year, day.month, day.day, 8, 30)
    assert not hours.is_open(d, line, utc_0830 - timedelta(minutes=1))
    assert hours.is_open(d, line, utc_0830)


@pytest.mark.parametrize(
    ("day", "expected_utc", "offset_hours"),
    [
        (date(2026, 3, 29), utc(2026, 3, 29, 6, 30), 2),
        (date(2026, 10, 25), utc(2026, 10, 25, 7, 30), 1),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_next_opening_on_dst_day_is_0830_local(day, expected_utc, offset_hours):
    """From local midnight on a switch day the next opening is 08:30 with the new offset."""
    d, line = single_line(DAILY)
    got = hours.next_opening(d, line, local(day.year, day.month, day.day, 0, 0))
    assert got == expected_utc
    assert wall(got) == datetime(day.year, day.month, day.day, 8, 30)
    assert got.utcoffset() == timedelta(hours=offset_hours)


@pytest.mark.parametrize(
    "night_start_utc",
    [utc(2026, 3, 28, 23, 0), utc(2026, 10, 24, 23, 0)],
    ids=["spring-forward", "fall-back"],
)
def test_always_line_stays_open_through_the_switch_night(night_start_utc):
    """A 24/7 line is open at every minute of the night of a DST switch, 02:00-03:00 included."""
    d, line = single_line(ALWAYS)
    closed = [
        night_start_utc + timedelta(minutes=m)
        for m in range(0, 5 * 60)
        if not hours.is_open(d, line, night_start_utc + timedelta(minutes=m))
    ]
    assert closed == []


@pytest.mark.parametrize(
    "now",
    [
        utc(2026, 3, 29, 0, 59),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 30),
    ],
    ids=["spring-0159-cet", "spring-0300-cest", "fall-0230-cest", "fall-0230-cet"],
)
def test_always_line_next_opening_during_switch_is_now(now):
    """A 24/7 line asked for its next opening during the switch hour answers `now`."""
    d, line = single_line(ALWAYS)
    assert hours.next_opening(d, line, now) == now


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 3, 29, 0, 59), False),  # 01:59 CET, before the gap
        (utc(2026, 3, 29, 1, 0), True),  # 03:00 CEST, first minute after the gap
        (utc(2026, 3, 29, 1, 59), True),  # 03:59 CEST
        (utc(2026, 3, 29, 2, 0), False),  # 04:00 CEST, span over
    ],
    ids=["0159-cet", "0300-cest", "0359-cest", "0400-cest"],
)
def test_span_starting_in_skipped_hour_is_open_from_0300(moment, expected):
    """A Sunday "02:30-04:00" span on spring-forward day is open from 03:00 to 04:00."""
    d, line = single_line(NIGHT_SUNDAY)
    assert hours.is_open(d, line, moment) is expected


@pytest.mark.parametrize(
    "now",
    [local(2026, 3, 28, 12, 0), local(2026, 3, 29, 0, 0), utc(2026, 3, 29, 0, 59)],
    ids=["saturday-noon", "sunday-midnight", "sunday-0159-cet"],
)
def test_span_in_skipped_hour_next_opening_is_0300_cest(now):
    """The next opening of a span starting at the non-existent 02:30 is 03:00 CEST."""
    d, line = single_line(NIGHT_SUNDAY)
    got = hours.next_opening(d, line, now)
    assert got == utc(2026, 3, 29, 1, 0)
    assert wall(got) == datetime(2026, 3, 29, 3, 0)


def test_span_in_repeated_hour_opens_at_first_0230():
    """On fall-back day a span starting at the repeated 02:30 opens at its first occurrence."""
    d, line = single_line(NIGHT_SUNDAY)
    got = hours.next_opening(d, line, local(2026, 10, 24, 12, 0))
    # Compare in UTC: by PEP 495 an aware datetime inside a repeated hour never compares
    # equal (==) to a datetime in another zone, even when both name the same instant.
    assert got.astimezone(UTC) == utc(2026, 10, 25, 0, 30)
    assert got.utcoffset() == timedelta(hours=2)
    assert hours.is_open(d, line, utc(2026, 10, 25, 1, 30))  # 02:30 again, now CET


# --------------------------------------------------------------------------- holidays


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 4, 27), True),  # Koningsdag (Monday)
        (date(2026, 12, 25), True),  # Eerste Kerstdag
        (date(2026, 12, 26), True),  # Tweede Kerstdag
        (date(2026, 4, 6), True),  # Tweede Paasdag
        (date(2026, 1, 1), True),  # Nieuwjaarsdag
        (date(2026, 4, 28), False),
        (date(2026, 12, 24), False),
        (date(2026, 3, 29), False),
    ],
)
def test_is_holiday_nl(day, expected):
    """is_holiday knows the Dutch public holidays of 2026."""
    assert hours.is_holiday("NL", day) is expected


@pytest.mark.parametrize(
    ("moment", "hours_spec", "open_on_holidays", "expected"),
    [
        (local(2026, 4, 27, 10), OFFICE, False, False),  # Koningsdag: closed
        (local(2026, 4, 27, 10), OFFICE, True, True),  # ... unless open on holidays
        (local(2026, 4, 28, 10), OFFICE, False, True),  # the Tuesday after: open
        (local(2026, 12, 25, 10), OFFICE, False, False),  # Christmas (Friday)
        (local(2026, 12, 25, 10), OFFICE, True, True),
        (local(2026, 12, 26, 10), DAILY, False, False),  # Second Christmas day (Saturday)
        (local(2026, 12, 26, 10), DAILY, True, True),
        (local(2026, 4, 6, 10), OFFICE, False, False),  # Easter Monday
        (local(2026, 4, 6, 10), OFFICE, True, True),
        (local(2026, 4, 26, 10), OFFICE, False, False),  # an ordinary Sunday, mon-fri line
        (local(2026, 4, 26, 10), DAILY, False, True),  # same Sunday, daily line
        (local(2026, 12, 25, 3), ALWAYS, True, True),  # 24/7 crisis line on Christmas night
        (local(2026, 12, 25, 3), ALWAYS, False, False),  # 24/7 without open_on_holidays
    ],
    ids=[
        "koningsdag-office",
        "koningsdag-open-on-holidays",
        "day-after-koningsdag",
        "christmas-office",
        "christmas-open-on-holidays",
        "second-christmas-daily",
        "second-christmas-open-on-holidays",
        "easter-monday-office",
        "easter-monday-open-on-holidays",
        "sunday-office",
        "sunday-daily",
        "christmas-always-open-on-holidays",
        "christmas-always-not-on-holidays",
    ],
)
def test_is_open_on_holidays_and_weekends(moment, hours_spec, open_on_holidays, expected):
    """Holidays close a line unless it is open_on_holidays; weekends follow the weekly hours."""
    d, line = single_line(hours_spec, open_on_holidays=open_on_holidays)
    assert hours.is_open(d, line, moment) is expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 4, 26, 22, 30), False),  # 27 April 00:30 local: Koningsdag
        (utc(2026, 4, 26, 21, 30), True),  # 26 April 23:30 local: an ordinary Sunday
        (utc(2026, 12, 24, 23, 30), False),  # 25 December 00:30 local: Christmas
    ],
    ids=["koningsdag-0030", "sunday-2330", "christmas-0030"],
)
def test_holiday_is_judged_on_the_local_date_of_a_utc_instant(moment, expected):
    """A UTC instant is converted to Amsterdam time before the holiday calendar is consulted."""
    d, line = single_line(ALWAYS)
    assert hours.is_open(d, line, moment) is expected


# --------------------------------------------------------------------------- lunch break


@pytest.mark.parametrize(
    ("hh", "mm", "expected"),
    [
        (8, 29, False),
        (8, 30, True),
        (11, 59, True),
        (12, 0, False),
        (12, 30, False),
        (12, 59, False),
        (13, 0, True),
        (16, 59, True),
        (17, 0, False),
    ],
)
def test_lunch_break(hh, mm, expected):
    """ "08:30-12:00,13:00-17:00": open before noon, closed over lunch, open again from 13:00."""
    d, line = single_line(LUNCH)
    assert hours.is_open(d, line, local(2026, 3, 10, hh, mm)) is expected  # a Tuesday


def test_lunch_break_next_opening_is_1300_same_day():
    """During lunch the next opening is 13:00 the same day."""
    d, line = single_line(LUNCH)
    assert hours.next_opening(d, line, local(2026, 3, 10, 12, 30)) == local(2026, 3, 10, 13, 0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (local(2026, 3, 10, 10, 0), local(2026, 3, 10, 12, 0)),
        (local(2026, 3, 10, 14, 0), local(2026, 3, 10, 17, 0)),
        (local(2026, 3, 10, 12, 30), None),
        (local(2026, 3, 14, 10, 0), None),  # Saturday
    ],
    ids=["morning", "afternoon", "lunch", "saturday"],
)
def test_opening_end_of_lunch_break_line(now, expected):
    """opening_end gives the end of the current span, or None when the line is closed."""
    d, line = single_line(LUNCH)
    assert hours.opening_end(d, line, now) == expected


# --------------------------------------------------------------------------- 24/7


@pytest.mark.parametrize(
    "moment",
    [
        local(2026, 3, 8, 3, 0),
        local(2026, 3, 9, 0, 0),
        local(2026, 3, 9, 12, 0),
        local(2026, 3, 14, 23, 59),
        utc(2026, 7, 4, 22, 15),
    ],
    ids=["sunday-0300", "monday-midnight", "monday-noon", "saturday-2359", "july-utc"],
)
def test_always_line_is_open(moment):
    """A "24/7" line is open at any moment of an ordinary week."""
    d, line = single_line(ALWAYS)
    assert line.hours.always
    assert hours.is_open(d, line, moment)


def test_always_line_opening_end_is_next_midnight():
    """The span of a 24/7 line that holds `now` runs to the next local midnight."""
    d, line = single_line(ALWAYS)
    assert hours.opening_end(d, line, local(2026, 3, 9, 15, 0)) == local(2026, 3, 10, 0, 0)


# --------------------------------------------------------------------------- closed_on


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2026, 6, 1), True), (date(2026, 6, 2), False), (date(2026, 6, 3), True)],
)
def test_closed_on_date_closes_the_line_all_day(day, expected):
    """A date listed in closed_on closes the line that day only."""
    d, line = single_line(OFFICE, closed_on=["2026-06-02"])
    assert hours.is_open(d, line, local(day.year, day.month, day.day, 10)) is expected


def test_closed_on_date_wins_over_open_on_holidays():
    """closed_on closes even a line that is open on holidays."""
    d, line = single_line(ALWAYS, closed_on=["2026-12-25"], open_on_holidays=True)
    assert not hours.is_open(d, line, local(2026, 12, 25, 10))
    assert hours.is_open(d, line, local(2026, 12, 26, 10))


def test_next_opening_skips_closed_on_date():
    """From the evening before a closure day, the next opening is the morning after it."""
    d, line = single_line(OFFICE, closed_on=["2026-06-02"])
    assert hours.next_opening(d, line, local(2026, 6, 1, 17, 30)) == local(2026, 6, 3, 8, 30)


# --------------------------------------------------------------------------- next opening


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Thursday 24 December after closing; 25+26 are holidays, then the weekend.
        (local(2026, 12, 24, 17, 30), local(2026, 12, 28, 8, 30)),
        # Same instant given in UTC.
        (utc(2026, 12, 24, 16, 30), local(2026, 12, 28, 8, 30)),
        # Saturday before Koningsdag (Monday 27 April).
        (local(2026, 4, 25, 10, 0), local(2026, 4, 28, 8, 30)),
        # Saturday before Easter Monday.
        (local(2026, 4, 4, 10, 0), local(2026, 4, 7, 8, 30)),
        # Friday after closing: plain weekend.
        (local(2026, 3, 13, 17, 0), local(2026, 3, 16, 8, 30)),
        # Before opening on an ordinary weekday.
        (local(2026, 3, 10, 7, 0), local(2026, 3, 10, 8, 30)),
    ],
    ids=[
        "christmas-weekend",
        "christmas-weekend-utc",
        "koningsdag-weekend",
        "easter-weekend",
        "plain-weekend",
        "same-morning",
    ],
)
def test_next_opening_across_weekends_and_holidays(now, expected):
    """next_opening skips closed days, holidays and weekends to the first 08:30 opening."""
    d, line = single_line(OFFICE)
    got = hours.next_opening(d, line, now)
    assert got == expected
    assert wall(got) == expected.replace(tzinfo=None)


@pytest.mark.parametrize(
    ("hours_spec", "now"),
    [
        (OFFICE, local(2026, 3, 10, 10, 0)),
        (OFFICE, utc(2026, 3, 10, 9, 0)),
        (LUNCH, local(2026, 3, 10, 13, 0)),
        (ALWAYS, utc(2026, 3, 29, 1, 30)),
    ],
    ids=["office-local", "office-utc", "lunch-reopened", "always-utc"],
)
def test_next_opening_when_open_is_now(hours_spec, now):
    """When the line is open, next_opening answers `now` itself."""
    d, line = single_line(hours_spec)
    assert hours.is_open(d, line, now)
    assert hours.next_opening(d, line, now) == now


def test_next_opening_is_none_for_a_line_that_never_opens():
    """A line closed every day has no next opening within the horizon."""
    d, line = single_line({"daily": "closed"})
    assert hours.next_opening(d, line, local(2026, 3, 10, 10, 0)) is None


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 3, 10, 7, 29), False),  # 08:29 CET
        (utc(2026, 3, 10, 7, 30), True),  # 08:30 CET
        (utc(2026, 7, 7, 6, 29), False),  # 08:29 CEST
        (utc(2026, 7, 7, 6, 30), True),  # 08:30 CEST
        (utc(2026, 7, 7, 15, 0), False),  # 17:00 CEST
    ],
)
def test_utc_instants_are_converted_to_amsterdam(moment, expected):
    """is_open converts UTC-aware instants to Amsterdam time, winter and summer."""
    d, line = single_line(OFFICE)
    assert hours.is_open(d, line, moment) is expected


@pytest.mark.parametrize(
    "func",
    [hours.is_open, hours.next_opening, hours.opening_end],
    ids=["is_open", "next_opening", "opening_end"],
)
def test_naive_datetime_raises_value_error(func):
    """A naive datetime is refused: the caller must say which time zone it means."""
    d, line = single_line(OFFICE)
    with pytest.raises(ValueError):
        func(d, line, datetime(2026, 3, 10, 10, 0))


# --------------------------------------------------------------------------- availability


@pytest.mark.parametrize(
    ("moment", "closed_on", "expected"),
    [
        (local(2026, 3, 10, 10), (), menu.Availability(True, None, None)),
        (local(2026, 3, 14, 10), (), menu.Availability(False, "hours", local(2026, 3, 16, 8, 30))),
        (
            local(2026, 4, 27, 10),
            (),
            menu.Availability(False, "holiday", local(2026, 4, 28, 8, 30)),
        ),
        (
            local(2026, 6, 2, 10),
            ("2026-06-02",),
            menu.Availability(False, "closure", local(2026, 6, 3, 8, 30)),
        ),
    ],
    ids=["open", "weekend", "koningsdag", "closure"],
)
def test_availability_reason_and_next_opening(moment, closed_on, expected):
    """availability says why a line is closed (hours, holiday, closure) and when it reopens."""
    d, line = single_line(OFFICE, closed_on=closed_on)
    assert menu.availability(d, line, moment) == expected
