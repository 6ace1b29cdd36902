"""Transfer decisions: the hunt group, the order of call states, and what a leg's end means."""

from __future__ import annotations

from datetime import datetime

from callrouter.directory import Line

# Twilio call statuses in the order a call passes through them. Terminal states share a rank:
# once a leg is terminal, a late or duplicated earlier status never moves it back.
_RANK = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "answered": 3}
TERMINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


def rank(status: str | None) -> int:
    if status in TERMINAL:
        return 10
    return _RANK.get(status or "", -1)


def advances(current: str | None, new: str | None) -> bool:
    """True when `new` is a later state than `current` (so it may replace it)."""
    return new is not None and rank(new) > rank(current)


def earlier_than(status: str | None) -> tuple[str, ...]:
    """The statuses that `status` may replace (those of a lower rank)."""
    r = rank(status)
    if r < 0:
        return ()
    return tuple(sorted(st for st in (*_RANK, *TERMINAL) if rank(st) < r))


def hunt_group(line: Line, urgent: bool) -> tuple[str, ...]:
    """The numbers rung in order; urgent calls try the urgent numbers first."""
    if urgent and line.urgent_numbers:
        seen = dict.fromkeys(line.urgent_numbers + line.numbers)
        return tuple(seen)
    return line.numbers


def leg_outcome(status: str, answered: bool, accepted: bool) -> str:
    """What the end of a professional's leg means for the transfer attempt."""
    if accepted:
        return "connected"
    if status == "completed":
        # Twilio reports `completed` only for a call that was answered: a professional who
        # picked up and hung up without accepting declined it. (Unanswered is `no-answer`.)
        return "declined"
    if status == "canceled":
        return "cancelled"
    return status  # busy | no-answer | failed


# When every number of the hunt group fails, the transfer's outcome is the most telling of the
# legs' outcomes: someone declining says more than a busy line, which says more than a failure.
_TELLING = ("declined", "no-answer", "busy", "failed", "cancelled")


def transfer_outcome(leg_outcomes: list[str]) -> str:
    for outcome in _TELLING:
        if outcome in leg_outcomes:
            return outcome
    return "failed"


def minutes_saved(public_wait_minutes: int, started: datetime, accepted: datetime) -> float:
    """Minutes saved against the public queue: its typical wait minus the time this one took."""
    waited = (accepted - started).total_seconds() / 60
    return round(max(0.0, public_wait_minutes - waited), 2)
