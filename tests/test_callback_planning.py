"""When a call-back goes out: the joint opening of line and caller, across weekends, holidays
and daylight-saving switches; and the retry plan."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from callrouter.directory import loads
from callrouter.flows import callback as cflow

AMS = ZoneInfo("Europe/Amsterdam")

TEXT = """\
internal_number: "+31880100100"
callers:
  - id: utrecht
    name: Gemeente Utrecht
    code: "0344"
    numbers: ["+3130286*"]
  - id: late
    name: Gemeente Laat
    code: "0999"
    numbers: ["+3130287*"]
    hours:
      mon-fri: "12:00-20:00"
organisations:
  - id: svb
    name: SVB
    digit: 3
    lines:
      - id: aow
        topic: AOW
        digit: 1
        numbers: ["+31883001001"]
        hours:
          mon-fri: "08:30-17:00"
      - id: night
        topic: nacht
        digit: 2
        numbers: ["+31883001002"]
        open_on_holidays: true
        hours: "24/7"
"""


@pytest.fixture(scope="module")
def d():
    return loads(TEXT, "plan.yaml")


def at(*args):
    return datetime(*args, tzinfo=AMS)


@pytest.mark.parametrize(
    "caller,line,now,expected",
    [
        # Friday evening before Christmas weekend (Fri 25 + Sat 26 Dec 2026 are holidays).
        ("utrecht", "aow", at(2026, 12, 24, 17, 30), at(2026, 12, 28, 8, 30)),
        # Weekend plus Easter Monday 2026-04-06.
        ("utrecht", "aow", at(2026, 4, 3, 18, 0), at(2026, 4, 7, 8, 30)),
        # Saturday before Koningsdag Monday 27 April 2026.
        ("utrecht", "aow", at(2026, 4, 25, 10, 0), at(2026, 4, 28, 8, 30)),
        # Across the spring DST switch (Sunday 29 March 2026): 08:30 local on Monday.
        ("utrecht", "aow", at(2026, 3, 27, 17, 30), at(2026, 3, 30, 8, 30)),
        # Across the autumn switch (Sunday 25 October 2026).
        ("utrecht", "aow", at(2026, 10, 23, 17, 30), at(2026, 10, 26, 8, 30)),
        # The caller's own hours start later than the line's.
        ("late", "aow", at(2026, 11, 25, 9, 0), at(2026, 11, 25, 12, 0)),
        # A 24/7 line still waits for the caller organisation's default office hours (08:00).
        ("utrecht", "night", at(2026, 11, 28, 23, 0), at(2026, 11, 30, 8, 0)),
        # Within hours: now.
        ("utrecht", "aow", at(2026, 11, 25, 10, 15), at(2026, 11, 25, 10, 15)),
    ],
)
def test_plan_is_the_joint_opening(d, caller, line, now, expected):
    """The call-back is planned at the first instant when both line and caller are open."""
    planned = cflow.plan(d, d.line(line), d.caller(caller), now)
    assert planned == expected
    assert planned.utcoffset() == expected.utcoffset()


def test_unanswered_waits_a_little(d):
    """After an unanswered transfer the first call-back is not straight away."""
    now = at(2026, 11, 25, 10, 0)
    assert cflow.first_plan(d, d.line("aow"), d.caller("utrecht"), now, "unanswered") == at(
        2026, 11, 25, 10, 10
    )
    assert cflow.first_plan(d, d.line("aow"), d.caller("utrecht"), now, "closed") == now


@pytest.mark.parametrize(
    "attempt,expected",
    [
        (1, at(2026, 11, 25, 16, 40)),
        (2, at(2026, 11, 25, 16, 50)),
        # 40 minutes later is after closing: the next morning's opening.
        (3, at(2026, 11, 26, 8, 30)),
    ],
)
def test_retry_backs_off_within_opening_hours(d, attempt, expected):
    """Retries wait 10, 20, 40 ... minutes, and only inside opening hours."""
    now = at(2026, 11, 25, 16, 30)
    assert cflow.retry_plan(d, d.line("aow"), d.caller("utrecht"), now, attempt) == expected


def test_order_urgent_first_then_oldest():
    """Urgent requests sort before older normal ones; equal urgency keeps request order."""
    reqs = [
        (False, at(2026, 1, 1, 9, 0)),
        (True, at(2026, 1, 1, 10, 0)),
        (False, at(2026, 1, 1, 8, 0)),
        (True, at(2026, 1, 1, 9, 30)),
    ]
    ordered = sorted(reqs, key=lambda r: cflow.order_key(*r))
    assert ordered == [reqs[3], reqs[1], reqs[2], reqs[0]]
