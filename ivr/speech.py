"""Persian digits in, Persian speech fragments out.

The IVR speaks numbers, dates and digit strings by playing short recorded fragments in a row
(Asterisk has no Persian SayNumber). The functions here decide which fragments, by id; each id
is one audio file whose text lives in prompts/fragments.toml. The joining «و» is spoken with the
word before it ("hezâr-o pânsad"), so a word followed by «و» is its "-o" form (``num.1000-o``)
rather than a separate «و»: 1587 is four fragments. Everything is pure so it can be tested
without audio.
"""

from __future__ import annotations

import datetime
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jdatetime

FRAGMENTS_FILE = "fragments.toml"
"""The catalogue file of fragment ids and their Persian text, in ``IVR_PROMPTS_DIR``."""

AND_SUFFIX = "-o"
"""A fragment id plus this is the same word with the «و» that follows it: num.20 → num.20-o."""
PAUSE = "pause"
THOUSAND = "num.1000"
MILLION = "num.million"
BILLION = "num.billion"

JOINS_WITH_AND = frozenset(
    [f"num.{n}" for n in range(20, 100, 10)]
    + [f"num.{n}" for n in range(100, 1000, 100)]
    + [THOUSAND, MILLION, BILLION]
)
"""The words that can be followed by «و» (a part of a number ends in a ten, a hundred or a scale
word, or is the last part), so the only ones with an "-o" form."""

MAX_NUMBER = 10**12 - 1
"""The largest number spoken: hundreds of billions (میلیارد) is the biggest scale recorded."""

_DIGIT_MAP = str.maketrans(
    "۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩",
    "01234567890123456789",
)


def normalize_digits(text: str) -> str:
    """Turn Persian (۰–۹) and Arabic-Indic (٠–٩) digits into ASCII.

    Persian keyboards and phones type either set, so every parser calls this first.
    """
    return text.translate(_DIGIT_MAP)


def _ascii_digits(digits: str) -> str:
    """Normalized digits, or ValueError: other Unicode digits (e.g. '²') are not accepted."""
    text = normalize_digits(digits)
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"not a string of digits: {digits!r}")
    return text


def _below_thousand(n: int) -> list[str]:
    """Fragments of 1–999: hundreds are whole words (پانصد), 1–19 are single words."""
    parts: list[list[str]] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        parts.append([f"num.{hundreds * 100}"])
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        parts.append([f"num.{tens * 10}"])
        if ones:
            parts.append([f"num.{ones}"])
    elif rest:
        parts.append([f"num.{rest}"])
    return _join_with_and(parts)


def with_and(fragment: str) -> str:
    """The "-o" form of ``fragment``: the word and the «و» after it, said as one."""
    if fragment not in JOINS_WITH_AND:
        raise ValueError(f"{fragment} has no form followed by «و»")
    return fragment + AND_SUFFIX


def _join_with_and(parts: Sequence[Sequence[str]]) -> list[str]:
    """Parts of a Persian number are linked by «و» (هزار و پانصد و هشتاد و هفت), spoken with
    the last word of the part before it: هزارو پانصدو هشتادو هفت."""
    out: list[str] = []
    for part in parts:
        if out:
            out[-1] = with_and(out[-1])
        out.extend(part)
    return out


