"""Time, one way everywhere: UTC stored, Asia/Tehran shown, Jalali dates for people.

Every module takes its zone, its "now" and its Jalali formatting from here, so a ticket's
deadline, the date a caller hears and the date a supervisor reads can never disagree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any, overload
from zoneinfo import ZoneInfo

import jdatetime

TEHRAN = ZoneInfo("Asia/Tehran")
"""The one zone the hotline's days, hours and reports are counted in."""

_FA_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def utcnow() -> datetime:
    """Aware UTC now: the one clock every row is written with."""
    return datetime.now(UTC)


@overload
def as_aware(moment: datetime) -> datetime: ...
@overload
def as_aware(moment: None) -> None: ...
def as_aware(moment: datetime | None) -> datetime | None:
    """Aware UTC, reading a naive value as UTC (``ivr.calendar`` returns naive UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_stored(column: Any, moment: datetime) -> datetime:
    """``moment`` as ``column`` takes it: aware for a timezone type, naive UTC for a plain one.

    SQLModel's UTCDateTime refuses naive values and a plain DateTime on PostgreSQL would shift
    aware ones by the session's time zone; every write goes through here, so the code works
    whichever way the models declare their times.
    """
    moment = as_aware(moment)
    return moment if getattr(column.type, "timezone", False) else moment.replace(tzinfo=None)


def tehran_date(moment: datetime) -> date:
    """The calendar date in Tehran at ``moment`` (naive means UTC): a caller's "today"."""
    return as_aware(moment).astimezone(TEHRAN).date()


def tehran_today(now: datetime | None = None) -> date:
    """Today on the office's wall calendar (the Jalali year turns at Tehran's midnight)."""
    return tehran_date(now or utcnow())


def day_start_utc(day: date) -> datetime:
    """Aware UTC of 00:00 Tehran on ``day``."""
    return datetime.combine(day, time(0), tzinfo=TEHRAN).astimezone(UTC)


def jalali(moment: datetime | None) -> str:
    """``1405/09/07 09:26``: the Jalali date and time in Tehran; empty for no time."""
    if moment is None:
        return ""
    local = as_aware(moment).astimezone(TEHRAN)
    return jdatetime.datetime.fromgregorian(datetime=local).strftime("%Y/%m/%d %H:%M")


def jalali_day(day: date) -> str:
    """``1405/02/10``."""
    return jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d")


def jalali_words(moment: datetime | None) -> str:
    """``چهارشنبه ۲۳ اردیبهشت ۱۴۰۵ ساعت ۱۶:۰۰`` (Tehran time), for mail and pages."""
    if moment is None:
        return "—"
    local = as_aware(moment).astimezone(TEHRAN)
    day = jdatetime.datetime.fromgregorian(datetime=local, locale="fa_IR")
    return fa_digits(day.strftime("%A %d %B %Y ساعت %H:%M"))


def iso_utc(moment: datetime | None) -> str | None:
    """``2026-11-28T05:56:13Z``: unambiguous for programs reading JSON."""
    if moment is None:
        return None
    return as_aware(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def fa_digits(text: str) -> str:
    """ASCII digits as Persian ones, for text people read."""
    return text.translate(_FA_DIGITS)
