"""The PIN policy as pure decisions (the webhooks around it: test_voice_intake.py)."""

from __future__ import annotations

from callrouter.flows import pin


def test_an_unknown_number_is_asked_for_its_code_unless_locked():
    assert pin.on_arrival(False) == pin.ASK
    assert pin.on_arrival(True) == pin.LOCKED
    assert pin.on_arrival(None) == pin.UNAVAILABLE  # never unguarded


def test_the_third_wrong_attempt_in_a_call_locks():
    assert [pin.after_wrong(tries, tries + 1) for tries in range(3)] == [
        pin.ASK,
        pin.ASK,
        pin.LOCKED,
    ]


def test_wrong_attempts_of_earlier_calls_count():
    """A caller who hangs up after each wrong PIN is locked on the third all the same."""
    assert pin.after_wrong(0, 2) == pin.ASK
    assert pin.after_wrong(0, 3) == pin.LOCKED


def test_without_a_count_the_attempt_is_refused():
    assert pin.after_wrong(0, None) == pin.UNAVAILABLE


def test_only_digits_are_checked():
    assert pin.well_formed("0344", "1234")
    assert not pin.well_formed("", "1234")
    assert not pin.well_formed("0344", "")
    assert not pin.well_formed("03a4", "1234")
    assert not pin.well_formed("0344", "12*4")