def number_fragments(n: int) -> list[str]:
    """Fragments of the spoken cardinal ``n`` (0 ≤ n < 10^12).

    Spoken, not formal written style: 100 is صد and 1000 is هزار with no «یک», but a million and
    a billion keep it (یک میلیون, یک میلیارد).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"number_fragments needs an int, got {n!r}")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"cannot speak {n}: supported range is 0 to {MAX_NUMBER}")
    if n == 0:
        return ["num.0"]
    billions, rest = divmod(n, 10**9)
    millions, rest = divmod(rest, 10**6)
    thousands, units = divmod(rest, 1000)
    parts: list[list[str]] = []
    if billions:
        parts.append([*_below_thousand(billions), BILLION])
    if millions:
        parts.append([*_below_thousand(millions), MILLION])
    if thousands == 1:
        parts.append([THOUSAND])
    elif thousands:
        parts.append([*_below_thousand(thousands), THOUSAND])
    if units:
        parts.append(_below_thousand(units))
    return _join_with_and(parts)


def digits_fragments(digits: str, groups: Sequence[int] | None = None) -> list[str]:
    """Fragments reading ``digits`` one by one, with a ``pause`` between written groups.

    Phone and tracking numbers are read digit by digit as they are written, so callers can copy
    them down. ``groups`` are group lengths that must add up to the number of digits.
    """
    text = _ascii_digits(digits) if digits else ""
    if groups is None:
        groups = (len(text),) if text else ()
    if any(size <= 0 for size in groups) or sum(groups) != len(text):
        raise ValueError(f"groups {tuple(groups)} do not split {len(text)} digits")
    out: list[str] = []
    start = 0
    for size in groups:
        if out:
            out.append(PAUSE)
        out.extend(f"num.{d}" for d in text[start : start + size])
        start += size
    return out


def _threes(length: int) -> tuple[int, ...]:
    """Groups of three with the remainder last: 7 digits → (3, 3, 1)."""
    full, rest = divmod(length, 3)
    return (3,) * full + ((rest,) if rest else ())


def phone_groups(number: str) -> tuple[int, ...]:
    """The written groups of an Iranian number in national form.

    Mobiles are written 0912 345 6789 and landlines 025 3712 3456 (0, area code, 8 digits);
    anything else is read in threes.
    """
    text = _ascii_digits(number) if number else ""
    if len(text) == 11 and text.startswith("09"):
        return (4, 3, 4)
    if len(text) == 11 and text.startswith("0"):
        return (3, 4, 4)
    return _threes(len(text))


def tracking_groups(tracking: str) -> tuple[int, ...]:
    """Written groups of a ticket tracking number: 10 digits as 3-3-4, otherwise threes."""
    text = _ascii_digits(tracking) if tracking else ""
    if len(text) == 10:
        return (3, 3, 4)
    return _threes(len(text))


def ordinal_day_fragments(day: int) -> list[str]:
    """A day of the month as an ordinal (پانزدهم, بیست و یکم, سی‌ام).

    Only 1–20 and 30 are recorded as ordinals; 21–29 and 31 are the tens with «و» (its "-o"
    form) and an ordinal.
    """
    if isinstance(day, bool) or not isinstance(day, int):
        raise TypeError(f"ordinal_day_fragments needs an int, got {day!r}")
    if not 1 <= day <= 31:
        raise ValueError(f"not a day of the month: {day}")
    if day <= 20 or day == 30:
        return [f"ord.{day}"]
    tens, ones = divmod(day, 10)
    return [with_and(f"num.{tens * 10}"), f"ord.{ones}"]


def date_fragments(day: datetime.date) -> list[str]:
    """A Gregorian date spoken as its Jalali date: day ordinal, month name, year.

    A datetime is refused: its calendar date depends on the time zone, so pass it through
    :func:`tehran_date` first.
    """
    if isinstance(day, datetime.datetime):
        raise TypeError("date_fragments needs a date; use tehran_date() for a datetime")
    jalali = jdatetime.date.fromgregorian(date=day)
    return [
        *ordinal_day_fragments(jalali.day),
        f"month.{jalali.month}",
        *number_fragments(jalali.year),
    ]


WEEK_DAYS = 7
"""From this many days ahead a weekday alone is ambiguous: its date is said too."""


def weekday_fragment(day: datetime.date) -> str:
    """The day of the week: ``weekday.0`` is Saturday (شنبه), as the Persian week starts."""
    return f"weekday.{jdatetime.date.fromgregorian(date=day).weekday()}"


def clock_fragments(moment: datetime.time | datetime.datetime) -> list[str]:
    """A time of day on the 24-hour clock: «ساعت هشت», «ساعت هشت و سی دقیقه»."""
    hour, minute = moment.hour, moment.minute
    if not minute:
        return [f"hour.{hour}"]
    return [f"hour.{hour}{AND_SUFFIX}", *number_fragments(minute), "hour.minutes"]


def opening_fragments(moment: datetime.datetime, *, with_date: bool = False) -> list[str]:
    """When agents answer next, as the caller hears it: weekday and time («شنبه ساعت هشت»),
    with the Jalali date between them when ``with_date`` (more than a week ahead).

    ``moment`` must be the local (Tehran) time: the weekday depends on the zone.
    """
    if moment.tzinfo is None:
        raise TypeError("opening_fragments needs an aware local time")
    day = moment.date()
    jalali = jdatetime.date.fromgregorian(date=day)
    date_part = [*ordinal_day_fragments(jalali.day), f"month.{jalali.month}"] if with_date else []
    return [weekday_fragment(day), *date_part, *clock_fragments(moment)]


def fragment_words(fragments: Iterable[str], texts: Mapping[str, str]) -> str:
    """The Persian words of ``fragments`` joined by single spaces (for TTS, logs and tests).

    Fragments with empty text, like ``pause``, are silences and are skipped; an id missing
    from ``texts`` raises KeyError rather than being dropped silently.
    """
    words = (texts[fragment] for fragment in fragments)
    return " ".join(word for word in words if word)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested TOML tables to dotted ids: {"num": {"0": "صفر"}} → {"num.0": "صفر"}.

    A ``{ text = "…", say = "…" }`` table is one fragment: its ``text`` is what people read.
    """
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and "text" in value and set(value) <= {"text", "say"}:
            if not isinstance(value["text"], str):
                raise ValueError(f"fragment {name} must be text, got {value['text']!r}")
            flat[name] = value["text"]
        elif isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, str):
            flat[name] = value
        else:
            raise ValueError(f"fragment {name} must be text, got {value!r}")
    return flat


def load_fragment_texts(path: Path | None = None) -> dict[str, str]:
    """Fragment id → Persian text, read from the catalogue's fragments.toml (or ``path``)."""
    if path is None:
        from ivr.settings import get_settings

        path = get_settings().prompts_dir / FRAGMENTS_FILE
    with open(path, "rb") as handle:
        return _flatten(tomllib.load(handle))
