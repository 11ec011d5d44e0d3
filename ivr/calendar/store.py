"""The working-day calendar as rows an administrator edits, and deadlines kept in step with it.

``ivr.calendar`` itself is pure; this module is its database side: holidays, closures and
Thursday decrees live in tables (seeded once per Jalali year from ``seed_current_and_next``),
are loaded into a ``WorkCalendar``, and every change is followed by
``recompute_open_tickets`` so the deadline a caller hears is the one the calendar gives today.
"""

from __future__ import annotations

import logging
import threading
import time as monotonic_time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

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
from ivr.calendar.policy import Deadlines, SlaPolicy, deadlines
from ivr.calendar.workdays import (
    DEFAULT_THURSDAY_RULES,
    HOLIDAY_KINDS,
    Holiday,
    ThursdayRule,
    WorkCalendar,
)
from ivr.clock import TEHRAN, as_aware, day_start_utc, tehran_today, utcnow
from ivr.speech import normalize_digits
from ivr.tickets.db import session_scope
from ivr.tickets.models import (
    UNFINISHED_STATUSES,
    HolidayRow,
    HolidaySeed,
    Status,
    ThursdayRuleRow,
    Ticket,
    TicketEvent,
    deadline_columns,
    next_sla_check,
    pauses_from_history,
)

log = logging.getLogger(__name__)

Pause = tuple[datetime, datetime | None]


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
    """Seed this and next Jalali year's holidays unless already seeded; returns rows added.

    Idempotent and safe for several nodes at once: the ``holiday_seed`` row of a year is
    inserted with its holidays, and a second node's insert of the same year fails and is dropped.
    """
    year = jalali_year_of(today)
    added = 0
    for jalali_year in (year, year + 1):
        with Session(engine) as session:
            if session.get(HolidaySeed, jalali_year) is not None:
                continue
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
        first, after = jalali_year_bounds(jalali_year)
        statement = statement.where(col(HolidayRow.day) >= first, col(HolidayRow.day) < after)
    if province is not None:
        statement = statement.where(
            or_(col(HolidayRow.province).is_(None), col(HolidayRow.province) == province)
        )
    with Session(engine) as session:
        return [_entry(row) for row in session.exec(statement)]


def add_holiday(
    engine: Engine,
    day: date,
    name: str,
    *,
    kind: str = "lunar",
    province: str | None = None,
    estimated: bool = False,
    confirmed: bool = True,
) -> HolidayEntry:
    """Store a holiday or closure; an administrator's entry counts as confirmed."""
    if kind not in HOLIDAY_KINDS:
        raise ValueError(f"unknown holiday kind {kind!r}")
    if not name.strip():
        raise ValueError("a holiday needs a name")
    with session_scope(engine) as session:
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
        return _entry(row)


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
) -> list[HolidayEntry]:
    """Delete the day's holidays for ``province`` (None: the nationwide ones); returns them."""
    where = _matching(day, province, name, HOLIDAY_KINDS)
    with session_scope(engine) as session:
        removed = [_entry(row) for row in session.exec(select(HolidayRow).where(where))]
        session.execute(delete(HolidayRow).where(where))
        return removed


