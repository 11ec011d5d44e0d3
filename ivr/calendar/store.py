"""The working-day calendar as rows an administrator edits, and deadlines kept in step with it.

``ivr.calendar`` itself is pure; this module is its database side: holidays, closures and
Thursday decrees live in tables (seeded once per Jalali year from ``seed_current_and_next``),
are loaded into a ``WorkCalendar``, and every edit function here ends by recomputing open
tickets' deadlines (through ``ivr.tickets.clocks``, the tickets' own writer), so the deadline a
caller hears is the one the calendar gives today, whoever made the edit.
"""

from __future__ import annotations

import logging
import threading
import time as monotonic_time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Generic, TypeVar

import jdatetime
from sqlalchemy import Engine, and_, delete, func, or_, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, select

from ivr.calendar.holidays_seed import (
    jalali_year_bounds,
    jalali_year_of,
    seed_current_and_next,
    seed_holidays,
)
from ivr.calendar.offices import check_province
from ivr.calendar.policy import Deadlines, SlaPolicy, deadlines, load_policies
from ivr.calendar.workdays import (
    DEFAULT_THURSDAY_RULES,
    HOLIDAY_KINDS,
    MOVABLE_KINDS,
    Holiday,
    ThursdayRule,
    WorkCalendar,
)
from ivr.clock import TEHRAN, as_aware, day_start_utc, jalali_day, tehran_today, utcnow
from ivr.speech import normalize_digits
from ivr.tickets.clocks import recompute_deadlines
from ivr.tickets.db import session_scope
from ivr.tickets.models import HolidayRow, HolidaySeed, ThursdayRuleRow

log = logging.getLogger(__name__)

Pause = tuple[datetime, datetime | None]
T = TypeVar("T")

FIRST_JALALI_YEAR, LAST_JALALI_YEAR = 1300, 1500
"""The Jalali years the calendar can hold (1921-2122): a year outside is a typo, not a plan."""


@dataclass(frozen=True)
class Edited(Generic[T]):
    """What a calendar edit did (``value``) and how many open tickets' deadlines it moved."""

    value: T
    recomputed: int


# Holidays ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HolidayEntry:
    """A stored holiday as the CLI and the web show it."""

    id: int
    day: date
    name: str
    kind: str
    province: str | None
    estimated: bool
    confirmed: bool

    def as_holiday(self) -> Holiday:
        """The pure calendar's view: an estimate stays one until an administrator confirms it."""
        return Holiday(
            self.day,
            self.name,
            self.kind,  # type: ignore[arg-type]  # checked when stored
            self.province,
            estimated=self.estimated and not self.confirmed,
        )


def _entry(row: HolidayRow) -> HolidayEntry:
    assert row.id is not None
    return HolidayEntry(
        row.id, row.day, row.name, row.kind, row.province, row.estimated, row.confirmed
    )


def ensure_seeded(engine: Engine, today: date) -> int:
    """Seed this and next Jalali year's holidays unless already seeded; returns rows added."""
    year = jalali_year_of(today)
    return seed_years(engine, (year, year + 1))


def check_jalali_year(jalali_year: int) -> int:
    if not FIRST_JALALI_YEAR <= jalali_year <= LAST_JALALI_YEAR:
        raise ValueError(
            f"Jalali year {jalali_year} is out of range ({FIRST_JALALI_YEAR}-{LAST_JALALI_YEAR})"
        )
    return jalali_year


def seeded_years(engine: Engine) -> set[int]:
    with Session(engine) as session:
        return set(session.exec(select(HolidaySeed.jalali_year)))


