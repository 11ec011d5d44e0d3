"""Typed text → the fragments the IVR would play for it: a number, a digit string or a date.

``ivr speak`` and the ``/prompts`` listening page both take what a person types (Persian or
ASCII digits, a Jalali or ISO date) and must refuse bad input with one clear sentence; this is
the one place that parses it. The rules themselves stay in the pure ``ivr.speech``.
"""

from __future__ import annotations

from enum import StrEnum

from ivr.speech import (
    MAX_NUMBER,
    date_fragments,
    digits_fragments,
    normalize_digits,
    number_fragments,
    phone_groups,
    tracking_groups,
)


class Kind(StrEnum):
    """What the typed text is spoken as."""

    NUMBER = "number"  # a cardinal: 1587 = هزار و پانصد و هشتاد و هفت
    DIGITS = "digits"  # digit by digit in written groups: a phone or tracking number
    DATE = "date"  # a Jalali or ISO date, spoken as its Jalali date


def parse_number(text: str) -> int:
    """A whole number typed in Persian or ASCII digits, within what the IVR can speak."""
    plain = normalize_digits(text).strip()
    if not (plain.isascii() and plain.isdigit()):
        raise ValueError(f"not a whole number: {text!r} (digits only, e.g. 1587 or ۱۵۸۷)")
    if len(plain.lstrip("0")) > len(str(MAX_NUMBER)) or int(plain) > MAX_NUMBER:
        raise ValueError(f"cannot speak {plain}: the largest number spoken is {MAX_NUMBER}")
    return int(plain)


def digit_groups(digits: str) -> tuple[int, ...]:
    """How the IVR groups ``digits``: a phone number (leading 0) as written, else a tracking
    number (3-3-4) or threes."""
    return phone_groups(digits) if digits.startswith("0") else tracking_groups(digits)


def parse_digits(text: str) -> str:
    """A digit string typed in Persian or ASCII digits (spaces and dashes between groups ok)."""
    plain = normalize_digits(text).strip().replace(" ", "").replace("-", "")
    if not plain or not (plain.isascii() and plain.isdigit()):
        raise ValueError(f"not a string of digits: {text!r} (e.g. 09121234567)")
    return plain


def fragments_for(kind: Kind | str, text: str) -> list[str]:
    """The fragment ids the IVR plays for ``text`` read as ``kind``; ValueError if it can't be."""
    kind = Kind(kind)
    if kind is Kind.NUMBER:
        return number_fragments(parse_number(text))
    if kind is Kind.DIGITS:
        digits = parse_digits(text)
        return digits_fragments(digits, digit_groups(digits))
    from ivr.calendar.store import parse_day  # the calendar's own parser: Jalali or ISO

    try:
        day = parse_day(text)
    except OverflowError:
        raise ValueError(f"not a date: {text!r} (a number in it is far too large)") from None
    except ValueError as error:
        message = str(error)
        if message.startswith("not a date"):
            raise ValueError(message) from None
        raise ValueError(f"not a date: {text!r} ({message})") from None
    return date_fragments(day)
