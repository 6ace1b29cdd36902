"""Callback decisions: when to call back, when to retry, in which order, and what is said.

The call-back goes out at the first instant at which both the professional line is open and
the worker's organisation is reachable (its office hours in the directory, or a default of
weekdays 08:00-17:00; public holidays count for both).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from callrouter.directory import Caller, Directory, Line, Span, WeeklyHours
from callrouter.flows import hours

DEFAULT_CALLER_HOURS = WeeklyHours(
    tuple((Span(8 * 60, 17 * 60),) if d < 5 else () for d in range(7))
)
# Retries after a busy line or no answer: 10, 20, 40 ... minutes later, within opening hours.
RETRY_BASE = timedelta(minutes=10)
RETRY_CAP = timedelta(hours=4)
# After an unanswered transfer, do not ring the same line straight away.
UNANSWERED_DELAY = timedelta(minutes=10)


def caller_hours(caller: Caller | None) -> WeeklyHours:
    return caller.hours if caller is not None and caller.hours is not None else DEFAULT_CALLER_HOURS


def reachable(directory: Directory, line: Line, caller: Caller | None, at: datetime) -> bool:
    """Both ends can be called at `at`."""
    return hours.is_open(directory, line, at) and hours.hours_open(
        directory, caller_hours(caller), at
    )


def plan(
    directory: Directory, line: Line, caller: Caller | None, after: datetime
) -> datetime | None:
    """The first instant at or after `after` when the line is open and the caller reachable."""
    t = after
    for _ in range(400):  # each step moves to a later opening of one side; bounded
        line_open = hours.next_opening(directory, line, t)
        if line_open is None:
            return None
        caller_open = hours.next_opening_hours(directory, caller_hours(caller), line_open)
        if caller_open is None:
            return None
        if caller_open == line_open or reachable(directory, line, caller, caller_open):
            return caller_open.astimezone(directory.tz)
        t = caller_open
    return None


def first_plan(
    directory: Directory, line: Line, caller: Caller | None, now: datetime, reason: str
) -> datetime | None:
    """When a new request is first tried: at the joint opening; after an unanswered transfer,
    not before a short pause."""
    start = now + UNANSWERED_DELAY if reason == "unanswered" else now
    return plan(directory, line, caller, start)


def retry_plan(
    directory: Directory, line: Line, caller: Caller | None, now: datetime, attempt: int
) -> datetime | None:
    """When to try again after attempt number `attempt` (1-based) failed."""
    delay = min(RETRY_BASE * (2 ** max(0, attempt - 1)), RETRY_CAP)
    return plan(directory, line, caller, now + delay)


def order_key(urgent: bool, requested_at: datetime) -> tuple:
    """Urgent requests first, then the oldest."""
    return (0 if urgent else 1, requested_at)


def whisper(
    caller_name: str,
    org_name: str,
    topic: str,
    requested_local: datetime,
    urgent: bool,
    reference: str | None = None,
) -> str:
    from callrouter.flows.reference import spoken
    from callrouter.flows.speech import clock

    return (
        f"Terugbelverzoek van de professionallijn. {caller_name} vraagt om terugbellen "
        f"over {topic} voor {org_name}, aangevraagd om {clock(requested_local)}. "
        + (f"Zaak {spoken(reference)}. " if reference else "")
        + ("Dit verzoek heeft spoed. " if urgent else "Geen spoed. ")
        + "Toets 1 om de medewerker nu te bellen, of 2 om dit opnieuw te horen."
    )
