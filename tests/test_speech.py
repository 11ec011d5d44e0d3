"""Persian speech fragments: numbers, digits and Jalali dates against hand-written Persian."""

import datetime
import random
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from num2words import num2words

from ivr.clock import tehran_date
from ivr.speech import (
    date_fragments,
    digits_fragments,
    fragment_words,
    load_fragment_texts,
    normalize_digits,
    number_fragments,
    ordinal_day_fragments,
    phone_groups,
    tracking_groups,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]

UTC = datetime.UTC


def _flatten(table, prefix=""):
    """The test's own flattening of prompts/fragments.toml, independent of load_fragment_texts:
    a ``{ text, say }`` table is one fragment whose text is what people read."""
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict) and "text" in value:
            flat[f"{prefix}{key}"] = value["text"]
        elif isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@pytest.fixture(scope="module")
def raw_fragments():
    with open(PROJECT_ROOT / "prompts" / "fragments.toml", "rb") as handle:
        return tomllib.load(handle)


@pytest.fixture(scope="module")
def texts(raw_fragments):
    return _flatten(raw_fragments)


def words(fragments, texts):
    return fragment_words(fragments, texts)


# --- the catalogue -------------------------------------------------------------------------


TENS_HUNDREDS_SCALES = (
    {f"num.{n}" for n in range(20, 100, 10)}
    | {f"num.{n}" for n in range(100, 1000, 100)}
    | {"num.1000", "num.million", "num.billion"}
)
"""The words a «و» can follow inside a number: each has an "-o" form."""


def test_catalogue_has_exactly_the_fragments_the_rules_use(texts):
    expected = (
        {f"num.{n}" for n in range(20)}
        | TENS_HUNDREDS_SCALES
        | {f"{word}-o" for word in TENS_HUNDREDS_SCALES}
        | {"pause"}
        | {f"ord.{n}" for n in range(1, 21)}
        | {"ord.30"}
        | {f"month.{n}" for n in range(1, 13)}
        | {f"weekday.{n}" for n in range(7)}
        | {f"hour.{n}" for n in range(24)}
        | {f"hour.{n}-o" for n in range(24)}
        | {"hour.minutes"}
    )
    assert set(texts) == expected


def test_each_o_form_shows_the_words_and_tells_the_voice_to_say_o(raw_fragments, texts):
    for word in TENS_HUNDREDS_SCALES:
        key = word.removeprefix("num.")
        entry = raw_fragments["num"][f"{key}-o"]
        # What people read: the word, a space, «و». What the voice is given: the word with a
        # damma on its last letter, which espeak-ng says "-o" (a lone «و» it says "va").
        assert entry["text"] == f"{texts[word]} و", word
        assert entry["say"] == f"{texts[word]}\u064f", word


def test_pause_is_a_top_level_silence_and_everything_else_has_words(texts):
    assert texts["pause"] == ""
    assert all(text.strip() for fragment_id, text in texts.items() if fragment_id != "pause")


def test_load_fragment_texts_reads_the_catalogue(texts):
    assert load_fragment_texts() == texts


def test_load_fragment_texts_flattens_any_file(tmp_path):
    path = tmp_path / "f.toml"
    path.write_text('pause = ""\n[num]\n0 = "صفر"\n[a.b]\nc = "x"\n', encoding="utf-8")
    assert load_fragment_texts(path) == {"pause": "", "num.0": "صفر", "a.b.c": "x"}


# --- digits ------------------------------------------------------------------------------


def test_normalize_digits_persian_and_arabic_indic():
    assert normalize_digits("۰۱۲۳۴۵۶۷۸۹") == "0123456789"
    assert normalize_digits("٠١٢٣٤٥٦٧٨٩") == "0123456789"


def test_normalize_digits_leaves_other_characters_alone():
    assert normalize_digits("کد ۱۲۳ abc-٤٥ 67") == "کد 123 abc-45 67"
    assert normalize_digits("") == ""


# --- cardinal numbers --------------------------------------------------------------------

