"""Case references: Damm check digit, spoken groups, no information in the number."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callrouter.flows import reference

bodies = st.text(alphabet="0123456789", min_size=6, max_size=6)


@given(bodies, st.integers(0, 6), st.integers(1, 9))
def test_every_single_digit_error_is_caught(body, position, delta):
    """Changing any one digit of a valid reference makes it invalid."""
    ref = reference.new_reference(body)
    wrong = ref[:position] + str((int(ref[position]) + delta) % 10) + ref[position + 1 :]
    assert reference.is_valid(ref) and not reference.is_valid(wrong)


@given(bodies, st.integers(0, 5))
def test_every_adjacent_transposition_is_caught(body, position):
    """Swapping two different neighbouring digits (09/90 included) makes it invalid."""
    ref = reference.new_reference(body)
    a, b = ref[position], ref[position + 1]
    swapped = ref[:position] + b + a + ref[position + 2 :]
    assert reference.is_valid(swapped) == (a == b)


def test_the_check_digit_catches_what_luhn_misses():
    """09 and 90 in the same place give different check digits."""
    assert reference.check_digit("120934") != reference.check_digit("129034")


def test_known_damm_vector():
    """572 has check digit 4 (the published example)."""
    assert reference.check_digit("572") == "4" and reference.check_digit("5724") == "0"


@pytest.mark.parametrize(
    "ref,ok",
    [
        ("4829137", None),
        ("482913", False),
        ("48291370", False),
        ("48a9137", False),
        ("", False),
        ("٤٨٢٩١٣٧", False),
    ],
)
def test_validation_of_shape(ref, ok):
    """Only seven ASCII digits can be valid."""
    expected = reference.check_digit(ref[:6]) == ref[6] if ok is None else ok
    assert reference.is_valid(ref) == expected


def test_new_references_are_random_and_valid():
    """Fresh references are valid, seven digits, and not a sequence."""
    refs = [reference.new_reference() for _ in range(200)]
    assert all(reference.is_valid(r) and len(r) == 7 for r in refs)
    assert len(set(refs)) > 190


def test_spoken_in_groups():
    """Spoken as three, three and one digit, in Dutch."""
    assert reference.spoken("4829137") == "vier acht twee, negen één drie, zeven"
    assert reference.grouped("4829137") == "482 913 7"
