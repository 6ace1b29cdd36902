"""The menu conversation: from what the caller pressed or said to the next step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from callrouter.directory import Directory, LifeEvent, Line, Organisation
from callrouter.flows import hours
from callrouter.flows.routing import Choice, resolve_digits, resolve_event, resolve_speech

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
    term: str | None = field(default=None, compare=False)  # the directory term speech matched


@dataclass(frozen=True)
class GiveUp:
    pass


@dataclass(frozen=True)
class AskLifeEvent:
    """Key 0 alone: read the life-event menu."""


@dataclass(frozen=True)
class LifeEventChosen:
    event: LifeEvent
    selected_by: str  # digits | speech


def choose(
    directory: Directory,
    digits: str | None,
    speech: str | None,
    tries: int,
    organisation: Organisation | None = None,
):
    """Decide the next step of the organisation menu (or of the topic menu of `organisation`).

    In the organisation menu, key 0 is the life-event menu: `0` alone asks for the event,
    `0` and the event's key choose it; saying an event's name or keyword chooses it too."""
    choice: Choice | None = None
    how = "digits"
    if digits and organisation is None and digits.startswith("0") and directory.life_events:
        if len(digits) == 1:
            return AskLifeEvent()
        event = directory.life_event_by_digit(digits[1]) if len(digits) == 2 else None
        if event is not None:
            return LifeEventChosen(event, "digits")
    elif digits:
        choice = resolve_digits(directory, digits, organisation)
    elif speech:
        choice = resolve_speech(directory, speech, organisation)
        how = "speech"
        if choice is None and organisation is None:
            event = resolve_event(directory, speech)
            if event is not None:
                return LifeEventChosen(event, "speech")
    if choice is None:
        if tries + 1 >= MENU_TRIES:
            return GiveUp()
        return AskAgain(tries + 1, read_full_list=tries + 1 == MENU_TRIES - 1)
    if choice.line is None:
        return AskTopic(choice.organisation)
    return LineChosen(choice.organisation, choice.line, how, choice.term)


def choose_event(directory: Directory, digits: str | None, speech: str | None, tries: int):
    """The life-event menu: one key, or the event said."""
    event = None
    how = "digits"
    if digits:
        event = directory.life_event_by_digit(digits[:1]) if len(digits) == 1 else None
    elif speech:
        event, how = resolve_event(directory, speech), "speech"
    if event is not None:
        return LifeEventChosen(event, how)
    if tries + 1 >= MENU_TRIES:
        return GiveUp()
    return AskAgain(tries + 1, read_full_list=True)


# What the citizen allows the receiving organisation, least first: the safe default is "none"
# (nothing beyond the topic), 1 lets it discuss the case, 2 also contact the citizen directly.
CONSENT_LEVELS = ("none", "case", "contact")


@dataclass(frozen=True)
class Options:
    urgent: bool
    consent_level: str = "none"
    skip: bool = False  # 7: skip this step of a chain
    stop: bool = False  # 0: stop the chain
    repeat: bool = False  # *: hear the case reference again

    @property
    def consent(self) -> bool:
        return self.consent_level != "none"


def parse_options(digits: str | None) -> Options:
    """The keys pressed before a transfer, one key each and none needed: 1 = the case may be
    discussed, 2 = the organisation may also contact the citizen, 9 = urgent; in a chain 7
    skips the step and 0 stops the chain; * repeats the case reference."""
    keys = set(digits or "")
    level = "contact" if "2" in keys else "case" if "1" in keys else "none"
    return Options(
        urgent="9" in keys,
        consent_level=level,
        skip="7" in keys,
        stop="0" in keys,
        repeat="*" in keys,
    )


def capped_consent(level: str, withdrawn: bool) -> str:
    """A consent withdrawn for this organisation on this case overrules what is keyed later."""
    return "none" if withdrawn else level


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
