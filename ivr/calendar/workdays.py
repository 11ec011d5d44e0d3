"""When the 124 offices are open: the working week, Thursday decrees and holidays, all as data.

Everything here is pure: a ``WorkCalendar`` is built from lists of ``Holiday`` and ``ThursdayRule``
and answers questions about moments.  Moments come in as UTC (naive datetimes are taken to be UTC,
because the database stores naive UTC) and deadlines go out as naive UTC; the office day itself is
reckoned in Asia/Tehran, where the caller and the agents live.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

# Python's date.weekday(): Monday = 0 … Sunday = 6.
SATURDAY, SUNDAY, MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = 5, 6, 0, 1, 2, 3, 4
FULL_DAYS = frozenset({SATURDAY, SUNDAY, MONDAY, TUESDAY, WEDNESDAY})
"""Open every week; Thursday depends on the rule in force; Friday is the constitutional holiday."""

MAX_CLOSED_DAYS = 3 * 366
"""A calendar closed for longer than this is a data error, not a long holiday: fail loudly."""

RUN_DAYS = 32
"""Working days worked out at a time for ``working_intervals``: more than any SLA needs."""

HolidayKind = Literal["fixed", "lunar", "holiday", "closure"]
HOLIDAY_KINDS: frozenset[str] = frozenset({"fixed", "lunar", "holiday", "closure"})
"""fixed: the law's Jalali days (seeded, never moved); lunar: the Hijri days, seeded from the
``holidays`` package and moved by moon sighting; holiday: an official holiday an administrator
added (a new law, a day the package lacks); closure: a one-off closing (heat, pollution,
mourning), often for one province only."""
MOVABLE_KINDS: frozenset[str] = HOLIDAY_KINDS - {"fixed"}
"""What an administrator may confirm or move: everything but the law's fixed days."""


@dataclass(frozen=True)
class ThursdayRule:
    """Thursday's status from ``effective_from`` until the next rule (decrees change it)."""

    effective_from: date
    open: bool
    opens: time = time(8, 0)
    closes: time = time(13, 0)

    def __post_init__(self) -> None:
        if self.open and self.opens >= self.closes:
            raise ValueError(f"Thursday rule from {self.effective_from}: opens after it closes")


DEFAULT_THURSDAY_RULES: tuple[ThursdayRule, ...] = (
    # Government offices have been closed on Thursdays for years; a new decree is a new row.
    ThursdayRule(date(1900, 1, 1), open=False),
)
DEFAULT_HOURS: tuple[time, time] = (time(8, 0), time(16, 0))