# Hand-written Persian, spoken style: صد and هزار without «یک», یک میلیون, یک میلیارد.
NUMBERS = [
    (0, "صفر"),
    (1, "یک"),
    (5, "پنج"),
    (10, "ده"),
    (11, "یازده"),
    (12, "دوازده"),
    (15, "پانزده"),
    (17, "هفده"),
    (18, "هجده"),
    (19, "نوزده"),
    (20, "بیست"),
    (21, "بیست و یک"),
    (30, "سی"),
    (45, "چهل و پنج"),
    (58, "پنجاه و هشت"),
    (66, "شصت و شش"),
    (73, "هفتاد و سه"),
    (99, "نود و نه"),
    (100, "صد"),
    (101, "صد و یک"),
    (110, "صد و ده"),
    (119, "صد و نوزده"),
    (120, "صد و بیست"),
    (200, "دویست"),
    (305, "سیصد و پنج"),
    (470, "چهارصد و هفتاد"),
    (512, "پانصد و دوازده"),
    (686, "ششصد و هشتاد و شش"),
    (777, "هفتصد و هفتاد و هفت"),
    (840, "هشتصد و چهل"),
    (999, "نهصد و نود و نه"),
    (1000, "هزار"),
    (1001, "هزار و یک"),
    (1010, "هزار و ده"),
    (1100, "هزار و صد"),
    (1404, "هزار و چهارصد و چهار"),
    (1587, "هزار و پانصد و هشتاد و هفت"),
    (2000, "دو هزار"),
    (2026, "دو هزار و بیست و شش"),
    (10000, "ده هزار"),
    (11000, "یازده هزار"),
    (21000, "بیست و یک هزار"),
    (100000, "صد هزار"),
    (100100, "صد هزار و صد"),
    (101000, "صد و یک هزار"),
    (999999, "نهصد و نود و نه هزار و نهصد و نود و نه"),
    (1000000, "یک میلیون"),
    (1000001, "یک میلیون و یک"),
    (1001000, "یک میلیون و هزار"),
    (2000000, "دو میلیون"),
    (1234567, "یک میلیون و دویست و سی و چهار هزار و پانصد و شصت و هفت"),
    (100000000, "صد میلیون"),
    (1000000000, "یک میلیارد"),
    (1000001000, "یک میلیارد و هزار"),
    (5000000000, "پنج میلیارد"),
    (
        2147483647,
        "دو میلیارد و صد و چهل و هفت میلیون و چهارصد و هشتاد و سه هزار و ششصد و چهل و هفت",
    ),
    (
        999999999999,
        "نهصد و نود و نه میلیارد و نهصد و نود و نه میلیون و نهصد و نود و نه هزار و نهصد و نود و نه",
    ),
]


@pytest.mark.parametrize(("n", "expected"), NUMBERS, ids=[str(n) for n, _ in NUMBERS])
def test_number_words(n, expected, texts):
    assert words(number_fragments(n), texts) == expected


def test_number_table_is_large_and_covers_the_required_numbers():
    required = {0, 10, 11, 19, 20, 21, 100, 101, 110, 999, 1000, 1001, 1587, 2000, 10000}
    required |= {100000, 1000000, 1234567, 1000000000, 2147483647}
    numbers = [n for n, _ in NUMBERS]
    assert len(numbers) >= 40
    assert required <= set(numbers)
    assert len(set(numbers)) == len(numbers)


def test_number_fragment_ids_for_1587():
    # Four fragments said "hezâr-o pânsad-o hashtâd-o haft", not seven with a «و» between.
    assert number_fragments(1587) == ["num.1000-o", "num.500-o", "num.80-o", "num.7"]


def test_124_is_three_fragments():
    assert number_fragments(124) == ["num.100-o", "num.20-o", "num.4"]


def _o_forms_agree_with_the_words(fragments, expected):
    """Every «و» of the written words is an "-o" fragment, and nothing else joins them."""
    spoken = expected.split()
    assert "word.and" not in fragments
    assert sum(f.endswith("-o") for f in fragments) == spoken.count("و")
    assert len(fragments) == len(spoken) - spoken.count("و")
    assert not fragments[-1].endswith("-o")  # a «و» always has a word after it
    for fragment in fragments:
        if fragment.endswith("-o"):
            assert fragment.removesuffix("-o") in TENS_HUNDREDS_SCALES, fragment


@pytest.mark.parametrize(("n", "expected"), NUMBERS, ids=[str(n) for n, _ in NUMBERS])
def test_number_uses_the_o_forms(n, expected):
    _o_forms_agree_with_the_words(number_fragments(n), expected)


def test_o_forms_for_every_cross_checked_number(texts):
    for n in _cross_check_numbers():
        fragments = number_fragments(n)
        _o_forms_agree_with_the_words(fragments, words(fragments, texts))


