"""The overdue watch: 75 % warnings and the escalation ladder, one idempotent pass a minute.

A ticket past its resolution deadline goes to level 1 (its province's supervisors are told); if
it is still open ``level2_after_days`` working days later, to level 2 (the ministry's national
supervisors).  Each batch of tickets is one transaction: per kind of step a conditional
``UPDATE … WHERE id IN (…) AND escalation_level = 0 … RETURNING id`` that only the first runner
can win, then the history lines and the e-mails queued in the outbox (``notification``, UNIQUE
per ticket, step and recipient) for the ids it returned.  Running the pass twice, on two nodes
at once, or again after a crash therefore does every step exactly once.  The e-mails are sent
by ``ivr.notify.send_due``, inside office hours only.

Only tickets whose ``sla_check_at`` has come are read, oldest first and in batches (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so nodes split the work), so a pass over a million tickets touches
just the few with something due.
"""

from __future__ import annotations

import html
import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from ivr.calendar import SlaPolicy, WorkCalendar
from ivr.calendar.store import load_calendar
from ivr.clock import as_aware, fa_digits, jalali, jalali_words, tehran_today, utcnow
from ivr.provinces import load_province
from ivr.tickets.db import session_scope
from ivr.tickets.models import (
    OPEN_STATUSES,
    Notification,
    Supervisor,
    Ticket,
    TicketEvent,
)

log = logging.getLogger(__name__)

NATIONAL_OFFICE = "tehran"
"""Whose office hours hold a national supervisor's mail: the ministry sits in Tehran.  Any
province gives the same hours unless it has a closure of its own; Tehran's are the ministry's."""
DEFAULT_LEVEL2_DAYS = 3
DEFAULT_MAIL_FROM = "124@localhost"
RECHECK = timedelta(minutes=1)
"""The soonest a ticket is looked at again: every ticket read leaves the due set, so a pass ends."""
CATALOG = "catalog.toml"
"""The prompt catalogue's file with the category names, in ``IVR_PROMPTS_DIR``."""

WARNING_CLOCKS = {
    # clock name -> (moment column, "done" column)
    "first_response": ("first_response_warn_at", "first_response_warned_at"),
    "resolution": ("resolution_warn_at", "resolution_warned_at"),
}
DUE_COLUMN = {"first_response": "first_response_due_at", "resolution": "due_at"}


def step_name(level: int) -> str:
    """The outbox step of an escalation level: one mail per recipient per level, ever."""
    return f"escalation-{level}"


@dataclass
class WatchReport:
    """What one pass did (the scheduler logs it)."""

    checked: int = 0
    warnings: int = 0
    level1: int = 0
    level2: int = 0
    queued: int = 0
    """Notifications put in the outbox."""
    lost_races: int = 0
    """Steps another process made first (counted, not repeated)."""


@dataclass(frozen=True)
class Step:
    kind: str
    """warning or escalate."""
    clock: str = ""
    level: int = 0


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    next_check: datetime | None


@dataclass(frozen=True)
class Recipients:
    """Active supervisors by province (None: national), read once per pass."""

    by_province: Mapping[str | None, tuple[str, ...]] = field(default_factory=dict)

    def for_level(self, level: int, province: str) -> tuple[tuple[str, ...], str, str]:
        """Addresses, the office whose hours they keep, and a note when level 1 falls back."""
        national = self.by_province.get(None, ())
        if level >= 2:
            return national, NATIONAL_OFFICE, ""
        local = self.by_province.get(province, ())
        if local:
            return local, province, ""
        return national, NATIONAL_OFFICE, f"no supervisor for {province}: sent to national"


def load_recipients(session: Session) -> Recipients:
    found: dict[str | None, list[str]] = {}
    rows = session.exec(
        select(Supervisor.province, Supervisor.email)
        .where(col(Supervisor.active).is_(True))
        .order_by(col(Supervisor.id))
    )
    for province, email in rows:
        found.setdefault(province, []).append(email)
    return Recipients({k: tuple(v) for k, v in found.items()})


def add_supervisor(engine: Engine, name: str, email: str, province: str | None = None) -> int:
    """Register a supervisor (``province`` None: national, at the ministry)."""
    with session_scope(engine) as session:
        row = Supervisor(name=name, email=email.strip(), province=province)
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