def seed_years(engine: Engine, jalali_years: Iterable[int]) -> int:
    """Seed each Jalali year's holidays unless already seeded; returns rows added.

    Idempotent and safe for several nodes at once: the ``holiday_seed`` row of a year is
    inserted with its holidays, and a second node's insert of the same year fails and is dropped.
    """
    added = 0
    done = seeded_years(engine)
    for jalali_year in sorted(set(jalali_years) - done):
        check_jalali_year(jalali_year)
        rows = [
            HolidayRow(
                day=h.day, name=h.name, kind=h.kind, province=h.province, estimated=h.estimated
            )
            for h in seed_holidays(jalali_year)
        ]
        try:
            with session_scope(engine) as session:
                session.add(HolidaySeed(jalali_year=jalali_year))
                session.flush()  # the primary key decides which node seeds
                session.add_all(rows)
            added += len(rows)
            log.info("seeded %d holidays of Jalali year %d", len(rows), jalali_year)
        except IntegrityError:
            log.info("Jalali year %d was seeded by another process", jalali_year)
    return added


def list_holidays(
    engine: Engine, *, jalali_year: int | None = None, province: str | None = None
) -> list[HolidayEntry]:
    """Stored holidays by day; a province sees the nationwide ones and its own."""
    statement = select(HolidayRow).order_by(col(HolidayRow.day), col(HolidayRow.id))
    if jalali_year is not None:
        first, after = jalali_year_bounds(check_jalali_year(jalali_year))
        statement = statement.where(col(HolidayRow.day) >= first, col(HolidayRow.day) < after)
    if province is not None:
        statement = statement.where(
            or_(col(HolidayRow.province).is_(None), col(HolidayRow.province) == province)
        )
    with Session(engine) as session:
        return [_entry(row) for row in session.exec(statement)]


@dataclass(frozen=True)
class Added:
    """The holiday as stored; ``created`` False when the same one was there already."""

    entry: HolidayEntry
    created: bool
    recomputed: int


def add_holiday(
    engine: Engine,
    day: date,
    name: str,
    *,
    kind: str = "holiday",
    province: str | None = None,
    estimated: bool = False,
    confirmed: bool = True,
) -> Added:
    """Store a holiday or closure (an administrator's entry counts as confirmed) and recompute.

    The same day, kind, province and name added again is the same holiday: it is not stored
    twice.  ``province`` must be a known one (``ivr.calendar.offices``); None is nationwide.
    """
    if kind not in HOLIDAY_KINDS:
        raise ValueError(
            f"unknown holiday kind {kind!r} (known: {', '.join(sorted(HOLIDAY_KINDS))})"
        )
    if not name.strip():
        raise ValueError("a holiday needs a name")
    province = check_province(province)
    check_jalali_year(jalali_year_of(day))
    with session_scope(engine) as session:
        same = session.exec(
            select(HolidayRow).where(
                _matching(day, province, name.strip(), (kind,)),
            )
        ).first()
        if same is not None:
            return Added(_entry(same), created=False, recomputed=0)
        row = HolidayRow(
            day=day,
            name=name.strip(),
            kind=kind,
            province=province,
            estimated=estimated,
            confirmed=confirmed,
        )
        session.add(row)
        session.flush()
        entry = _entry(row)
    reason = f"{kind} {jalali_day(day)} {entry.name} added"
    return Added(entry, True, recompute_open_tickets(engine, since=day, reason=reason))


def _matching(day: date, province: str | None, name: str | None, kinds: Iterable[str]) -> Any:
    conditions = [
        col(HolidayRow.day) == day,
        col(HolidayRow.kind).in_(list(kinds)),
        col(HolidayRow.province).is_(None)
        if province is None
        else col(HolidayRow.province) == province,
    ]
    if name is not None:
        conditions.append(col(HolidayRow.name) == name)
    return and_(*conditions)


def remove_holidays(
    engine: Engine, day: date, *, province: str | None = None, name: str | None = None
) -> Edited[list[HolidayEntry]]:
    """Delete the day's holidays for ``province`` (None: the nationwide ones) and recompute."""
    province = check_province(province)
    where = _matching(day, province, name, HOLIDAY_KINDS)
    with session_scope(engine) as session:
        removed = [_entry(row) for row in session.exec(select(HolidayRow).where(where))]
        session.execute(delete(HolidayRow).where(where))
    if not removed:
        return Edited(removed, 0)
    reason = f"holiday {jalali_day(day)} removed"
    return Edited(removed, recompute_open_tickets(engine, since=day, reason=reason))