def test_scales_keep_or_drop_one_as_spoken():
    assert number_fragments(100) == ["num.100"]
    assert number_fragments(1000) == ["num.1000"]
    assert number_fragments(2000) == ["num.2", "num.1000"]
    assert number_fragments(1000000) == ["num.1", "num.million"]
    assert number_fragments(10**9) == ["num.1", "num.billion"]


@pytest.mark.parametrize("n", [-1, 10**12, 10**15])
def test_number_out_of_range(n):
    with pytest.raises(ValueError):
        number_fragments(n)


@pytest.mark.parametrize("n", ["12", 1.0, True])
def test_number_needs_an_int(n):
    with pytest.raises(TypeError):
        number_fragments(n)


def _cross_check_numbers():
    rng = random.Random(124)
    numbers = list(range(0, 3000))
    numbers += [rng.randrange(10**6) for _ in range(1000)]
    numbers += [rng.randrange(10**12) for _ in range(1000)]
    numbers += [10**k for k in range(12)] + [10**k - 1 for k in range(1, 13)]
    return numbers


def test_numbers_agree_with_num2words(texts):
    # num2words 0.5.14 (lang='fa') follows the same spoken rules (صد, هزار, یک میلیون,
    # یک میلیارد, «و» between parts, هجده); every cardinal checked here agreed. It says
    # «هزار میلیارد» for 10^12, which is outside our range, so it is not compared.
    differ = [
        n
        for n in _cross_check_numbers()
        if words(number_fragments(n), texts) != num2words(n, lang="fa")
    ]
    assert differ == []


# --- ordinal days --------------------------------------------------------------------------

ORDINAL_DAYS = [
    "یکم",
    "دوم",
    "سوم",
    "چهارم",
    "پنجم",
    "ششم",
    "هفتم",
    "هشتم",
    "نهم",
    "دهم",
    "یازدهم",
    "دوازدهم",
    "سیزدهم",
    "چهاردهم",
    "پانزدهم",
    "شانزدهم",
    "هفدهم",
    "هجدهم",
    "نوزدهم",
    "بیستم",
    "بیست و یکم",
    "بیست و دوم",
    "بیست و سوم",
    "بیست و چهارم",
    "بیست و پنجم",
    "بیست و ششم",
    "بیست و هفتم",
    "بیست و هشتم",
    "بیست و نهم",
    "سی\u200cام",
    "سی و یکم",
]


@pytest.mark.parametrize(
    ("day", "expected"), list(enumerate(ORDINAL_DAYS, start=1)), ids=[str(d) for d in range(1, 32)]
)
def test_ordinal_days(day, expected, texts):
    assert words(ordinal_day_fragments(day), texts) == expected


def test_ordinal_fragment_ids():
    assert ordinal_day_fragments(20) == ["ord.20"]
    assert ordinal_day_fragments(30) == ["ord.30"]
    assert ordinal_day_fragments(21) == ["num.20-o", "ord.1"]
    assert ordinal_day_fragments(31) == ["num.30-o", "ord.1"]


@pytest.mark.parametrize("day", [0, 32, -1])
def test_ordinal_day_out_of_range(day):
    with pytest.raises(ValueError):
        ordinal_day_fragments(day)


def test_ordinals_agree_with_num2words_except_thirty(texts):
    # num2words says «سیم» for 30th, a dated form; today's speech (and our recording) is «سی‌ام».
    for day in range(1, 32):
        ours = words(ordinal_day_fragments(day), texts)
        theirs = num2words(day, lang="fa", to="ordinal")
        if day == 30:
            assert (ours, theirs) == ("سی\u200cام", "سیم")
        else:
            assert ours == theirs, day


# --- dates -------------------------------------------------------------------------------