# Deciding -----------------------------------------------------------------------------------------


def plan(row: Any, now: datetime, calendar: WorkCalendar, level2_after_days: int) -> Plan:
    """The steps due for a ticket-like row at ``now`` and when to look again (pure)."""
    if row.status not in OPEN_STATUSES:
        return Plan((), None)  # finished or paused: a status change reschedules it
    steps: list[Step] = []
    later: list[datetime] = []
    for clock, (moment_column, done_column) in WARNING_CLOCKS.items():
        moment = as_aware(getattr(row, moment_column))
        if moment is None or getattr(row, done_column) is not None:
            continue
        if clock == "first_response" and row.responded_at is not None:
            continue
        if clock == "resolution" and row.escalation_level > 0:
            continue
        if moment <= now:
            steps.append(Step("warning", clock))
        else:
            later.append(moment)
    level, escalated_at = row.escalation_level, as_aware(row.escalated_at)
    due = as_aware(row.due_at)
    if level == 0 and due is not None:
        if due <= now:
            steps.append(Step("escalate", level=1))
            level, escalated_at = 1, now
        else:
            later.append(due)
    if level == 1 and escalated_at is not None:
        level2_at = as_aware(
            calendar.add_working_days(escalated_at, level2_after_days, row.province)
        )
        assert level2_at is not None
        if level2_at <= now:
            steps.append(Step("escalate", level=2))
        else:
            later.append(level2_at)
    next_check = max(min(later), now + RECHECK) if later else None
    return Plan(tuple(steps), next_check)


# Acting -------------------------------------------------------------------------------------------


def watch(
    engine: Engine,
    calendar: WorkCalendar | None = None,
    policies: Mapping[str, SlaPolicy] | None = None,
    now: datetime | None = None,
    *,
    level2_after_days: int | None = None,
    mail_from: str | None = None,
    settings: Any = None,
    batch_size: int = 500,
    max_batches: int = 1000,
) -> WatchReport:
    """One pass of the overdue watch at ``now``; safe to repeat and to run on several nodes.

    ``calendar`` None: the database calendar.  ``level2_after_days`` and ``mail_from`` default to
    ``settings`` (``escalation_level2_days``, ``mail_from``) when given.  ``policies`` is accepted
    for the agreed signature; the watch needs none, because each ticket stores its deadlines.
    """
    del policies
    now = as_aware(now) or utcnow()
    if calendar is None:
        calendar = load_calendar(engine, tehran_today(now))
    if level2_after_days is None:
        level2_after_days = getattr(settings, "escalation_level2_days", DEFAULT_LEVEL2_DAYS)
    if mail_from is None:
        mail_from = getattr(settings, "mail_from", DEFAULT_MAIL_FROM)
    report = WatchReport()
    with Session(engine) as session:
        recipients = load_recipients(session)
    for _ in range(max_batches):
        with engine.begin() as connection:
            rows = connection.execute(
                select(*_COLUMNS)
                .where(col(Ticket.sla_check_at) <= now)
                .order_by(col(Ticket.sla_check_at), col(Ticket.id))
                .limit(batch_size)
                .with_for_update(skip_locked=True)  # PostgreSQL: nodes share the work
            ).all()
            if not rows:
                break
            batch = _Batch(connection, now, mail_from, recipients, calendar)
            batch.run([(row, plan(row, now, calendar, level2_after_days)) for row in rows], report)
    else:
        log.warning("watch stopped after %d batches; the rest waits for the next pass", max_batches)
    if report.warnings or report.level1 or report.level2:
        log.info("watch: %s", report)
    return report


_COLUMNS = (
    Ticket.id,
    Ticket.tracking,
    Ticket.category,
    Ticket.province,
    Ticket.status,
    Ticket.created_at,
    Ticket.due_at,
    Ticket.first_response_due_at,
    Ticket.first_response_warn_at,
    Ticket.resolution_warn_at,
    Ticket.responded_at,
    Ticket.first_response_warned_at,
    Ticket.resolution_warned_at,
    Ticket.escalation_level,
    Ticket.escalated_at,
)
TICKET = Ticket.__table__  # type: ignore[attr-defined]
EVENT = TicketEvent.__table__  # type: ignore[attr-defined]
OUTBOX = Notification.__table__  # type: ignore[attr-defined]


