"""Ticket tracking numbers (کد رهگیری): digits only, at most 10, the last a Verhoeff check digit.

Callers read tracking numbers back over the phone and key them in; the Verhoeff check digit
catches every single wrong digit and every swap of two neighbouring digits, the two mistakes
people make most, so a typo is refused instead of opening someone else's ticket.
"""

from __future__ import annotations

import hmac
import re

from ivr.speech import normalize_digits

MAX_LENGTH = 10
"""Longest tracking number, check digit included: short enough to read out and key in."""

FIRST_BODY = 100_000_000
"""Body of sequence number 0: bodies have nine digits, so every tracking number has ten."""

LAST_BODY = 999_999_999

# Verhoeff's tables: multiplication in the dihedral group D5 ...
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
# ... the permutation applied to a digit by its position (row i is the first row to the power i) ...
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
# ... and the inverse of each element of D5.
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)

_DIGITS = re.compile(r"[0-9]+")


def _digits(value: str) -> str | None:
    """ASCII digits of ``value`` (Persian digits accepted), or None if anything else is in it."""
    text = normalize_digits(value)
    return text if _DIGITS.fullmatch(text) else None


def _checksum(digits: str, offset: int) -> int:
    """Verhoeff's running product over ``digits``, rightmost first, positions shifted by offset."""
    c = 0
    for i, d in enumerate(reversed(digits)):
        c = _D[c][_P[(i + offset) % 8][int(d)]]
    return c


def verhoeff_check_digit(body: str) -> str:
    """The Verhoeff check digit to append to ``body`` (a non-empty string of digits)."""
    digits = _digits(body)
    if digits is None:
        raise ValueError(f"a tracking body must be digits, got {body!r}")
    return str(_INV[_checksum(digits, 1)])


def is_valid_tracking(value: str) -> bool:
    """Whether ``value`` is a well-formed tracking number: 2–10 digits ending in the check digit.

    A lone digit is refused: it would be a check digit with nothing to check.
    """
    digits = _digits(value)
    if digits is None or not 2 <= len(digits) <= MAX_LENGTH:
        return False
    return _checksum(digits, 0) == 0


def tracking_from_sequence(n: int) -> str:
    """The tracking number of the ``n``-th ticket (n ≥ 0): nine-digit body plus check digit.

    The body starts at 100000000 so every number has ten digits and no leading zero to lose.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"tracking_from_sequence needs an int, got {n!r}")
    body = FIRST_BODY + n
    if not FIRST_BODY <= body <= LAST_BODY:
        raise ValueError(
            f"sequence {n} out of range 0..{LAST_BODY - FIRST_BODY}: the body would not be 9 digits"
        )
    text = str(body)
    return text + verhoeff_check_digit(text)


# -- numbers that are not consecutive --------------------------------------------------------

SPACE = LAST_BODY - FIRST_BODY + 1
"""How many nine-digit bodies there are: 900,000,000."""
_MAX_HALF_BITS = 15
"""The Feistel network works on at most 30 bits (two halves of 15); 2**30 covers SPACE."""
_ROUNDS = 8


def _round(key: bytes, step: int, half: int, bits: int) -> int:
    digest = hmac.digest(key, step.to_bytes(1, "big") + half.to_bytes(2, "big"), "sha256")
    return int.from_bytes(digest[:2], "big") & ((1 << bits) - 1)


def _feistel(key: bytes, x: int, bits: int) -> int:
    """A keyed permutation of [0, 4**bits): eight rounds of a balanced Feistel network."""
    left, right = x >> bits, x & ((1 << bits) - 1)
    for step in range(_ROUNDS):
        left, right = right, left ^ _round(key, step, right, bits)
    return (left << bits) | right


def _feistel_back(key: bytes, y: int, bits: int) -> int:
    """The inverse of :func:`_feistel`."""
    left, right = y >> bits, y & ((1 << bits) - 1)
    for step in reversed(range(_ROUNDS)):
        left, right = right ^ _round(key, step, left, bits), left
    return (left << bits) | right


def _half_bits(size: int) -> int:
    """Halves just wide enough for ``size``: the walk below then takes about 1–4 steps."""
    return max(1, ((size - 1).bit_length() + 1) // 2)


def permute(n: int, key: bytes, size: int) -> int:
    """A keyed permutation of [0, size) (size ≤ 2**30): the Feistel network, walked again while
    its value falls outside the range (cycle walking keeps it a bijection)."""
    if not 0 <= n < size <= 1 << (2 * _MAX_HALF_BITS):
        raise ValueError(f"{n} is outside 0..{size - 1}")
    bits = _half_bits(size)
    x = _feistel(key, n, bits)
    while x >= size:
        x = _feistel(key, x, bits)
    return x


def unpermute(x: int, key: bytes, size: int) -> int:
    """The inverse of :func:`permute`."""
    if not 0 <= x < size <= 1 << (2 * _MAX_HALF_BITS):
        raise ValueError(f"{x} is outside 0..{size - 1}")
    bits = _half_bits(size)
    n = _feistel_back(key, x, bits)
    while n >= size:
        n = _feistel_back(key, n, bits)
    return n


def keyed_tracking(n: int, key: bytes, legacy_end: int) -> str:
    """The tracking number of sequence ``n`` under ``key``: neighbours in the sequence land far
    apart, so a real number cannot be guessed from another.

    Bodies below ``FIRST_BODY + legacy_end`` belong to tickets numbered before numbers were
    keyed (consecutively, by :func:`tracking_from_sequence`); keyed numbers never land there.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"keyed_tracking needs an int, got {n!r}")
    body = FIRST_BODY + legacy_end + permute(n, key, SPACE - legacy_end)
    text = str(body)
    return text + verhoeff_check_digit(text)


def keyed_sequence(tracking: str, key: bytes, legacy_end: int) -> int | None:
    """The sequence number a keyed tracking number came from (None: not a keyed number), so a
    number can be traced to the block, and the node, that issued it."""
    digits = _digits(tracking)
    if digits is None or len(digits) != MAX_LENGTH or not is_valid_tracking(digits):
        return None
    offset = int(digits[:-1]) - FIRST_BODY - legacy_end
    size = SPACE - legacy_end
    if not 0 <= offset < size:
        return None
    return unpermute(offset, key, size)