def confirm_holidays(
    engine: Engine, day: date, *, province: str | None = None, name: str | None = None
) -> int:
    """Mark the day's lunar holidays and closures as confirmed (fixed days need no word)."""
    where = _matching(day, province, name, ("lunar", "closure"))
    with session_scope(engine) as session:
        result = session.execute(
            update(HolidayRow).where(where).values(confirmed=True, updated_at=utcnow())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def move_holidays(
    engine: Engine,
    day: date,
    to: date,
    *,
    province: str | None = None,
    name: str | None = None,
) -> int:
    """Move the day's lunar holidays and closures to ``to`` (moon sighting), confirming them.

    Fixed Jalali holidays are law and never move; a Nowruz day that is also Eid keeps Nowruz.
    """
    where = _matching(day, province, name, ("lunar", "closure"))
    with session_scope(engine) as session:
        result = session.execute(
            update(HolidayRow).where(where).values(day=to, confirmed=True, updated_at=utcnow())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


# Thursday rules ----------------------------------------------------------------------------------


def thursday_rules(engine: Engine) -> list[ThursdayRule]:
    """The stored decrees, oldest first; none stored means the default (closed)."""
    with Session(engine) as session:
        rows = session.exec(select(ThursdayRuleRow).order_by(col(ThursdayRuleRow.effective_from)))
        return [ThursdayRule(r.effective_from, r.open, r.opens, r.closes) for r in rows]


def set_thursday_rule(engine: Engine, rule: ThursdayRule) -> None:
    """Store a decree, replacing one with the same effective date."""
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


def remove_thursday_rule(engine: Engine, effective_from: date) -> int:
    with session_scope(engine) as session:
        result = session.execute(
            delete(ThursdayRuleRow).where(col(ThursdayRuleRow.effective_from) == effective_from)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


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


def ticket_pauses(session: Session, ticket_ids: Sequence[int]) -> dict[int, list[Pause]]:
    """Each ticket's waiting-for-the-caller intervals, from its status history."""
    if not ticket_ids:
        return {}
    waiting = Status.WAITING_FOR_CALLER.value
    events = session.exec(
        select(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.old_value, TicketEvent.new_value)
        .where(col(TicketEvent.ticket_id).in_(ticket_ids), col(TicketEvent.kind) == "status")
        .where(or_(col(TicketEvent.old_value) == waiting, col(TicketEvent.new_value) == waiting))
    )
    changes: dict[int, list[tuple[datetime, str | None, str | None]]] = {}
    for ticket_id, at, old, new in events:
        changes.setdefault(ticket_id, []).append((at, old, new))
    return {tid: pauses_from_history(found) for tid, found in changes.items()}


_RECOMPUTED = (
    "due_at",
    "first_response_due_at",
    "first_response_warn_at",
    "resolution_warn_at",
    "sla_check_at",
)


def recompute_open_tickets(
    engine: Engine,
    calendar: WorkCalendar,
    policies: Mapping[str, SlaPolicy],
    *,
    since: date | None = None,
    batch_size: int = 1000,
) -> int:
    """Rewrite the deadlines of unfinished tickets; returns how many changed.

    ``since``: the first day the change touches.  A deadline before that day was reached over
    unchanged days and cannot move, so only tickets due on or after it (or without a deadline)
    are read.  Escalations already made stay: a later deadline does not take a step back.
    """
    statement = select(
        Ticket.id,
        Ticket.created_at,
        Ticket.category,
        Ticket.province,
        Ticket.status,
        Ticket.responded_at,
        Ticket.first_response_warned_at,
        Ticket.resolution_warned_at,
        Ticket.escalation_level,
        Ticket.escalated_at,
        *(getattr(Ticket, name) for name in _RECOMPUTED),
    ).where(col(Ticket.status).in_(UNFINISHED_STATUSES))
    if since is not None:
        start = day_start_utc(since)
        statement = statement.where(
            or_(
                col(Ticket.due_at).is_(None),
                col(Ticket.due_at) >= start,
                col(Ticket.first_response_due_at) >= start,
                col(Ticket.escalation_level) == 1,
            )
        )
    changed = 0
    last_id = 0
    while True:
        with session_scope(engine) as session:
            rows = session.execute(
                statement.where(col(Ticket.id) > last_id).order_by(col(Ticket.id)).limit(batch_size)
            ).all()
            if not rows:
                return changed
            last_id = rows[-1].id
            pauses = ticket_pauses(session, [r.id for r in rows])
            updates = []
            for row in rows:
                values = _recomputed(row, calendar, policies, pauses.get(row.id, ()))
                if any(values[name] != as_aware(getattr(row, name)) for name in _RECOMPUTED):
                    updates.append({"id": row.id, **values})
            if updates:
                session.execute(update(Ticket), updates)
            changed += len(updates)


def _recomputed(
    row: Any, calendar: WorkCalendar, policies: Mapping[str, SlaPolicy], pauses: Sequence[Pause]
) -> dict[str, datetime | None]:
    found = deadlines(row.created_at, row.category, row.province, calendar, policies, pauses)
    values = deadline_columns(found)
    merged = {name: getattr(row, name) for name in row._fields} | values
    values["sla_check_at"] = next_sla_check(_Row(merged))
    return values


class _Row:
    """Attribute access over a dict, for ``next_sla_check``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


# Reading dates as people type them ---------------------------------------------------------------


def parse_day(text: str) -> date:
    """``1405/02/10`` (Jalali), ``2026-04-30`` (ISO), Persian or ASCII digits, / or - between.

    A year below 1700 is Jalali: no Gregorian date a 124 ticket needs is that old.
    """
    cleaned = normalize_digits(text).strip().replace("/", "-")
    try:
        year, month, day = (int(part) for part in cleaned.split("-"))
    except ValueError:
        raise ValueError(f"not a date: {text!r} (try 1405/02/10 or 2026-04-30)") from None
    if year < 1700:
        return jdatetime.date(year, month, day).togregorian()
    return date(year, month, day)


def parse_moment(text: str) -> datetime:
    """A date as in ``parse_day`` with an optional ``HH:MM`` (Tehran); no time means noon."""
    parts = normalize_digits(text).strip().replace("T", " ").split()
    if not parts or len(parts) > 2:
        raise ValueError(f"not a date and time: {text!r}")
    clock = time(12, 0)
    if len(parts) == 2:
        clock = time.fromisoformat(parts[1])
    return datetime.combine(parse_day(parts[0]), clock, tzinfo=TEHRAN).astimezone(UTC)