@dataclass
class _Batch:
    """One transaction's worth of tickets, acted on set by set.

    Each kind of step is one conditional ``UPDATE … WHERE id IN (…) AND <not done yet>
    RETURNING id``: the ids it returns are the tickets this process won; only those get a
    history line and mails.  A ticket that lost any step to another process is left to it.
    """

    connection: Connection
    now: datetime
    mail_from: str
    recipients: Recipients
    calendar: WorkCalendar

    def run(self, planned: list[tuple[Any, Plan]], report: WatchReport) -> None:
        report.checked += len(planned)
        won: dict[Step, set[int]] = {}
        wanted: dict[Step, list[Any]] = {}
        for row, decided in planned:
            for step in decided.steps:
                wanted.setdefault(step, []).append(row)
        for step, rows in wanted.items():
            ids = sorted(r.id for r in rows)  # one lock order for every node
            won[step] = self._claim(step, ids)
            winners = [r for r in rows if r.id in won[step]]
            report.lost_races += len(rows) - len(winners)
            if step.kind == "warning":
                self._warned(step.clock, winners)
                report.warnings += len(winners)
            else:
                report.queued += self._escalated(step.level, winners)
                report.level1 += len(winners) if step.level == 1 else 0
                report.level2 += len(winners) if step.level == 2 else 0
        reschedule = [
            {"b_id": row.id, "b_check": decided.next_check}
            for row, decided in planned
            if all(row.id in won[step] for step in decided.steps)
        ]
        if reschedule:
            self.connection.execute(
                update(TICKET)
                .where(TICKET.c.id == bindparam("b_id"))
                .values(sla_check_at=bindparam("b_check")),
                reschedule,
            )

    def _claim(self, step: Step, ids: list[int]) -> set[int]:
        conditions = [TICKET.c.id.in_(ids), TICKET.c.status.in_(OPEN_STATUSES)]
        if step.kind == "warning":
            done_column = WARNING_CLOCKS[step.clock][1]
            conditions.append(TICKET.c[done_column].is_(None))
            if step.clock == "first_response":
                conditions.append(TICKET.c.responded_at.is_(None))
            values: dict[str, Any] = {done_column: self.now}
        else:
            conditions.append(TICKET.c.escalation_level == step.level - 1)
            values = {"escalation_level": step.level, "escalated_at": self.now}
            values["updated_at"] = self.now
        result = self.connection.execute(
            update(TICKET).where(*conditions).values(values).returning(TICKET.c.id)
        )
        return set(result.scalars())

    def _warned(self, clock: str, rows: list[Any]) -> None:
        if not rows:
            return
        self.connection.execute(
            insert(EVENT),
            [
                {
                    "ticket_id": row.id,
                    "at": self.now,
                    "kind": "warning",
                    "old_value": None,
                    "new_value": clock,
                    "actor": "system",
                    "note": f"75% of the {clock.replace('_', ' ')} time used; "
                    f"due {jalali(getattr(row, DUE_COLUMN[clock]))}",
                }
                for row in rows
            ],
        )

    def _escalated(self, level: int, rows: list[Any]) -> int:
        """History lines and queued mails for the tickets that reached ``level``."""
        if not rows:
            return 0
        events, mails = [], []
        for row in rows:
            addresses, office, fallback = self.recipients.for_level(level, row.province)
            notes = [f"resolution deadline {jalali(row.due_at)} passed"]
            if level == 2:
                notes = [f"still open since level 1 on {jalali(row.escalated_at)}"]
            notes.append(f"notified: {', '.join(addresses)}" if addresses else "nobody to notify")
            if fallback:
                notes.append(fallback)
            events.append(
                {
                    "ticket_id": row.id,
                    "at": self.now,
                    "kind": "escalated",
                    "old_value": str(level - 1),
                    "new_value": str(level),
                    "actor": "system",
                    "note": "; ".join(notes),
                }
            )
            if not addresses:
                log.error("ticket %s reached level %d with nobody to notify", row.tracking, level)
                continue
            subject, text, markup = escalation_mail(row, level, self.now)
            not_before = as_aware(self.calendar.next_opening(self.now, office))
            mails += [
                {
                    "ticket_id": row.id,
                    "step": step_name(level),
                    "recipient": address,
                    "province": office,
                    "sender": self.mail_from,
                    "subject": subject,
                    "body": text,
                    "body_html": markup,
                    "created_at": self.now,
                    "not_before": not_before,
                    "attempts": 0,
                }
                for address in addresses
            ]
        self.connection.execute(insert(EVENT), events)
        if mails:
            self.connection.execute(_insert_new(self.connection), mails)
        return len(mails)


