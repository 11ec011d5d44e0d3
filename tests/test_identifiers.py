"""National IDs and Iranian phone numbers as callers and PBXs give them."""

import pytest

from ivr.identifiers import (
    is_valid_callback_number,
    is_valid_national_id,
    national_id_check_digit,
    normalize_phone,
)

# Checked by hand: s = Σ digit_i × (10 − i) over the first nine digits, mod 11.
VALID_IDS = [
    "7731689956",  # 70+63+24+7+36+40+36+27+10 = 313 ≡ 5 → 11 − 5 = 6
    "0499370899",  # 0+36+72+63+18+35+0+24+18 = 266 ≡ 2 → 11 − 2 = 9
    "1234567891",  # 10+18+24+28+30+30+28+24+18 = 210 ≡ 1 → s < 2, check 1
    "0100000010",  # 9+2 = 11 ≡ 0 → s < 2, check 0
]


@pytest.mark.parametrize("national_id", VALID_IDS)
def test_valid_national_ids(national_id):
    assert is_valid_national_id(national_id)


@pytest.mark.parametrize("national_id", VALID_IDS)
def test_any_other_check_digit_is_rejected(national_id):
    for digit in "0123456789":
        if digit != national_id[-1]:
            assert not is_valid_national_id(national_id[:-1] + digit), digit


def test_check_digit_helper_matches_the_hand_worked_ids():
    for national_id in VALID_IDS:
        assert national_id_check_digit(national_id[:9]) == int(national_id[9])


@pytest.mark.parametrize(
    "national_id",
    ["۷۷۳۱۶۸۹۹۵۶", "٧٧٣١٦٨٩٩٥٦", "۰۴۹۹۳۷0899"],
)
def test_national_id_persian_digits(national_id):
    assert is_valid_national_id(national_id)


@pytest.mark.parametrize(
    "national_id",
    [
        "7731689955",
        "773168995",
        "77316899560",
        "",
        "773168995a",
        " 7731689956",
        "773-168995-6",
        "۷۷۳۱۶۸۹۹۵۵",
    ],
)
def test_invalid_national_ids(national_id):
    assert not is_valid_national_id(national_id)


@pytest.mark.parametrize("digit", "0123456789")
def test_repeated_digit_ids_pass_the_checksum_but_are_rejected(digit):
    national_id = digit * 10
    assert national_id_check_digit(national_id[:9]) == int(digit)
    assert not is_valid_national_id(national_id)


def test_check_digit_helper_rejects_wrong_length():
    with pytest.raises(ValueError):
        national_id_check_digit("12345678")


# --- phone numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller_id", "national"),
    [
        ("09121234567", "09121234567"),
        ("+989121234567", "09121234567"),
        ("00989121234567", "09121234567"),
        ("989121234567", "09121234567"),
        ("9121234567", "09121234567"),
        ("۰۹۱۲۱۲۳۴۵۶۷", "09121234567"),
        ("٠٩١٢١٢٣٤٥٦٧", "09121234567"),
        ("+۹۸ ۹۱۲ ۱۲۳ ۴۵۶۷", "09121234567"),
        ("0912-123-4567", "09121234567"),
        ("0912 123 4567", "09121234567"),
        ("02537123456", "02537123456"),
        ("+98 25 3712 3456", "02537123456"),
        ("(021) 1234-5678", "02112345678"),
    ],
)
def test_normalize_phone(caller_id, national):
    assert normalize_phone(caller_id) == national


@pytest.mark.parametrize(
    "caller_id",
    [
        None,
        "",
        "anonymous",
        "Anonymous <sip:anonymous@anonymous.invalid>",
        "1001",
        "0912123456",  # one digit short
        "091212345678",  # one digit long
        "+14155552671",  # a valid number, but not Iranian
        "00000000000",
        "0912123456a",
    ],
)
def test_normalize_phone_rejects(caller_id):
    assert normalize_phone(caller_id) is None


@pytest.mark.parametrize("number", ["09121234567", "02537123456", "۰۹۱۲۱۲۳۴۵۶۷", "٠٢٥٣٧١٢٣٤٥٦"])
def test_valid_callback_numbers(number):
    assert is_valid_callback_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "",
        "+989121234567",  # must be keyed in national form
        "9121234567",
        "0912123456",
        "091212345678",
        "0912 123 4567",
        "00000000000",
        "1001",
        "anonymous",
    ],
)
def test_invalid_callback_numbers(number):
    assert not is_valid_callback_number(number)


def test_normalized_caller_ids_are_callback_numbers():
    for caller_id in ["+989121234567", "00982537123456", "۰۹۱۲۱۲۳۴۵۶۷"]:
        assert is_valid_callback_number(normalize_phone(caller_id))
