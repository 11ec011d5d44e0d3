"""Tracking numbers: the Verhoeff check digit catches every single typo and neighbour swap."""

import random

import pytest

from ivr.speech import normalize_digits
from ivr.tickets.tracking import is_valid_tracking, tracking_from_sequence, verhoeff_check_digit

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _sample_numbers():
    rng = random.Random(124)
    sequences = [*range(0, 100), 899_999_999, *(rng.randrange(900_000_000) for _ in range(200))]
    numbers = [tracking_from_sequence(n) for n in sequences]
    # Shorter numbers (2–9 digits) are valid too, e.g. ones issued by hand.
    for _ in range(100):
        body = str(rng.randrange(10 ** rng.randrange(1, 9)))
        numbers.append(body + verhoeff_check_digit(body))
    return numbers


NUMBERS = _sample_numbers()


def test_published_check_digits():
    # Verhoeff examples from Wikipedia / Rosetta Code: 236 → 2363, 12345 → 123451.
    assert verhoeff_check_digit("236") == "3"
    assert verhoeff_check_digit("12345") == "1"
    assert verhoeff_check_digit("123456789012") == "0"
    assert is_valid_tracking("2363")
    assert is_valid_tracking("123451")


def test_generated_numbers_are_valid():
    assert all(is_valid_tracking(number) for number in NUMBERS)


def test_every_single_digit_substitution_is_rejected():
    checked = 0
    for number in NUMBERS:
        for position, original in enumerate(number):
            for digit in "0123456789":
                if digit == original:
                    continue
                typo = number[:position] + digit + number[position + 1 :]
                assert not is_valid_tracking(typo), (number, typo)
                checked += 1
    assert checked > 9 * len(NUMBERS) * 2


def test_every_adjacent_transposition_is_rejected():
    checked = 0
    for number in NUMBERS:
        for i in range(len(number) - 1):
            a, b = number[i], number[i + 1]
            if a == b:
                continue
            swapped = number[:i] + b + a + number[i + 2 :]
            assert not is_valid_tracking(swapped), (number, swapped)
            checked += 1
    assert checked > len(NUMBERS)


def test_sequence_numbers_are_ten_digits_and_distinct():
    numbers = [tracking_from_sequence(n) for n in range(1000)]
    assert all(len(number) == 10 and number.isdigit() for number in numbers)
    assert numbers[0].startswith("100000000")
    assert numbers[123][:9] == "100000123"
    assert len(set(numbers)) == len(numbers)
    assert tracking_from_sequence(899_999_999)[:9] == "999999999"


@pytest.mark.parametrize("n", [-1, 900_000_000, 10**12])
def test_sequence_out_of_range(n):
    with pytest.raises(ValueError):
        tracking_from_sequence(n)


def test_persian_and_arabic_indic_digits_accepted():
    for number in NUMBERS[:50]:
        assert is_valid_tracking(number.translate(PERSIAN))
        assert is_valid_tracking(number.translate(ARABIC_INDIC))
        body = number[:-1].translate(PERSIAN)
        assert verhoeff_check_digit(body) == number[-1]
        assert normalize_digits(number.translate(PERSIAN)) == number


def test_rejects_malformed_values():
    number = tracking_from_sequence(42)
    too_long = number + verhoeff_check_digit(number)  # 11 digits with a correct check digit
    assert len(too_long) == 11
    assert not is_valid_tracking(too_long)
    for value in ["", "0", " " + number, number + " ", number[:5] + "-" + number[5:], "abc", "1²"]:
        assert not is_valid_tracking(value), value


@pytest.mark.parametrize("body", ["", "12a", "1 2"])
def test_check_digit_needs_digits(body):
    with pytest.raises(ValueError):
        verhoeff_check_digit(body)