def _insert_new(connection: Connection) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: the outbox's unique step is the last line of defence."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(OUTBOX).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(OUTBOX).on_conflict_do_nothing()
    return insert(OUTBOX)


# The mail, in Persian ----------------------------------------------------------------------------


@cache
def category_names() -> dict[str, str]:
    """Category id → its Persian name, from the prompt catalogue (the caller's own words)."""
    try:
        from ivr.settings import get_settings

        path = get_settings().prompts_dir / CATALOG
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {k: v for k, v in data.get("category", {}).items() if isinstance(v, str)}


def province_name(code: str) -> str:
    """The province's Persian name from its data file; its code when there is none yet."""
    try:
        return load_province(code).name
    except (OSError, KeyError):
        return code


LEVEL_TEXT = {1: "سرپرستان استان", 2: "ستاد وزارت صنعت، معدن و تجارت"}
SUBJECT_REASON = {1: "مهلت پاسخ گذشته است", 2: "پس از ارجاع به استان هنوز باز است"}


def escalation_mail(row: Any, level: int, now: datetime) -> tuple[str, str, str]:
    """Subject, plain text and RTL HTML of the mail telling supervisors about an escalation."""
    tracking = fa_digits(row.tracking)
    category = category_names().get(row.category, row.category)
    province = province_name(row.province)
    subject = f"ارجاع درخواست {tracking} به سطح {fa_digits(str(level))}: {SUBJECT_REASON[level]}"
    facts = [
        ("کد رهگیری", tracking),
        ("موضوع", category),
        ("استان", province),
        ("ثبت", jalali_words(row.created_at)),
        ("مهلت پاسخ", jalali_words(row.due_at)),
    ]
    if level == 2:
        facts.append(("ارجاع به سطح ۱", jalali_words(row.escalated_at)))
    facts.append((f"ارجاع به سطح {fa_digits(str(level))}", jalali_words(now)))
    if level == 1:
        lead = (
            f"درخواست شماره {tracking} در سامانه ۱۲۴ تا پایان مهلت پاسخ داده نشده و "
            f"به {LEVEL_TEXT[1]} ارجاع شد. لطفاً پیگیری کنید."
        )
    else:
        lead = (
            f"درخواست شماره {tracking} در سامانه ۱۲۴ پس از ارجاع به سرپرستان استان هنوز باز "
            f"است و به {LEVEL_TEXT[2]} ارجاع شد. لطفاً پیگیری کنید."
        )
    text = "\n".join([lead, "", *(f"{name}: {value}" for name, value in facts), "", _SIGNATURE])
    rows = "".join(
        f'<tr><th style="text-align:right;padding:2px 8px">{html.escape(name)}</th>'
        f'<td style="padding:2px 8px"><bdi>{html.escape(value)}</bdi></td></tr>'
        for name, value in facts
    )
    markup = (
        '<!DOCTYPE html>\n<html lang="fa" dir="rtl"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>"
        '<body dir="rtl" style="direction:rtl;text-align:right;'
        "font-family:Vazirmatn,Tahoma,'Noto Naskh Arabic',sans-serif\">"
        f"<p>{html.escape(lead)}</p><table>{rows}</table>"
        f"<p>{html.escape(_SIGNATURE)}</p></body></html>\n"
    )
    return subject, text, markup


_SIGNATURE = "سامانه پاسخگویی ۱۲۴ وزارت صنعت، معدن و تجارت (پیام خودکار)"
