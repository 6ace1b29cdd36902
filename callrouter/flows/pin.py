"""The PIN policy for phones the directory does not know: pure decisions, no store.

A front-desk worker calling from a number the directory does not list identifies with the
municipality's code and a PIN. Wrong attempts are counted twice: in this call (the URL carries
the count) and for the caller across calls (by pseudonym, kept by the handler for
`LOCK_SECONDS`). The `TRIES`-th wrong attempt by either count locks PIN entry for the caller
for `LOCK_SECONDS`. When the count cannot be kept (the lock store is down) PIN entry is
refused: it never goes unguarded.
"""

from __future__ import annotations

TRIES = 3
LOCK_SECONDS = 15 * 60

# What the caller hears next.
ASK = "ask"  # the code (again)
LOCKED = "locked"  # PIN entry is locked: the call ends
UNAVAILABLE = "unavailable"  # the lock store is down: the call ends


def on_arrival(locked: bool | None) -> str:
    """An unknown number calls: `locked` is whether its PIN entry is locked (None: unknown)."""
    if locked is None:
        return UNAVAILABLE
    return LOCKED if locked else ASK


def well_formed(code: str, pin: str) -> bool:
    """Only digits are checked against the directory; anything else counts as wrong."""
    return bool(code) and code.isdigit() and bool(pin) and pin.isdigit()


def after_wrong(tries_in_call: int, failures_of_caller: int | None) -> str:
    """A wrong code or PIN: `tries_in_call` wrong before this one, `failures_of_caller` the
    caller's count including this one (None: the count could not be kept)."""
    if failures_of_caller is None:
        return UNAVAILABLE
    if tries_in_call + 1 >= TRIES or failures_of_caller >= TRIES:
        return LOCKED
    return ASK
