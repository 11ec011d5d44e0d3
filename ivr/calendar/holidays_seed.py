"""The year's holidays as data: fixed Jalali days computed here, lunar ones from ``holidays``.

The fixed days are the law's list and hold for any Jalali year.  Lunar days come from the PyPI
package ``holidays`` (Umm al-Qura + 1 day, confirmed for past years, estimated later); Iran fixes
them by moon sighting, so they are seeded as rows a supervisor can move, never computed on the fly.
"""

from __future__ import annotations

import functools
from datetime import date

import holidays
import jdatetime

from ivr.calendar.workdays import Holiday

FIXED_JALALI: tuple[tuple[int, int, str], ...] = (
    # (Jalali month, day, name).  Names are the `holidays` package's fa_IR strings, so the two
    # sources agree and the package's own copy of these days can be recognised and skipped.
    (1, 1, "جشن نوروز"),
    (1, 2, "عیدنوروز"),
    (1, 3, "عیدنوروز"),
    (1, 4, "عیدنوروز"),
    (1, 12, "روز جمهوری اسلامی"),
    (1, 13, "روز طبیعت"),
    (3, 14, "رحلت حضرت امام خمینی"),
    (3, 15, "قیام 15 خرداد"),
    (11, 22, "پیروزی انقلاب اسلامی"),
    (12, 29, "روز ملی شدن صنعت نفت ایران"),  # 29 Esfand, even in a leap year with a 30th
)

PACKAGE_FIXED_NAMES: frozenset[str] = frozenset(
    {name for _, _, name in FIXED_JALALI}
    # The package also closes 30 Esfand in leap years; the law's list above does not.
    | {"آخرین روز سال"}
)
"""Package entries with these names are Jalali-calendar days, replaced by FIXED_JALALI."""

PACKAGE_CLOSURE_NAMES: frozenset[str] = frozenset({"تعطیلی عمومی"})
"""One-off closures the package knows (heat, national mourning): kept as kind 'closure'."""

PACKAGE_LANGUAGE = "fa_IR"
"""Must be explicit: with language=None the package follows the process locale (English here)."""


def jalali_year_bounds(jalali_year: int) -> tuple[date, date]:
    """Gregorian [1 Farvardin, next 1 Farvardin): a Jalali year spans two Gregorian years."""
    return (
        jdatetime.date(jalali_year, 1, 1).togregorian(),
        jdatetime.date(jalali_year + 1, 1, 1).togregorian(),
    )


@functools.lru_cache(maxsize=64)
def jalali_year_of(day: date) -> int:
    """Cached: the calendar asks for every new ticket, and jdatetime's conversion costs more
    than the rest of that check."""
    return jdatetime.date.fromgregorian(date=day).year


def fixed_holidays(jalali_year: int) -> list[Holiday]:
    return [
        Holiday(jdatetime.date(jalali_year, month, day).togregorian(), name, "fixed")
        for month, day, name in FIXED_JALALI
    ]


def package_holidays(jalali_year: int) -> list[Holiday]:
    """Lunar days and one-off closures the ``holidays`` package gives for the Jalali year.

    The package only says "estimated" by appending a label to the name, so it is asked twice,
    with and without the label: a name that differs between the two is an estimate.  The stored
    name is the one without the label.
    """
    first, after = jalali_year_bounds(jalali_year)
    years = [first.year, after.year]
    plain = holidays.IR(years=years, language=PACKAGE_LANGUAGE, islamic_show_estimated=False)
    labelled = holidays.IR(years=years, language=PACKAGE_LANGUAGE, islamic_show_estimated=True)
    seeded = []
    for day in sorted(plain):
        if not first <= day < after:
            continue
        labelled_names = set(labelled.get_list(day))
        for name in plain.get_list(day):
            if name in PACKAGE_FIXED_NAMES:
                continue
            kind = "closure" if name in PACKAGE_CLOSURE_NAMES else "lunar"
            seeded.append(Holiday(day, name, kind, estimated=name not in labelled_names))
    return seeded


def seed_holidays(jalali_year: int) -> list[Holiday]:
    """All nationwide holidays of one Jalali year, fixed and lunar, sorted by day."""
    return sorted(
        fixed_holidays(jalali_year) + package_holidays(jalali_year),
        key=lambda h: (h.day, h.kind, h.name),
    )


def seed_current_and_next(today: date) -> list[Holiday]:
    """What to seed on installation and each Nowruz: this Jalali year and the next."""
    year = jalali_year_of(today)
    return seed_holidays(year) + seed_holidays(year + 1)