# Jalali dates worked out by hand from Nowruz: 1 Farvardin 1403 = 2024-03-20, 1404 = 2025-03-21,
# 1405 = 2026-03-21, 1406 = 2027-03-21 (the equinox before or after noon in Tehran). Months 1–6
# have 31 days, 7–11 have 30, Esfand 29 (30 in a leap year: 1403 is one).
DATES = [
    # Nowruz and the day before: a Jalali year boundary.
    (datetime.date(2026, 3, 21), "یکم فروردین هزار و چهارصد و پنج"),
    (datetime.date(2026, 3, 20), "بیست و نهم اسفند هزار و چهارصد و چهار"),
    # Leap year 1403: Esfand has 30 days.
    (datetime.date(2025, 3, 20), "سی\u200cام اسفند هزار و چهارصد و سه"),
    (datetime.date(2025, 3, 21), "یکم فروردین هزار و چهارصد و چهار"),
    # Nowruz 1403 fell on 20 March.
    (datetime.date(2024, 3, 19), "بیست و نهم اسفند هزار و چهارصد و دو"),
    (datetime.date(2024, 3, 20), "یکم فروردین هزار و چهارصد و سه"),
    (datetime.date(2024, 2, 29), "دهم اسفند هزار و چهارصد و دو"),
    (datetime.date(2026, 3, 23), "سوم فروردین هزار و چهارصد و پنج"),
    (datetime.date(2026, 4, 2), "سیزدهم فروردین هزار و چهارصد و پنج"),
    (datetime.date(2026, 4, 7), "هجدهم فروردین هزار و چهارصد و پنج"),
    (datetime.date(2026, 4, 20), "سی و یکم فروردین هزار و چهارصد و پنج"),
    (datetime.date(2026, 4, 21), "یکم اردیبهشت هزار و چهارصد و پنج"),
    (datetime.date(2026, 6, 5), "پانزدهم خرداد هزار و چهارصد و پنج"),
    (datetime.date(2026, 6, 21), "سی و یکم خرداد هزار و چهارصد و پنج"),
    (datetime.date(2026, 7, 22), "سی و یکم تیر هزار و چهارصد و پنج"),
    (datetime.date(2026, 8, 13), "بیست و دوم مرداد هزار و چهارصد و پنج"),
    (datetime.date(2026, 9, 22), "سی و یکم شهریور هزار و چهارصد و پنج"),
    (datetime.date(2026, 9, 23), "یکم مهر هزار و چهارصد و پنج"),
    (datetime.date(2026, 10, 22), "سی\u200cام مهر هزار و چهارصد و پنج"),
    (datetime.date(2026, 11, 5), "چهاردهم آبان هزار و چهارصد و پنج"),
    (datetime.date(2026, 12, 21), "سی\u200cام آذر هزار و چهارصد و پنج"),
    (datetime.date(2026, 12, 22), "یکم دی هزار و چهارصد و پنج"),
    # Gregorian New Year falls inside Dey.
    (datetime.date(2026, 1, 1), "یازدهم دی هزار و چهارصد و چهار"),
    (datetime.date(2027, 1, 1), "یازدهم دی هزار و چهارصد و پنج"),
    (datetime.date(2027, 2, 19), "سی\u200cام بهمن هزار و چهارصد و پنج"),
    (datetime.date(2027, 3, 20), "بیست و نهم اسفند هزار و چهارصد و پنج"),
    (datetime.date(2027, 3, 21), "یکم فروردین هزار و چهارصد و شش"),
    # Well-known dates: 22 Bahman 1357 and 11 Dey 1378.
    (datetime.date(1979, 2, 11), "بیست و دوم بهمن هزار و سیصد و پنجاه و هفت"),
    (datetime.date(2000, 1, 1), "یازدهم دی هزار و سیصد و هفتاد و هشت"),
]


@pytest.mark.parametrize(("day", "expected"), DATES, ids=[str(day) for day, _ in DATES])
def test_date_words(day, expected, texts):
    assert words(date_fragments(day), texts) == expected


@pytest.mark.parametrize(("day", "expected"), DATES, ids=[str(day) for day, _ in DATES])
def test_dates_use_the_o_forms(day, expected):
    _o_forms_agree_with_the_words(date_fragments(day), expected)


def test_date_fragment_ids():
    assert date_fragments(datetime.date(2026, 6, 5)) == [
        "ord.15",
        "month.3",
        *number_fragments(1405),
    ]


def test_date_refuses_a_datetime():
    with pytest.raises(TypeError):
        date_fragments(datetime.datetime(2026, 6, 4, 21, 0, tzinfo=UTC))