def fixed_holidays_on(engine: Engine, day: date, province: str | None = None) -> list[HolidayEntry]:
    """The law's fixed holidays on ``day`` (they need no confirmation and never move)."""
    province = check_province(province)
    where = _matching(day, province, None, ("fixed",))
    with Session(engine) as session:
        return [_entry(row) for row in session.exec(select(HolidayRow).where(where))]


def confirm_holidays(
    engine: Engine, day: date, *, province: str | None = None, name: str | None = None
) -> Edited[int]:
    """Mark the day's lunar holidays, added holidays and closures as confirmed (fixed days need
    no word) and recompute (a confirmation moves no day, but the rule is kept: always)."""
    province = check_province(province)
    where = _matching(day, province, name, MOVABLE_KINDS)
    with session_scope(engine) as session:
        result = session.execute(
            update(HolidayRow).where(where).values(confirmed=True, updated_at=utcnow())
        )
        count = int(result.rowcount)  # type: ignore[attr-defined]
    if not count:
        return Edited(0, 0)
    reason = f"holiday {jalali_day(day)} confirmed"
    return Edited(count, recompute_open_tickets(engine, since=day, reason=reason))


def move_holidays(
    engine: Engine,
    day: date,
    to: date,
    *,
    province: str | None = None,
    name: str | None = None,
) -> Edited[int]:
    """Move the day's lunar holidays and closures to ``to`` (moon sighting), confirming them,
    and recompute.  Fixed Jalali holidays are law and never move; a Nowruz day that is also
    Eid keeps Nowruz."""
    province = check_province(province)
    check_jalali_year(jalali_year_of(to))
    where = _matching(day, province, name, MOVABLE_KINDS)
    with session_scope(engine) as session:
        result = session.execute(
            update(HolidayRow).where(where).values(day=to, confirmed=True, updated_at=utcnow())
        )
        count = int(result.rowcount)  # type: ignore[attr-defined]
    if not count:
        return Edited(0, 0)
    reason = f"holiday {jalali_day(day)} moved to {jalali_day(to)}"
    return Edited(count, recompute_open_tickets(engine, since=min(day, to), reason=reason))


# Thursday rules ----------------------------------------------------------------------------------


def thursday_rules(engine: Engine) -> list[ThursdayRule]:
    """The stored decrees, oldest first; none stored means the default (closed)."""
    with Session(engine) as session:
        rows = session.exec(select(ThursdayRuleRow).order_by(col(ThursdayRuleRow.effective_from)))
        return [ThursdayRule(r.effective_from, r.open, r.opens, r.closes) for r in rows]


def set_thursday_rule(engine: Engine, rule: ThursdayRule) -> Edited[ThursdayRule]:
    """Store a decree, replacing one with the same effective date, and recompute."""
    check_jalali_year(jalali_year_of(rule.effective_from))
    with session_scope(engine) as session:
        row = session.exec(
            select(ThursdayRuleRow).where(
                col(ThursdayRuleRow.effective_from) == rule.effective_from
            )
        ).first()
        if row is None:
            row = ThursdayRuleRow(effective_from=rule.effective_from)
        row.open, row.opens, row.closes = rule.open, rule.opens, rule.closes
        row.updated_at = utcnow()
        session.add(row)
    reason = f"Thursday rule from {jalali_day(rule.effective_from)} set"
    return Edited(rule, recompute_open_tickets(engine, since=rule.effective_from, reason=reason))


def remove_thursday_rule(engine: Engine, effective_from: date) -> Edited[int]:
    """Delete the decree of ``effective_from`` and recompute."""
    with session_scope(engine) as session:
        result = session.execute(
            delete(ThursdayRuleRow).where(col(ThursdayRuleRow.effective_from) == effective_from)
        )
        count = int(result.rowcount)  # type: ignore[attr-defined]
    if not count:
        return Edited(0, 0)
    reason = f"Thursday rule from {jalali_day(effective_from)} removed"
    return Edited(count, recompute_open_tickets(engine, since=effective_from, reason=reason))


