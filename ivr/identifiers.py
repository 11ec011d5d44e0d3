"""Iranian identifiers callers give us: national IDs (کد ملی) and phone numbers.

Checked before a ticket is filed so a mistyped ID or callback number is caught while the caller
is still on the line.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

from ivr.speech import normalize_digits

_TEN_DIGITS = re.compile(r"[0-9]{10}")
_CALLBACK = re.compile(r"0[0-9]{10}")
_SEPARATORS = re.compile(r"[\s\-().]")
_CALLBACK_TYPES = {
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
}


def national_id_check_digit(first_nine: str) -> int:
    """The check digit of a national ID from its first nine digits.

    s = Σ digit_i × (10 − i) mod 11; the check digit is s when s < 2, else 11 − s.
    """
    digits = normalize_digits(first_nine)
    if not re.fullmatch(r"[0-9]{9}", digits):
        raise ValueError(f"need nine digits, got {first_nine!r}")
    s = sum(int(d) * (10 - i) for i, d in enumerate(digits)) % 11
    return s if s < 2 else 11 - s


def is_valid_national_id(value: str) -> bool:
    """Whether ``value`` is a well-formed national ID: ten digits with the right check digit.

    IDs made of one repeated digit pass the checksum but are never issued, so they are refused.
    Persian and Arabic-Indic digits are accepted; any other character is not.
    """
    digits = normalize_digits(value)
    if not _TEN_DIGITS.fullmatch(digits) or len(set(digits)) == 1:
        return False
    return national_id_check_digit(digits[:9]) == int(digits[9])


def _parse_iranian(value: str) -> phonenumbers.PhoneNumber | None:
    """Parse the forms PBXs and people write, or None when it is not an Iranian-looking number.

    +98…, 0098…, 98… (only as 12 digits: shorter it could be a national number), 0…, and the
    10-digit national significant number some trunks send without the leading 0.
    """
    text = _SEPARATORS.sub("", normalize_digits(value))
    plus = text.startswith("+")
    digits = text[1:] if plus else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    if plus:
        international = digits
    elif digits.startswith("00"):
        international = digits[2:]
    elif digits.startswith("98") and len(digits) == 12:
        international = digits
    elif digits.startswith("0"):
        international = "98" + digits[1:]
    elif len(digits) == 10:
        international = "98" + digits
    else:
        return None
    try:
        return phonenumbers.parse("+" + international)
    except phonenumbers.NumberParseException:
        return None


def normalize_phone(value: str | None) -> str | None:
    """An Iranian phone number in national 11-digit form (09121234567, 02537123456), or None.

    Caller IDs arrive as 09121234567, +989121234567, 0098…, with Persian digits or separators,
    or as 'anonymous', '' or a PBX extension like '1001'; only valid Iranian numbers (per
    phonenumbers) come back, so a ticket never stores a number we could not call.
    """
    if not value:
        return None
    number = _parse_iranian(value)
    if number is None or phonenumbers.region_code_for_number(number) != "IR":
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    national = "0" + str(number.national_number)
    return national if len(national) == 11 else None


def is_valid_callback_number(value: str) -> bool:
    """Whether ``value`` is a number we can call back: 11 digits, 0-prefixed, mobile or landline.

    Stricter than :func:`normalize_phone`: the caller typed it on the keypad, so it must
    already be in national form (Persian digits allowed).
    """
    digits = normalize_digits(value)
    if not _CALLBACK.fullmatch(digits):
        return False
    number = _parse_iranian(digits)
    return (
        number is not None
        and phonenumbers.is_valid_number(number)
        and phonenumbers.number_type(number) in _CALLBACK_TYPES
    )
