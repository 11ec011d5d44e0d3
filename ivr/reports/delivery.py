"""Mailing the nightly reports through the outbox, once per day and scope, late rather than never.

Each province's report goes to its supervisors, the national one to the national list
(``ivr.supervisors``): an HTML body with the key figures, the PDF and the CSV attached. A row of
``report_delivery`` (day, scope), inserted in the same transaction as the mails, is what makes a
day's report go once: a second node, a restart or a retried run finds the row and queues nothing.
This module is the only writer of that table.

Which days are due (:func:`due_days`): every day whose report time (``IVR_SCHEDULER_REPORT_TIME``,
Tehran) has passed and whose national report has not gone, back to the last one sent and at most
``IVR_REPORT_CATCHUP_DAYS`` days: a day missed while no node led is sent late, not skipped. On a
database that never sent one, only the latest due day is sent, not a week of old reports.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from ivr.calendar.offices import MINISTRY_OFFICE
from ivr.clock import TEHRAN, as_aware, fa_digits, tehran_date, utcnow
from ivr.notify import queue_mails
from ivr.reports.definitions import report_words
from ivr.reports.figures import provinces_of_day
from ivr.reports.render import jalali_date, render_report, scope_name
from ivr.reports.store import NATIONAL, StoredReport, jalali_folder, write_report
from ivr.settings import Settings
from ivr.supervisors import load_recipients
from ivr.tickets.models import ReportDelivery

log = logging.getLogger(__name__)

DELIVERY = ReportDelivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Delivered:
    day: date
    scope: str
    report: StoredReport
    recipients: tuple[str, ...]
    queued: bool
    """False: this day's report for the scope had been queued before (nothing queued now)."""


def report_moment(day: date, report_time: str) -> datetime:
    """Aware UTC of the day's report time in Tehran."""
    hour, minute = (int(part) for part in report_time.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=TEHRAN).astimezone(TEHRAN)


def latest_due_day(now: datetime, report_time: str) -> date:
    """The newest day whose report time has passed at ``now``."""
    today = tehran_date(now)
    return today if as_aware(now) >= report_moment(today, report_time) else today - timedelta(1)


def due_days(engine: Engine, now: datetime, report_time: str, catchup_days: int) -> list[date]:
    """The days to send now, oldest first (see the module's docstring)."""
    latest = latest_due_day(now, report_time)
    with engine.connect() as connection:
        last = connection.execute(
            select(func.max(DELIVERY.c.day)).where(DELIVERY.c.scope == NATIONAL)
        ).scalar_one()
        if last is None:
            return [latest]
        first = max(last + timedelta(1), latest - timedelta(catchup_days))
        days = [first + timedelta(n) for n in range((latest - first).days + 1)]
        sent = set(
            connection.execute(
                select(DELIVERY.c.day).where(DELIVERY.c.scope == NATIONAL, DELIVERY.c.day >= first)
            ).scalars()
        )
    return [d for d in days if d not in sent]


def _claim(connection: Connection, day: date, scope: str, recipients: int) -> bool:
    """Insert the day's row; False when it was there already (another node, an earlier run)."""
    values = {"day": day, "scope": scope, "queued_at": utcnow(), "recipients": recipients}
    dialect = connection.dialect.name
    insert_of = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = (
        insert_of(DELIVERY).values(values).on_conflict_do_nothing().returning(DELIVERY.c.day)
    )
    return connection.execute(statement).first() is not None


def _mails(report: StoredReport, recipients: tuple[str, ...], sender: str) -> list[dict[str, Any]]:
    words = report_words().text
    figures = report.figures
    scope = figures.province or NATIONAL
    subject = f"{words['mail_subject']} — {scope_name(figures.province)} — {jalali_date(figures)}"
    body_html = render_report(figures, full=False)
    lines = [f"{words['title']} — {scope_name(figures.province)} — {jalali_date(figures)}"]
    lines.append(words["mail_attached"])
    attachments = json.dumps([str(report.pdf), str(report.csv)])
    now = utcnow()
    return [
        {
            "ticket_id": None,
            "step": f"report-{jalali_folder(figures.day)}-{scope}"[:32],
            "recipient": address,
            "province": figures.province or MINISTRY_OFFICE,
            "sender": sender,
            "subject": subject,
            "body": fa_digits("\n".join(lines)) + "\n",
            "body_html": body_html,
            "created_at": now,
            "not_before": now,
            "attempts": 0,
            "attachments": attachments,
            "office_hours": False,
        }
        for address in recipients
    ]


def deliver(
    engine: Engine,
    settings: Settings,
    day: date,
    province: str | None,
    *,
    again: bool = False,
) -> Delivered:
    """Write the scope's report and queue its mails, unless they were queued before.

    ``again`` (``ivr report --send``): queue them even so, and say it was asked for.
    """
    scope = province or NATIONAL
    report = write_report(
        engine,
        settings.reports_dir,
        day,
        province,
        service_level_s=settings.report_service_level_seconds,
    )
    with Session(engine) as session:
        recipients = load_recipients(session).by_province.get(province, ())
    mails = _mails(report, recipients, settings.mail_from)
    with engine.begin() as connection:
        claimed = _claim(connection, day, scope, len(recipients))
        queued = claimed or again
        if queued:
            queue_mails(connection, mails)
    if queued:
        log.info("report %s %s queued for %d recipients", day, scope, len(recipients))
    return Delivered(day, scope, report, recipients, queued)


def deliver_day(engine: Engine, settings: Settings, day: date) -> list[Delivered]:
    """Every province with supervisors or with calls or tickets that day, then the national one
    (last: its row says the whole day is done)."""
    with Session(engine) as session:
        with_supervisors = {p for p in load_recipients(session).by_province if p is not None}
    provinces = sorted(with_supervisors | set(provinces_of_day(engine, day)))
    done = [deliver(engine, settings, day, province) for province in provinces]
    done.append(deliver(engine, settings, day, None))
    return done


def send_due_reports(engine: Engine, settings: Settings, now: datetime | None = None) -> list[date]:
    """The nightly job's work: every due day's reports, oldest first; returns the days done."""
    now = now or utcnow()
    days = due_days(engine, now, settings.scheduler_report_time, settings.report_catchup_days)
    for day in days:
        deliver_day(engine, settings, day)
        log.info("nightly reports of %s (%s) done", day, jalali_folder(day))
    return days