# The calendar ------------------------------------------------------------------------------------


def load_calendar(engine: Engine, today: date | None = None, *, seed: bool = True) -> WorkCalendar:
    """The calendar as stored, seeding this and next Jalali year first (``seed``)."""
    if seed:
        ensure_seeded(engine, today or tehran_today())
    with Session(engine) as session:
        holidays = [_entry(row).as_holiday() for row in session.exec(select(HolidayRow))]
    rules = thursday_rules(engine) or list(DEFAULT_THURSDAY_RULES)
    return WorkCalendar(holidays, rules)


def calendar_fingerprint(engine: Engine) -> tuple[Any, ...]:
    """Changes whenever a holiday or Thursday rule is added, removed or edited (cheap to ask)."""
    with Session(engine) as session:
        holidays = session.execute(
            select(func.count(), func.max(HolidayRow.updated_at)).select_from(HolidayRow)
        ).one()
        rules = session.execute(
            select(func.count(), func.max(ThursdayRuleRow.updated_at)).select_from(ThursdayRuleRow)
        ).one()
    return (*holidays, *rules)


class CachedCalendar:
    """The database calendar for one process: reloaded when the data or the Jalali year changes.

    Asking the database costs one small query every ``check_every`` seconds, so a closure the
    CLI adds reaches new tickets on every node within that time.  When the database cannot be
    reached the last calendar is kept (or, before any, the seeded one), because a caller's
    ticket is spooled with its deadline rather than refused.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        check_every: float = 10.0,
        clock: Callable[[], float] = monotonic_time.monotonic,
    ) -> None:
        self._engine = engine
        self._check_every = check_every
        self._clock = clock
        self._lock = threading.Lock()
        self._calendar: WorkCalendar | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._year: int | None = None
        self._checked = float("-inf")

    def invalidate(self) -> None:
        with self._lock:
            self._checked = float("-inf")
            self._fingerprint = None

    def get(self, now: datetime | None = None) -> WorkCalendar:
        today = tehran_today(now)
        year = jalali_year_of(today)
        with self._lock:
            fresh = self._clock() - self._checked < self._check_every
            if self._calendar is not None and fresh and self._year == year:
                return self._calendar
            try:
                fingerprint = calendar_fingerprint(self._engine)
                if self._calendar is None or fingerprint != self._fingerprint or self._year != year:
                    self._calendar = load_calendar(self._engine, today)
                    self._fingerprint = calendar_fingerprint(self._engine)
                    self._year = year
                self._checked = self._clock()
            except SQLAlchemyError:
                # Back off for check_every: a caller must not wait for every retry.
                log.warning("could not read the calendar; using the last one", exc_info=True)
                self._checked = self._clock()
                if self._calendar is None:
                    self._calendar = WorkCalendar(seed_current_and_next(today))
                    self._year = year  # the fingerprint stays None: reload once reachable
            return self._calendar


class SlaClock:
    """A ticket's deadlines on the database calendar and the category policies.

    Callable like ``Services.deadline`` (the resolution deadline only) and, through
    ``deadlines``, what ``TicketService`` uses to set every clock at creation and after a pause.
    """

    def __init__(self, calendars: CachedCalendar, policies: Mapping[str, SlaPolicy]) -> None:
        self.calendars = calendars
        self.policies = policies

    def deadlines(
        self,
        category: str,
        province: str,
        created_utc: datetime,
        paused: Sequence[Pause] = (),
    ) -> Deadlines:
        calendar = self.calendars.get()
        return deadlines(created_utc, category, province, calendar, self.policies, paused)

    def __call__(self, category: str, province: str, created_utc: datetime) -> datetime | None:
        due = self.deadlines(category, province, created_utc).resolution_due
        return as_aware(due)


# Keeping open tickets' deadlines in step ---------------------------------------------------------


def recompute_open_tickets(
    engine: Engine,
    calendar: WorkCalendar | None = None,
    policies: Mapping[str, SlaPolicy] | None = None,
    *,
    since: date | None = None,
    reason: str = "the calendar changed",
    batch_size: int = 1000,
) -> int:
    """Rewrite the deadlines of unfinished tickets on ``calendar`` (default: the stored one)
    and ``policies`` (default: the categories file); returns how many tickets changed.

    ``since``: the first day the change touches (see ``ivr.tickets.clocks.recompute_deadlines``,
    which does the writing: the tickets' own module).
    """
    calendar = calendar or load_calendar(engine)
    policies = policies if policies is not None else load_policies()

    def deadlines_of(
        category: str, province: str, created_utc: datetime, pauses: Sequence[Pause]
    ) -> Deadlines:
        return deadlines(created_utc, category, province, calendar, policies, pauses)

    start = None if since is None else day_start_utc(since)
    return recompute_deadlines(
        engine, deadlines_of, since=start, reason=reason, batch_size=batch_size
    )


def working_deadline(
    engine: Engine, start_utc: datetime, n: int, province: str, *, max_years: int = 4
) -> tuple[datetime, list[int]]:
    """The close of the N-th working day after ``start_utc`` on the stored calendar (naive UTC),
    and the Jalali years it had to seed first: a deadline that runs into a year whose holidays
    were never seeded would otherwise count that year's Nowruz as working days."""
    seeded_now: list[int] = []
    for _ in range(max_years + 1):
        calendar = load_calendar(engine)
        due = calendar.add_working_days(start_utc, n, province)
        first = jalali_year_of(calendar.local_day(start_utc))
        last = jalali_year_of(calendar.local_day(due))
        missing = sorted(set(range(first, last + 1)) - seeded_years(engine))
        if not missing:
            return due, seeded_now
        for year in missing:
            check_jalali_year(year)
        seed_years(engine, missing)
        seeded_now += missing
    raise ValueError(f"the deadline runs more than {max_years} Jalali years ahead")


# Reading dates as people type them ---------------------------------------------------------------


def parse_day(text: str) -> date:
    """``1405/02/10`` (Jalali), ``2026-04-30`` (ISO), Persian or ASCII digits, / or - between.

    A year below 1700 is Jalali: no Gregorian date a 124 ticket needs is that old. Days outside
    ``FIRST_DAY``–``LAST_DAY`` are refused, so a day after or before one is still a date.
    """
    cleaned = normalize_digits(text).strip().replace("/", "-")
    try:
        year, month, day = (int(part) for part in cleaned.split("-"))
    except ValueError:
        raise ValueError(f"not a date: {text!r} (try 1405/02/10 or 2026-04-30)") from None
    try:
        found = (
            jdatetime.date(year, month, day).togregorian()
            if year < 1700
            else date(year, month, day)
        )
    except (ValueError, OverflowError) as error:
        raise ValueError(f"not a date: {text!r} ({error})") from None
    if not FIRST_DAY <= found <= LAST_DAY:
        raise ValueError(f"not a date: {text!r} (from {_DAYS_SPAN})")
    return found


FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2199, 12, 31)
"""The days a date typed into ivr124 may name: wide enough for any ticket and calendar."""
_DAYS_SPAN = (
    f"{jdatetime.date.fromgregorian(date=FIRST_DAY):%Y/%m/%d} to "
    f"{jdatetime.date.fromgregorian(date=LAST_DAY):%Y/%m/%d}, {FIRST_DAY} to {LAST_DAY}"
)


def parse_moment(text: str) -> datetime:
    """A date as in ``parse_day`` with an optional ``HH:MM`` (Tehran); no time means noon."""
    parts = normalize_digits(text).strip().replace("T", " ").split()
    if not parts or len(parts) > 2:
        raise ValueError(f"not a date and time: {text!r}")
    clock = time(12, 0)
    if len(parts) == 2:
        clock = time.fromisoformat(parts[1])
    return datetime.combine(parse_day(parts[0]), clock, tzinfo=TEHRAN).astimezone(UTC)
