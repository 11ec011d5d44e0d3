"""Sending the outbox: e-mails through SMTP, only in office hours, never twice.

A queued mail (``notification`` row) goes out when its ``not_before`` has come and the office of
its recipient (``province``; national supervisors keep Tehran's hours) is open; otherwise it is
held until the next opening.  A row is claimed by setting ``sent_at`` in its own committed
UPDATE (``... WHERE sent_at IS NULL``) before the SMTP conversation starts: whichever node or
thread wins that UPDATE sends, and no other ever will, not even after a restart.  The price is
at-most-once: a process killed in the middle of the conversation leaves a mail marked sent that
may not have arrived (its ``attempts`` stays 0, which tells an auditor).  An SMTP error releases
the claim, counts the attempt and retries later with a growing pause; a 5xx reply gives up.

This module owns the ``notification`` table: the watch queues mails through ``queue_mails``,
and ``ivr outbox list|retry`` reads and resets them through ``list_outbox`` and ``retry_mail``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import mimetypes
import smtplib
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import Connection, Engine, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from ivr.calendar import WorkCalendar
from ivr.calendar.store import load_calendar
from ivr.clock import as_aware, tehran_today, utcnow
from ivr.tickets.db import MAX_ROW_ID, session_scope
from ivr.tickets.models import (
    Notification,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
RETRY_FIRST = timedelta(minutes=5)
RETRY_MOST = timedelta(hours=2)
SMTP_TIMEOUT_S = 10.0
SEND_BUDGET_S = 45.0
"""A call stops taking new rows after this, so the next minute's run is not held up."""
_PLAIN = {"synchronize_session": False}


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to hand mail over, from ``IVR_SMTP_URL``."""

    host: str
    port: int
    tls: str | None
    """``ssl`` (smtps://), ``starttls`` (smtp://…?starttls=true) or None."""
    username: str | None = None
    password: str | None = None


# The outbox --------------------------------------------------------------------------------------

OUTBOX = Notification.__table__  # type: ignore[attr-defined]
OUTBOX_STATES = ("pending", "sent", "failed")


def queue_mails(connection: Connection, mails: Iterable[Mapping[str, Any]]) -> None:
    """Put mails in the outbox in the caller's transaction; a step already queued for the
    same ticket and recipient is skipped (UNIQUE(ticket_id, step, recipient): ON CONFLICT DO
    NOTHING is the last line of defence against doing a step twice)."""
    rows = list(mails)
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(OUTBOX).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(OUTBOX).on_conflict_do_nothing()
    else:
        statement = insert(OUTBOX)
    connection.execute(statement, rows)


def mail_state(row: Notification, max_attempts: int = MAX_ATTEMPTS) -> str:
    """sent (handed to SMTP), failed (given up: a 5xx or too many attempts) or pending."""
    if row.sent_at is not None:
        return "sent"
    return "failed" if row.attempts >= max_attempts else "pending"


def list_outbox(engine: Engine, state: str | None = None, *, limit: int = 50) -> list[Notification]:
    """The newest mails first, optionally only those in ``state`` (``OUTBOX_STATES``)."""
    if state is not None and state not in OUTBOX_STATES:
        raise ValueError(f"unknown state {state!r} (known: {', '.join(OUTBOX_STATES)})")
    statement = select(Notification).order_by(
        col(Notification.created_at).desc(), col(Notification.id).desc()
    )
    if state == "sent":
        statement = statement.where(col(Notification.sent_at).is_not(None))
    elif state == "failed":
        statement = statement.where(
            col(Notification.sent_at).is_(None), col(Notification.attempts) >= MAX_ATTEMPTS
        )
    elif state == "pending":
        statement = statement.where(
            col(Notification.sent_at).is_(None), col(Notification.attempts) < MAX_ATTEMPTS
        )
    with Session(engine, expire_on_commit=False) as session:
        rows = list(session.exec(statement.limit(limit)))
        session.expunge_all()
        return rows


def retry_mail(engine: Engine, mail_id: int, now: datetime | None = None) -> Notification:
    """Give a failed mail a fresh start: attempts back to 0, due now (the next ``send_due``
    sends it, in office hours).  A sent mail is refused (``ValueError``), and so is a mail
    that is still pending: it is retried on its own."""
    now = as_aware(now) or utcnow()
    with session_scope(engine) as session:
        row = session.get(Notification, mail_id) if 0 < mail_id <= MAX_ROW_ID else None
        if row is None:
            raise LookupError(f"no mail {mail_id} in the outbox")
        state = mail_state(row)
        if state != "failed":
            raise ValueError(f"mail {mail_id} is {state}: only a failed mail is retried")
        row.attempts, row.not_before, row.last_error = 0, now, None
        session.add(row)
        session.flush()
        session.refresh(row)
        session.expunge(row)
        return row


# Sending -----------------------------------------------------------------------------------------


def parse_smtp_url(url: str) -> SmtpTarget:
    """``smtp://[user:pass@]host[:port][?starttls=true]`` or ``smtps://…`` (implicit TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"not an smtp:// or smtps:// URL: {url!r}")
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    tls: str | None = "ssl" if parts.scheme == "smtps" else None
    if tls is None and query.get("starttls") in ("1", "true", "yes"):
        tls = "starttls"
    return SmtpTarget(
        host=parts.hostname,
        port=parts.port or (465 if parts.scheme == "smtps" else 25),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def connect(target: SmtpTarget, timeout: float = SMTP_TIMEOUT_S) -> smtplib.SMTP:
    if target.tls == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=timeout)
        if target.tls == "starttls":
            client.starttls(context=ssl.create_default_context())
    if target.username:
        client.login(target.username, target.password or "")
    return client


def build_message(row: Notification, now: datetime) -> EmailMessage:
    """Plain text first, the RTL HTML as its alternative; a Message-ID fixed per outbox row."""
    message = EmailMessage()
    domain = row.sender.rpartition("@")[2] or "localhost"
    message["Subject"] = row.subject
    message["From"] = row.sender
    message["To"] = row.recipient
    message["Date"] = email.utils.format_datetime(now)
    message["Message-ID"] = f"<ivr124.notification.{row.id}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = "fa"
    message.set_content(row.body)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    for path in json.loads(row.attachments or "[]"):
        _attach(message, Path(path))
    return message


def _attach(message: EmailMessage, path: Path) -> None:
    """One file from ``attachments``, typed by its name (application/pdf, text/csv …)."""
    if not path.is_file():
        log.warning("attachment %s is gone; the mail goes without it", path)
        return
    kind, _ = mimetypes.guess_type(path.name)
    maintype, subtype = (kind or "application/octet-stream").split("/", 1)
    message.add_attachment(
        path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name
    )


def _may_send(row: Notification, calendar: WorkCalendar, now: datetime) -> bool:
    """Now, unless the mail waits for its recipient's office hours and they are closed."""
    return not row.office_hours or calendar.is_working_time(now, row.province)


def retry_delay(attempts: int) -> timedelta:
    """5 minutes, 10, 20 … at most 2 hours."""
    return min(RETRY_FIRST * 2 ** max(attempts - 1, 0), RETRY_MOST)


def send_due(
    engine: Engine,
    calendar: WorkCalendar | None = None,
    smtp_url: str | None = None,
    now: datetime | None = None,
    *,
    settings: Any = None,
    limit: int = 200,
    max_attempts: int = MAX_ATTEMPTS,
    timeout: float = SMTP_TIMEOUT_S,
    time_budget: float = SEND_BUDGET_S,
) -> int:
    """Send the mails due at ``now`` whose recipients' offices are open; returns how many.

    ``calendar`` None: the database calendar; ``smtp_url`` None: ``settings.smtp_url``.  With
    no SMTP URL nothing is sent and the mails stay queued.  Works through the queue ``limit``
    rows at a time for at most ``time_budget`` seconds (the watch runs every minute).
    """
    now = as_aware(now) or utcnow()
    if smtp_url is None:
        smtp_url = getattr(settings, "smtp_url", "")
    if not smtp_url:
        log.debug("no SMTP URL set: notifications stay queued")
        return 0
    target = parse_smtp_url(smtp_url)
    if calendar is None:
        calendar = load_calendar(engine, tehran_today(now))
    started = time.monotonic()
    sender = _Sender(engine, target, now, max_attempts, timeout)
    try:
        while time.monotonic() - started < time_budget:
            rows = _due(engine, now, max_attempts, limit)
            open_now = [r for r in rows if _may_send(r, calendar, now)]
            closed = [r for r in rows if not _may_send(r, calendar, now)]
            _hold(closed, calendar, now, engine)
            if not sender.send(open_now) or len(rows) < limit:
                break  # the server is gone, or the queue is empty: every row read has left it
    finally:
        sender.close()
    if sender.sent:
        log.info("sent %d notifications", sender.sent)
    return sender.sent


def _due(engine: Engine, now: datetime, max_attempts: int, limit: int) -> list[Notification]:
    with Session(engine, expire_on_commit=False) as session:
        rows = list(
            session.exec(
                select(Notification)
                .where(
                    col(Notification.sent_at).is_(None),
                    col(Notification.not_before) <= now,
                    col(Notification.attempts) < max_attempts,
                )
                .order_by(col(Notification.not_before), col(Notification.id))
                .limit(limit)
            )
        )
        session.expunge_all()
        return rows


class _Sender:
    """One SMTP connection, opened on the first mail, for one ``send_due`` call."""

    def __init__(
        self, engine: Engine, target: SmtpTarget, now: datetime, max_attempts: int, timeout: float
    ) -> None:
        self.engine, self.target, self.now = engine, target, now
        self.max_attempts, self.timeout = max_attempts, timeout
        self.client: smtplib.SMTP | None = None
        self.sent = 0

    def send(self, rows: list[Notification]) -> bool:
        """Send each row this process can claim; False once the server cannot be reached."""
        for row in rows:
            if not _claim(self.engine, row, self.now):
                continue  # another sender has it
            try:
                if self.client is None:
                    self.client = connect(self.target, self.timeout)
                self.client.send_message(build_message(row, self.now))
            except (smtplib.SMTPException, OSError) as error:
                _release(self.engine, row, self.now, error, self.max_attempts)
                if _connection_lost(error):
                    return False  # the rest keep their place in the queue untouched
                continue
            _delivered(self.engine, row)
            self.sent += 1
        return True

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (smtplib.SMTPException, OSError):
                self.client.close()


def _hold(rows: list[Notification], calendar: WorkCalendar, now: datetime, engine: Engine) -> None:
    """Outside office hours: wait for the recipient's next opening."""
    if not rows:
        return
    with session_scope(engine) as session:
        for row in rows:
            opening = as_aware(calendar.next_opening(now, row.province))
            session.execute(
                update(Notification)
                .where(col(Notification.id) == row.id, col(Notification.sent_at).is_(None))
                .values(not_before=opening),
                execution_options=_PLAIN,
            )


def _claim(engine: Engine, row: Notification, now: datetime) -> bool:
    """Mark the row sent, committed, before sending: only one claimer can win."""
    with session_scope(engine) as session:
        result = session.execute(
            update(Notification)
            .where(
                col(Notification.id) == row.id,
                col(Notification.sent_at).is_(None),
                col(Notification.not_before) <= now,
            )
            .values(sent_at=now),
            execution_options=_PLAIN,
        )
        return result.rowcount == 1  # type: ignore[attr-defined]


def _delivered(engine: Engine, row: Notification) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(Notification)
            .where(col(Notification.id) == row.id)
            .values(attempts=Notification.attempts + 1, last_error=None),
            execution_options=_PLAIN,
        )


def _release(
    engine: Engine, row: Notification, now: datetime, error: Exception, max_attempts: int
) -> None:
    """Give the row back for a later try (or give up on a permanent 5xx refusal)."""
    attempts = row.attempts + 1
    permanent = isinstance(error, smtplib.SMTPResponseException) and error.smtp_code >= 500
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        permanent = all(code >= 500 for code, _ in error.recipients.values())
    log.warning(
        "notification %s to %s failed (attempt %d)%s: %s",
        row.id,
        row.recipient,
        attempts,
        "; giving up" if permanent else "",
        error,
    )
    with session_scope(engine) as session:
        session.execute(
            update(Notification)
            .where(col(Notification.id) == row.id)
            .values(
                sent_at=None,
                attempts=max_attempts if permanent else Notification.attempts + 1,
                last_error=f"{type(error).__name__}: {error}"[:500],
                not_before=now + retry_delay(attempts),
            ),
            execution_options=_PLAIN,
        )


def _connection_lost(error: Exception) -> bool:
    """The server is gone or unreachable (SMTPException is an OSError too: not that)."""
    if isinstance(error, smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError):
        return True
    return not isinstance(error, smtplib.SMTPException)
