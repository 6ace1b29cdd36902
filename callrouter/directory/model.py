"""The directory's frozen values: lines, organisations, caller organisations, life events,
opening hours, and the problems a directory file can have."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES_NL = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
ALWAYS = ("24/7", "always")


class DirectoryError(Exception):
    """The directory file is invalid; `problems` lists each problem with file, line and key."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path or '(top level)'}: {self.message}"


@dataclass(frozen=True)
class Span:
    """An opening span within one day, in minutes since local midnight (end may be 1440)."""

    start: int
    end: int


@dataclass(frozen=True)
class WeeklyHours:
    """Opening spans per weekday, Monday first."""

    days: tuple[tuple[Span, ...], ...]

    @property
    def always(self) -> bool:
        return all(d == (Span(0, 1440),) for d in self.days)


@dataclass(frozen=True)
class Line:
    id: str
    organisation_id: str
    topic: str
    spoken_topic: str
    digit: str
    keywords: tuple[str, ...]
    numbers: tuple[str, ...]
    urgent_numbers: tuple[str, ...]
    ring_seconds: int
    hours: WeeklyHours
    closed_on: frozenset[date]
    open_on_holidays: bool


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    spoken_name: str
    digit: str
    public_wait_minutes: int
    public_number: str | None
    lines: tuple[Line, ...]
    # The organisation's own professionals, who may call back on a case ("the way back").
    staff_numbers: tuple[str, ...] = ()
    staff_prefixes: tuple[str, ...] = ()

    def line_by_digit(self, digit: str) -> Line | None:
        if not digit:
            return None
        return next((ln for ln in self.lines if ln.digit == digit), None)


@dataclass(frozen=True)
class Caller:
    id: str
    name: str
    spoken_name: str
    code: str
    pin_hash: str | None
    numbers: tuple[str, ...]
    prefixes: tuple[str, ...]
    hours: WeeklyHours | None
    sms_confirmation: bool = False
    caller_id: str | None = None  # shown to professionals on legs for this organisation
    retention_days: int | None = None  # personal fields of its calls kept this long


@dataclass(frozen=True)
class LifeEventStep:
    line_id: str
    reason: str  # short, spoken to the professional


@dataclass(frozen=True)
class LifeEvent:
    """A situation that needs several organisations: a chain of warm transfers."""

    id: str
    name: str
    spoken_name: str
    digit: str  # key in the life-event menu (after 0); "" for speech only
    keywords: tuple[str, ...]
    steps: tuple[LifeEventStep, ...]


def weekday_name_nl(index: int) -> str:
    return DAY_NAMES_NL[index]
