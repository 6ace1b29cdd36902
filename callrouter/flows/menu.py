"""The menu conversation: from what the caller pressed or said to the next step."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callrouter.directory import Directory, Line, Organisation
from callrouter.flows import hours
from callrouter.flows.routing import Choice, resolve_digits, resolve_speech

# The organisation menu is asked at most this many times before the call ends kindly; the last
# time reads the full list of organisations.
MENU_TRIES = 3


@dataclass(frozen=True)
class AskAgain:
    tries: int  # how many unclear answers so far
    read_full_list: bool


@dataclass(frozen=True)
class AskTopic:
    organisation: Organisation


@dataclass(frozen=True)
class LineChosen:
    organisation: Organisation
    line: Line
    selected_by: str  # digits | speech


@dataclass(frozen=True)
class GiveUp:
    pass


def choose(directory: Directory, digits: str | None, speech: str | None, tries: int,
           organisation: Organisation | None = None):
    """Decide the next step of the organisation menu (or of the topic menu of `organisation`)."""
    choice: Choice | None = None
    how = "digits"
    if digits:
        choice = resolve_digits(directory, digits, organisation)
    elif speech:
        choice = resolve_speech(directory, speech, organisation)
        how = "speech"
    if choice is None:
        if tries + 1 >= MENU_TRIES:
            return GiveUp()
        return AskAgain(tries + 1, read_full_list=tries + 1 == MENU_TRIES - 1)
    if choice.line is None:
        return AskTopic(choice.organisation)
    return LineChosen(choice.organisation, choice.line, how)


@dataclass(frozen=True)
class Options:
    urgent: bool
    consent: bool


def parse_options(digits: str | None) -> Options:
    """The keys pressed before the transfer: 1 = consent given, 9 = urgent; nothing = neither."""
    keys = set(digits or "")
    return Options(urgent="9" in keys, consent="1" in keys)


@dataclass(frozen=True)
class Availability:
    open: bool
    reason: str | None  # hours | holiday | closure
    opens_at: datetime | None


def availability(directory: Directory, line: Line, now: datetime) -> Availability:
    if hours.is_open(directory, line, now):
        return Availability(True, None, None)
    local_day = now.astimezone(directory.tz).date()
    if local_day in line.closed_on:
        reason = "closure"
    elif not line.open_on_holidays and hours.is_holiday(directory.holidays, local_day):
        reason = "holiday"
    else:
        reason = "hours"
    return Availability(False, reason, hours.next_opening(directory, line, now))
