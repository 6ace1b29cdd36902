"""Case references: seven digits that can be spoken and keyed, the last a Damm check digit.

Damm's check digit catches every single-digit error and every swap of two adjacent digits
(Luhn misses 09/90). The six other digits are random, so a reference reveals no date or
counter. Pure: the caller passes the randomness in.
"""

from __future__ import annotations

import secrets

LENGTH = 7

# Damm's weakly totally anti-symmetric quasigroup of order 10 (H. Michael Damm, 2004).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

DIGIT_WORDS = ("nul", "één", "twee", "drie", "vier", "vijf", "zes", "zeven", "acht", "negen")


def check_digit(digits: str) -> str:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return str(interim)


def is_valid(reference: str) -> bool:
    """True for seven digits whose last is the Damm check digit of the other six."""
    return (
        len(reference) == LENGTH
        and reference.isascii()
        and reference.isdigit()
        and check_digit(reference) == "0"
    )


def new_reference(token: str | None = None) -> str:
    """A fresh reference from six random digits (`token`: six digits, for tests)."""
    body = token if token is not None else f"{secrets.randbelow(10 ** (LENGTH - 1)):06d}"
    if len(body) != LENGTH - 1 or not body.isdigit():
        raise ValueError("a reference body is six digits")
    return body + check_digit(body)


def spoken(reference: str) -> str:
    """'4829137' -> 'vier acht twee, negen één drie, zeven' (groups of three, then one)."""
    words = [DIGIT_WORDS[int(ch)] for ch in reference]
    return ", ".join(" ".join(words[i : i + 3]) for i in range(0, len(words), 3))


def grouped(reference: str) -> str:
    """'4829137' -> '482 913 7', for screens."""
    return " ".join(reference[i : i + 3] for i in range(0, len(reference), 3))