@dataclass(frozen=True)
class Holiday:
    """A day the offices are closed: ``province=None`` means nationwide.

    ``estimated`` marks lunar dates not yet fixed by moon sighting, so a supervisor knows which
    ones to confirm or move.
    """

    day: date
    name: str
    kind: HolidayKind
    province: str | None = None
    estimated: bool = False

    def __post_init__(self) -> None:
        if self.kind not in HOLIDAY_KINDS:
            raise ValueError(f"unknown holiday kind {self.kind!r}")

    def applies_to(self, province: str) -> bool:
        return self.province is None or self.province == province


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive datetime is read as UTC (that is how the database stores it)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class WorkCalendar:
    """Working days and hours for every province, from holiday and Thursday data."""

    def __init__(
        self,
        holidays: Iterable[Holiday] = (),
        thursday_rules: Sequence[ThursdayRule] = DEFAULT_THURSDAY_RULES,
        hours: tuple[time, time] = DEFAULT_HOURS,
        tz: str = "Asia/Tehran",
    ) -> None:
        if hours[0] >= hours[1]:
            raise ValueError(f"working hours {hours} open after they close")
        self.holidays: tuple[Holiday, ...] = tuple(holidays)
        self.thursday_rules = tuple(sorted(thursday_rules, key=lambda r: r.effective_from))
        self.hours = hours
        self.tz_name = tz
        self.tz = ZoneInfo(tz)
        self._by_day: dict[date, list[Holiday]] = {}
        for holiday in self.holidays:
            self._by_day.setdefault(holiday.day, []).append(holiday)
        # Memos: a calendar never changes after it is built (with_holidays makes a new one), and
        # every ticket's deadlines walk the same few weeks of days, so each day is worked out once.
        self._next_day: dict[tuple[date, str], date] = {}
        self._utc_hours: dict[tuple[date, str], tuple[datetime, datetime]] = {}
        self._runs: dict[tuple[date, str], tuple[tuple[tuple[datetime, datetime], ...], date]] = {}

    def with_holidays(self, *more: Holiday) -> WorkCalendar:
        """A new calendar with extra days off (a closure decreed today): recompute deadlines."""
        return WorkCalendar((*self.holidays, *more), self.thursday_rules, self.hours, self.tz_name)

    # Days ---------------------------------------------------------------------------------

    def holidays_on(self, day: date, province: str) -> list[Holiday]:
        return [h for h in self._by_day.get(day, ()) if h.applies_to(province)]

    def thursday_rule(self, day: date) -> ThursdayRule | None:
        """The latest rule with ``effective_from <= day``; none in force means closed."""
        in_force = None
        for rule in self.thursday_rules:
            if rule.effective_from > day:
                break
            in_force = rule
        return in_force

    def _hours_of(self, day: date) -> tuple[time, time] | None:
        """The week's pattern for ``day``, ignoring holidays."""
        weekday = day.weekday()
        if weekday in FULL_DAYS:
            return self.hours
        if weekday == THURSDAY:
            rule = self.thursday_rule(day)
            if rule is not None and rule.open:
                return rule.opens, rule.closes
        return None

    def is_working_day(self, day: date, province: str) -> bool:
        return self._hours_of(day) is not None and not self.holidays_on(day, province)

    def opening_hours(self, day: date, province: str) -> tuple[datetime, datetime] | None:
        """Opening and closing as aware local datetimes, or None on a day off."""
        hours = self._hours_of(day)
        if hours is None or self.holidays_on(day, province):
            return None
        return (
            datetime.combine(day, hours[0], tzinfo=self.tz),
            datetime.combine(day, hours[1], tzinfo=self.tz),
        )

    def local_day(self, moment_utc: datetime) -> date:
        """The office's calendar day then: 21:00 UTC is already tomorrow in Tehran (UTC+3:30)."""
        return as_utc(moment_utc).astimezone(self.tz).date()

    def next_working_day(self, day: date, province: str) -> date:
        """``day`` itself if it is a working day, else the first one after it."""
        key = (day, province)
        found = self._next_day.get(key)
        if found is None:
            found = self._next_day[key] = self._find_working_day(day, province)
        return found

    def _find_working_day(self, day: date, province: str) -> date:
        for offset in range(MAX_CLOSED_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_working_day(candidate, province):
                return candidate
        raise RuntimeError(f"no working day in {province} for {MAX_CLOSED_DAYS} days after {day}")

    # Moments ------------------------------------------------------------------------------

    def add_working_days(self, start_utc: datetime, n: int, province: str) -> datetime:
        """Closing time of the n-th working day after the registration day, as naive UTC.

        The registration day never counts, whatever the hour: a ticket from Saturday 09:00, or
        Saturday 23:00, or Friday, with n = 1 is due at the next working day's close.
        """
        if n < 1:
            raise ValueError("n must be at least 1: the registration day does not count")
        day = self.local_day(start_utc)
        for _ in range(n):
            day = self.next_working_day(day + timedelta(days=1), province)
        hours = self.opening_hours(day, province)
        assert hours is not None  # next_working_day only returns working days
        return naive_utc(hours[1])

    def working_intervals(
        self, start_utc: datetime, province: str, end_utc: datetime | None = None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Aware-UTC [open, close) intervals from ``start_utc`` on, clipped to the bounds."""
        start = as_utc(start_utc)
        end = as_utc(end_utc) if end_utc is not None else None
        day = self.local_day(start)
        while True:
            hours, day = self._run_from(day, province)
            for opens, closes in hours:
                if end is not None and opens >= end:
                    return
                lo, hi = max(opens, start), closes if end is None else min(closes, end)
                if lo < hi:
                    yield lo, hi

    def _run_from(
        self, day: date, province: str
    ) -> tuple[tuple[tuple[datetime, datetime], ...], date]:
        """The hours (aware UTC) of the next ``RUN_DAYS`` working days from ``day`` on, and the
        day after the last of them: what every deadline from that day walks, worked out once."""
        key = (day, province)
        run = self._runs.get(key)
        if run is None:
            hours = []
            for _ in range(RUN_DAYS):
                day = self.next_working_day(day, province)
                hours.append(self._working_hours_utc(day, province))
                day += timedelta(days=1)
            run = self._runs[key] = (tuple(hours), day)
        return run

    def _working_hours_utc(self, day: date, province: str) -> tuple[datetime, datetime]:
        """Opening and closing of a working ``day`` as aware UTC, worked out once per day."""
        key = (day, province)
        hours = self._utc_hours.get(key)
        if hours is None:
            local = self.opening_hours(day, province)
            assert local is not None  # only asked for working days
            hours = self._utc_hours[key] = (local[0].astimezone(UTC), local[1].astimezone(UTC))
        return hours

    def working_time_between(self, a_utc: datetime, b_utc: datetime, province: str) -> timedelta:
        """Office time between two moments (zero if b is not after a)."""
        total = timedelta(0)
        for lo, hi in self.working_intervals(a_utc, province, b_utc):
            total += hi - lo
        return total

    def working_seconds_between(self, a_utc: datetime, b_utc: datetime, province: str) -> float:
        return self.working_time_between(a_utc, b_utc, province).total_seconds()

    def is_working_time(self, moment_utc: datetime, province: str) -> bool:
        """Inside [opening, closing): at 16:00 sharp the office is closed."""
        moment = as_utc(moment_utc)
        hours = self.opening_hours(self.local_day(moment), province)
        return hours is not None and hours[0] <= moment < hours[1]

    def next_opening(self, moment_utc: datetime, province: str) -> datetime:
        """The moment itself inside working hours, else the next opening (naive UTC).

        Used to hold e-mails and calls-back until someone is at the desk.
        """
        interval = next(self.working_intervals(moment_utc, province))
        return naive_utc(interval[0])
