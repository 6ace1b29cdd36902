"""The calendar window the dashboard and the API accept in a query.

A date outside it (`9999-12-31`, `0001-01-01`, a forged cursor at the end of time) cannot be
turned into a UTC instant or a next day without overflowing: it is refused with 400, a Dutch
page on the dashboard and a JSON error in the API, instead of failing with 500.
"""

from __future__ import annotations

from datetime import date, datetime

from werkzeug.exceptions import BadRequest

EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)


class DateOutOfRange(BadRequest):
    """A date or moment outside the window (`field`: the parameter that holds it)."""

    def __init__(self, field: str):
        super().__init__(
            f"{field}: choose a date from {EARLIEST.isoformat()} to {LATEST.isoformat()}"
        )
        self.field = field

    @property
    def dutch(self) -> str:
        return (
            f"Kies een datum tussen {EARLIEST:%d-%m-%Y} en {LATEST:%d-%m-%Y} "
            f"(gegeven bij '{self.field}')."
        )


def in_window(day: date, field: str) -> date:
    """`day` itself, or DateOutOfRange naming `field`."""
    if not EARLIEST <= day <= LATEST:
        raise DateOutOfRange(field)
    return day


def moment_in_window(moment: datetime, field: str) -> datetime:
    """A moment whose own calendar day lies in the window (before any conversion)."""
    in_window(moment.date(), field)
    return moment