# --- Tehran's calendar day -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # UTC+3:30: 21:00 UTC is 00:30 the next day in Tehran.
        (datetime.datetime(2026, 6, 4, 21, 0), datetime.date(2026, 6, 5)),
        (datetime.datetime(2026, 6, 4, 21, 0, tzinfo=UTC), datetime.date(2026, 6, 5)),
        (datetime.datetime(2026, 6, 4, 20, 29), datetime.date(2026, 6, 4)),
        (datetime.datetime(2026, 6, 4, 20, 30, tzinfo=UTC), datetime.date(2026, 6, 5)),
        (datetime.datetime(2026, 6, 4, 23, 59, tzinfo=UTC), datetime.date(2026, 6, 5)),
        (datetime.datetime(2026, 6, 5, 0, 0, tzinfo=UTC), datetime.date(2026, 6, 5)),
        # Another zone: 23:00+02:00 is 21:00 UTC.
        (
            datetime.datetime(
                2026, 6, 4, 23, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            datetime.date(2026, 6, 5),
        ),
        # Already in Tehran: unchanged.
        (
            datetime.datetime(2026, 6, 5, 0, 10, tzinfo=ZoneInfo("Asia/Tehran")),
            datetime.date(2026, 6, 5),
        ),
        # Nowruz 1405 begins at 20:30 UTC on 20 March.
        (datetime.datetime(2026, 3, 20, 20, 45), datetime.date(2026, 3, 21)),
        # Before 2022 Iran kept summer time (UTC+4:30): 19:30 UTC was already midnight.
        (datetime.datetime(2021, 6, 1, 19, 30, tzinfo=UTC), datetime.date(2021, 6, 2)),
        (datetime.datetime(2021, 6, 1, 19, 29, tzinfo=UTC), datetime.date(2021, 6, 1)),
    ],
)
def test_tehran_date(moment, expected):
    assert tehran_date(moment) == expected


def test_tehran_date_then_spoken(texts):
    day = tehran_date(datetime.datetime(2026, 3, 20, 20, 45))
    assert words(date_fragments(day), texts) == "یکم فروردین هزار و چهارصد و پنج"


# --- digit strings -----------------------------------------------------------------------


def test_digits_with_groups_and_pauses():
    assert digits_fragments("12345", (2, 3)) == [
        "num.1",
        "num.2",
        "pause",
        "num.3",
        "num.4",
        "num.5",
    ]


def test_digits_without_groups_has_no_pause():
    assert digits_fragments("907") == ["num.9", "num.0", "num.7"]
    assert digits_fragments("") == []


def test_digits_accepts_persian_and_arabic_indic():
    assert digits_fragments("۱۲۳٤٥", (3, 2)) == digits_fragments("12345", (3, 2))


def test_mobile_spoken_digit_by_digit(texts):
    number = "۰۹۱۲۳۴۵۶۷۸۹"
    fragments = digits_fragments(number, phone_groups(number))
    assert fragments.count("pause") == 2
    assert fragments.index("pause") == 4
    assert words(fragments, texts) == "صفر نه یک دو سه چهار پنج شش هفت هشت نه"


@pytest.mark.parametrize(
    ("digits", "groups"),
    [("12345", (2, 2)), ("12345", (2, 4)), ("123", (3, 0)), ("12a", (3,)), ("1²3", (3,))],
)
def test_digits_rejects_bad_input(digits, groups):
    with pytest.raises(ValueError):
        digits_fragments(digits, groups)


@pytest.mark.parametrize(
    ("number", "groups"),
    [
        ("09121234567", (4, 3, 4)),
        ("۰۹۱۲۱۲۳۴۵۶۷", (4, 3, 4)),
        ("02537123456", (3, 4, 4)),
        ("٠٢١١٢٣٤٥٦٧٨", (3, 4, 4)),
        ("1001", (3, 1)),
        ("123456", (3, 3)),
        ("12345678", (3, 3, 2)),
        ("9121234567", (3, 3, 3, 1)),
        ("", ()),
    ],
)
def test_phone_groups(number, groups):
    assert phone_groups(number) == groups


@pytest.mark.parametrize(
    ("tracking", "groups"),
    [
        ("1000000018", (3, 3, 4)),
        ("۱۰۰۰۰۰۰۰۱۸", (3, 3, 4)),
        ("1234567", (3, 3, 1)),
        ("123456", (3, 3)),
        ("12", (2,)),
    ],
)
def test_tracking_groups(tracking, groups):
    assert tracking_groups(tracking) == groups


# --- fragment_words ------------------------------------------------------------------------


def test_fragment_words_skips_silences_and_uses_single_spaces():
    texts = {"a": "یک", "pause": "", "b": "دو"}
    assert fragment_words(["pause", "a", "pause", "pause", "b", "pause"], texts) == "یک دو"
    assert fragment_words([], texts) == ""


def test_fragment_words_refuses_unknown_fragments():
    with pytest.raises(KeyError):
        fragment_words(["num.7"], {})
