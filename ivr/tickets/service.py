"""The ticket service and the call records: everything the call flow and the CLI write or read.

The promise a caller hears — "your tracking number is …" — must hold even if the database is down
at that moment: numbers come from blocks reserved ahead (hi/lo), and a ticket that cannot be
stored is spooled as JSON on local disk and replayed into the database later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table, bindparam, insert, literal
from sqlalchemy import select as select_
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import Session, col, select

from ivr.agencies import Agencies, load_agencies
from ivr.categories import Categories, load_categories
from ivr.clock import as_aware, as_stored, utcnow
from ivr.notify import queue_mails
from ivr.speech import normalize_digits
from ivr.tickets import kept
from ivr.tickets.allocator import TrackingAllocator
from ivr.tickets.db import one_statement_engine, session_scope
from ivr.tickets.models import (
    UNFINISHED_STATUSES,
    Channel,
    DeadlinesLike,
    Status,
    Ticket,
    TicketEvent,
    deadline_columns,
    next_sla_check,
    pauses_from_history,
    reversed_digits,
)
from ivr.tickets.prepared import Prepared
from ivr.tickets.scope import Scope
from ivr.tickets.statuses import (
    CALLER,
    SYSTEM,
    TRANSITIONS,
    TransitionRefused,
    check_transition,
    parse_status,
)
from ivr.tickets.tracking import is_valid_tracking

log = logging.getLogger(__name__)

UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)
"""Errors that mean "the database cannot be reached right now", as opposed to a bug."""

_TICKET_TABLE: Table = Ticket.__table__  # type: ignore[attr-defined]
_EVENT_TABLE: Table = TicketEvent.__table__  # type: ignore[attr-defined]
_TICKET_FIELDS = tuple(column.name for column in _TICKET_TABLE.c if column.name != "id")
"""Every column a new row names (empty unless set): what ``next_sla_check`` and the one-statement
insert read."""
_INSERT_TICKET = insert(_TICKET_TABLE).returning(_TICKET_TABLE.c.id)
_EVENT_VALUES = {
    "at": bindparam("event_at", type_=_EVENT_TABLE.c.at.type),
    "kind": literal("created"),
    "new_value": bindparam("event_new", type_=_EVENT_TABLE.c.new_value.type),
    "actor": bindparam("event_actor", type_=_EVENT_TABLE.c.actor.type),
    "note": bindparam("event_note", type_=_EVENT_TABLE.c.note.type),
}
_INSERT_EVENT = insert(_EVENT_TABLE).values(ticket_id=bindparam("ticket_id"), **_EVENT_VALUES)
_NEW_TICKET = (
    insert(_TICKET_TABLE)
    .values({name: bindparam(name, type_=_TICKET_TABLE.c[name].type) for name in _TICKET_FIELDS})
    .returning(_TICKET_TABLE.c.id)
    .cte("new_ticket")
)
_INSERT_BOTH = insert(_EVENT_TABLE).from_select(
    ["ticket_id", *_EVENT_VALUES], select_(_NEW_TICKET.c.id, *_EVENT_VALUES.values())
)
"""PostgreSQL: the ticket and its ``created`` line in one statement (a data-modifying CTE)."""
_TRACKING_BY_CALL = select_(_TICKET_TABLE.c.tracking).where(
    _TICKET_TABLE.c.call_key == bindparam("call_key")
)
"""Asked before each new ticket of a call: a retried confirm gets the ticket already stored."""
_EVENT_KEYS = ("ticket_id", "event_at", "event_new", "event_actor", "event_note")
_BOTH_KEYS = (*_TICKET_FIELDS, *_EVENT_KEYS[1:])

SPOOLED_NOTE = "stored from the spool: the database was unreachable when the caller registered"


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else as_aware(dt).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str | None) -> datetime | None:
    return None if text is None else as_aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


class SettingsLike(Protocol):
    @property
    def spool_dir(self) -> Path: ...
    @property
    def node_name(self) -> str: ...


class SlaClock(Protocol):
    """Deadlines for a ticket (``ivr.calendar.store.SlaClock`` on the database calendar)."""

    def deadlines(
        self,
        category: str,
        province: str,
        created_utc: datetime,
        paused: Sequence[tuple[datetime, datetime | None]] = (),
    ) -> DeadlinesLike: ...


CLOCK_COLUMNS = ("due_at", "first_response_due_at", "first_response_warn_at", "resolution_warn_at")
"""The deadline columns set at creation and recomputed after a pause."""


class TicketNotFound(LookupError):
    """No ticket has this tracking number."""


@dataclass
class TicketDraft:
    """What the call flow (or the web form) collected; the service adds number, status and times."""

    channel: str
    province: str
    category: str
    place: str | None
    recording_path: str | None
    caller_number: str | None
    callback_number: str
    national_id: str | None


_DRAFT_FIELDS = tuple(field.name for field in dataclass_fields(TicketDraft))
"""A draft's fields are plain values: read them directly (``asdict`` deep-copies each)."""


@dataclass(frozen=True)
class ReferralMail:
    """The mail telling an agency a ticket is theirs (written by whoever refers: the desk)."""

    sender: str
    subject: str
    body: str
    body_html: str | None = None


@dataclass(frozen=True)
class CreatedTicket:
    tracking: str | None
    """None only when the database was down and no reserved number was left."""
    spooled: bool
    """True when the ticket waits in the spool directory for the database to come back."""


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    kind: str
    old_value: str | None
    new_value: str | None
    actor: str
    note: str | None


@dataclass(frozen=True)
class TicketView:
    """A ticket as read: detached from the session, times aware UTC, history oldest first."""

    tracking: str
    channel: str
    province: str
    category: str
    place: str | None
    status: str
    agency: str | None
    callback_number: str
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    caller_number: str | None = None
    recording_path: str | None = None
    history: tuple[HistoryLine, ...] = ()
    first_response_due_at: datetime | None = None
    escalation_level: int = 0
    escalated_at: datetime | None = None
    responded_at: datetime | None = None
    """When a person first moved the ticket out of ``registered`` (stops the first clock)."""
    national_id: str | None = None
    """Personal data: shown only where asked for (``ivr tickets show --with-personal-data``)."""
    assignee: str | None = None
    answer_text: str | None = None
    answer_audio_path: str | None = None
    answered_at: datetime | None = None
    first_response_warn_at: datetime | None = None
    resolution_warn_at: datetime | None = None


class TicketService:
    """Create, read and change tickets; every change leaves a TicketEvent with old and new value."""

    def __init__(
        self,
        engine: Engine,
        settings: SettingsLike,
        *,
        block_size: int = 20,
        retries: int = 2,
        retry_delay: float = 0.05,
        retry_window_s: float = 1.5,
        sla: SlaClock | None = None,
        agencies: Agencies | None = None,
        categories: Categories | None = None,
    ) -> None:
        self.engine = engine
        self._single = one_statement_engine(engine)
        """For one statement: a lookup, or a new ticket (``_add`` is one statement on
        PostgreSQL, where this engine autocommits; two in a transaction on SQLite)."""
        dialect = engine.dialect
        self._tracking_by_call = Prepared(_TRACKING_BY_CALL, dialect)
        if dialect.name == "postgresql":
            self._insert_both: Prepared | None = Prepared(_INSERT_BOTH, dialect, _BOTH_KEYS)
        else:
            self._insert_both = None
            self._insert_ticket = Prepared(_INSERT_TICKET, dialect, _TICKET_FIELDS)
            self._insert_event = Prepared(_INSERT_EVENT, dialect, _EVENT_KEYS)
        self.sla = sla
        """Sets every deadline at creation and recomputes them after a pause; optional."""
        self.agencies = agencies or load_agencies()
        """The agencies ``refer`` accepts (default: ``ivr/agencies.toml``)."""
        self.categories = categories or load_categories()
        """The categories ``create`` accepts (default: ``ivr/categories.toml``).  Both files are
        read here, so a bad one stops whoever builds the service at start, not a caller."""
        self.spool_dir = Path(settings.spool_dir)
        self.allocator = TrackingAllocator(engine, settings.node_name, block_size)
        self._retries = retries
        self._retry_delay = retry_delay
        self.retry_window_s = retry_window_s
        """No new try of a failed insert after this long: then the spool (a caller waits)."""

    # -- creating -------------------------------------------------------------------------------

    def create(
        self,
        draft: TicketDraft,
        *,
        due_at: datetime | None = None,
        deadlines: DeadlinesLike | None = None,
        actor: str = CALLER,
        call_key: str | None = None,
    ) -> CreatedTicket:
        """Store a new ticket, or spool it if the database stays unreachable after quick retries.

        Deadlines come from ``deadlines``, else from the service's SLA clock; an explicit
        ``due_at`` (the older way to pass only the resolution deadline) wins over either.
        ``actor`` is who registered it: the caller on the phone, or the agent at a desk.

        ``call_key`` names the call registering it (``channel:external id``): a call gets one
        ticket, so asking again for the same call — a retried or replayed webhook — gives back
        the ticket already stored or spooled for it (the caller hears the same number).
        Retries stop after ``retry_window_s``: the caller is waiting on the line.
        """
        Channel(draft.channel)  # a bad value is a bug: fail before a number is spent
        self.categories.require(draft.category)
        if call_key is not None:
            found = self._spooled_ticket_for(call_key)
            if found is not None:
                return found
        created_at = as_aware(utcnow())
        clocks = self._clocks(draft, created_at, deadlines, due_at)
        due_at = clocks["due_at"]
        fields = {name: getattr(draft, name) for name in _DRAFT_FIELDS} | {"call_key": call_key}
        tracking: str | None = None
        started = time.monotonic()
        for attempt in range(self._retries + 1):
            try:
                if tracking is None:
                    tracking = self.allocator.next_tracking()
                with kept.connection(self._single) as connection, connection.begin():
                    self._add(connection, tracking, fields, created_at, clocks, actor)
                return CreatedTicket(tracking, spooled=False)
            except IntegrityError:
                if call_key is not None:  # another node or request stored this call's ticket
                    stored = self._tracking_for(call_key)
                    if stored is not None:
                        return CreatedTicket(stored, spooled=False)
                # An earlier try may have committed and lost only the reply; then all is well.
                if attempt == 0 or not self._stored_already(tracking):
                    raise
                return CreatedTicket(tracking, spooled=False)
            except UNAVAILABLE:
                log.warning("database unreachable creating a ticket (try %d)", attempt + 1)
                if time.monotonic() - started >= self.retry_window_s:
                    break
                if attempt < self._retries:
                    time.sleep(self._retry_delay * (attempt + 1))
        path = self._spool(draft, tracking, created_at, clocks, actor, call_key)
        log.error("ticket %s spooled to %s", tracking or "(no number yet)", path)
        return CreatedTicket(tracking, spooled=True)

    def _spooled_ticket_for(self, call_key: str) -> CreatedTicket | None:
        """The ticket this call registered already in the spool here. One stored already is
        found by the insert instead (the unique key on the call, then ``_tracking_for``): a
        lookup before every insert cost 40 µs of each new ticket, for the rare retry."""
        for path in self._spooled_for(call_key):
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if record.get("call_key") == call_key and record.get("tracking"):
                return CreatedTicket(record["tracking"], spooled=True)
        return None

    def _spooled_for(self, call_key: str) -> list[Path]:
        """The spool files of this call's ticket (none, unless the database was away). A
        suffix test on the names: ``Path.glob`` compiled a new pattern for every call's key,
        50 µs of each ticket's creation."""
        suffix = f"-{_spool_tag(call_key)}.json"
        try:
            with os.scandir(self.spool_dir) as entries:
                return [Path(entry.path) for entry in entries if entry.name.endswith(suffix)]
        except FileNotFoundError:
            return []

    def _tracking_for(self, call_key: str) -> str | None:
        with kept.connection(self._single) as connection:
            found: str | None = self._tracking_by_call.scalar(connection, {"call_key": call_key})
        return found

    def _clocks(
        self,
        draft: TicketDraft,
        created_at: datetime,
        deadlines: DeadlinesLike | None,
        due_at: datetime | None,
    ) -> dict[str, datetime | None]:
        """The deadline columns; a failing clock costs the deadline, never the ticket."""
        if deadlines is None and self.sla is not None:
            try:
                deadlines = self.sla.deadlines(draft.category, draft.province, created_at)
            except Exception:
                log.exception("could not compute the deadlines of a new ticket")
        clocks: dict[str, datetime | None] = dict.fromkeys(CLOCK_COLUMNS)
        if deadlines is not None:
            clocks.update(deadline_columns(deadlines))
        if due_at is not None:
            clocks["due_at"] = as_aware(due_at)
        return clocks

    def _add(
        self,
        connection: Connection,
        tracking: str,
        fields: dict[str, Any],
        created_at: datetime,
        clocks: dict[str, datetime | None],
        actor: str,
        note: str | None = None,
    ) -> None:
        """One ticket row and its ``created`` history line: two Core inserts, prepared.

        Core, not the ORM: building and flushing a ``Ticket`` object cost more than the rest of
        a creation (see ``benchmarks/tickets.py``); the rows and their defaults are the same.
        Prepared (:mod:`ivr.tickets.prepared`): so did ``connection.execute`` around them.
        """
        columns = _TICKET_TABLE.c  # plain columns: as_stored reads their type quickly
        now = as_stored(columns.created_at, created_at)
        row: dict[str, Any] = dict.fromkeys(_TICKET_FIELDS)
        row.update(
            tracking=tracking,
            channel=str(fields["channel"]),
            province=fields["province"],
            category=str(fields["category"]),
            place=fields["place"],
            recording_path=fields["recording_path"],
            caller_number=fields["caller_number"],
            callback_number=fields["callback_number"],
            national_id=fields["national_id"],
            call_key=fields.get("call_key"),
            callback_reversed=reversed_digits(fields["callback_number"]),
            caller_reversed=reversed_digits(fields["caller_number"]),
            status=Status.REGISTERED.value,
            escalation_level=0,
            created_at=now,
            updated_at=now,
        )
        for name, value in clocks.items():
            if name in CLOCK_COLUMNS:
                row[name] = None if value is None else as_stored(columns[name], value)
        check = next_sla_check(SimpleNamespace(**row))
        row["sla_check_at"] = None if check is None else as_stored(columns.sla_check_at, check)
        event = {
            "event_at": as_stored(_EVENT_TABLE.c.at, now),
            "event_new": Status.REGISTERED.value,
            "event_actor": actor,
            "event_note": note,
        }
        if self._insert_both is not None:  # one round trip for both rows
            self._insert_both.run(connection, {**row, **event})
            return
        ticket_id = self._insert_ticket.scalar(connection, row)
        self._insert_event.run(connection, {"ticket_id": ticket_id, **event})

    # -- the spool ------------------------------------------------------------------------------

    def _spool(
        self,
        draft: TicketDraft,
        tracking: str | None,
        created_at: datetime,
        clocks: dict[str, datetime | None],
        actor: str,
        call_key: str | None = None,
    ) -> Path:
        record = {
            "version": 1,
            "tracking": tracking,
            "actor": actor,
            "created_at": _iso(created_at),
            "due_at": _iso(clocks.get("due_at")),
            "clocks": {name: _iso(value) for name, value in clocks.items()},
            "draft": asdict(draft),
            "call_key": call_key,
        }
        stamp = created_at.strftime("%Y%m%dT%H%M%S%f")
        tag = uuid.uuid4().hex[:8] if call_key is None else _spool_tag(call_key)
        path = self.spool_dir / f"{stamp}-{tracking or 'pending'}-{tag}.json"
        _write_atomic(path, record)
        return path

    def replay_spool(self) -> int:
        """Store spooled tickets, oldest first; returns how many were inserted.

        A file is deleted only after its ticket is committed (or found already stored), so a
        crash at any point neither loses a ticket nor stores it twice. Stops quietly while the
        database is still unreachable.
        """
        inserted = 0
        for path in sorted(self.spool_dir.glob("*.json")):
            try:
                inserted += self._replay_one(path)
            except UNAVAILABLE:
                log.warning("database still unreachable; %s stays in the spool", path.name)
                break
            except (ValueError, KeyError, TypeError):  # hand-edited or foreign: keep it for a human
                log.exception("cannot replay spooled ticket %s; left in place", path.name)
        return inserted

    def _replay_one(self, path: Path) -> int:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record["tracking"] is None:
            record["tracking"] = self.allocator.next_tracking()
            _write_atomic(path, record)  # the number is fixed before the insert, never re-drawn
        tracking = record["tracking"]
        call_key = record.get("call_key")
        try:
            with session_scope(self.engine) as session:
                if self._ticket_id(session, tracking) is not None:
                    stored = 0
                elif call_key is not None and self._tracking_for(call_key) is not None:
                    log.warning("spooled %s: its call has a ticket already; dropped", tracking)
                    stored = 0
                else:
                    created_at = _parse_iso(record["created_at"])
                    assert created_at is not None
                    clocks = {k: _parse_iso(v) for k, v in record.get("clocks", {}).items()}
                    clocks["due_at"] = _parse_iso(record["due_at"])
                    actor = record.get("actor", CALLER)  # files spooled before it was stored
                    fields = record["draft"] | {"call_key": call_key}
                    self._add(
                        session.connection(),
                        tracking,
                        fields,
                        created_at,
                        clocks,
                        actor,
                        SPOOLED_NOTE,
                    )
                    stored = 1
        except IntegrityError:  # another process replayed the same file at the same moment
            with Session(self.engine) as session:
                if self._ticket_id(session, tracking) is None and (
                    call_key is None or self._tracking_for(call_key) is None
                ):
                    raise
            stored = 0
        path.unlink(missing_ok=True)
        return stored

    # -- reading --------------------------------------------------------------------------------

    def get(self, tracking: str) -> TicketView | None:
        """The ticket, or None; a number with a wrong check digit never reaches the database."""
        if not is_valid_tracking(tracking):
            return None
        with Session(self.engine) as session:
            statement = select(Ticket).where(Ticket.tracking == normalize_digits(tracking))
            ticket = session.exec(statement).first()
            return None if ticket is None else self._views(session, [ticket])[0]

    def get_in(self, tracking: str, scope: Scope) -> TicketView | None:
        """The ticket if ``scope`` may see it; None otherwise, exactly as for no ticket (the
        province is part of the query, so an out-of-scope ticket is never even read)."""
        if not is_valid_tracking(tracking):
            return None
        with Session(self.engine) as session:
            statement = select(Ticket).where(
                Ticket.tracking == normalize_digits(tracking), scope.where(col(Ticket.province))
            )
            ticket = session.exec(statement).first()
            return None if ticket is None else self._views(session, [ticket])[0]

    def latest(self, limit: int = 20) -> list[TicketView]:
        """The newest tickets first."""
        with Session(self.engine) as session:
            statement = (
                select(Ticket)
                .order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
                .limit(limit)
            )
            return self._views(session, list(session.exec(statement)))

    def _stored_already(self, tracking: str | None) -> bool:
        with Session(self.engine) as session:
            return tracking is not None and self._ticket_id(session, tracking) is not None

    @staticmethod
    def _ticket_id(session: Session, tracking: str) -> int | None:
        return session.exec(select(Ticket.id).where(Ticket.tracking == tracking)).first()

    @staticmethod
    def _views(session: Session, tickets: list[Ticket]) -> list[TicketView]:
        ids = [t.id for t in tickets]
        events = session.exec(
            select(TicketEvent)
            .where(col(TicketEvent.ticket_id).in_(ids))
            .order_by(col(TicketEvent.at), col(TicketEvent.id))
        )
        history: dict[int, list[HistoryLine]] = {}
        for e in events:
            line = HistoryLine(as_aware(e.at), e.kind, e.old_value, e.new_value, e.actor, e.note)
            history.setdefault(e.ticket_id, []).append(line)
        return [
            TicketView(
                tracking=t.tracking,
                channel=t.channel,
                province=t.province,
                category=t.category,
                place=t.place,
                status=t.status,
                agency=t.agency,
                callback_number=t.callback_number,
                created_at=as_aware(t.created_at),
                updated_at=as_aware(t.updated_at),
                due_at=None if t.due_at is None else as_aware(t.due_at),
                caller_number=t.caller_number,
                recording_path=t.recording_path,
                history=tuple(history.get(t.id or 0, ())),
                first_response_due_at=(
                    None if t.first_response_due_at is None else as_aware(t.first_response_due_at)
                ),
                escalation_level=t.escalation_level,
                escalated_at=None if t.escalated_at is None else as_aware(t.escalated_at),
                responded_at=None if t.responded_at is None else as_aware(t.responded_at),
                national_id=t.national_id,
                assignee=t.assignee,
                answer_text=t.answer_text,
                answer_audio_path=t.answer_audio_path,
                answered_at=as_aware(t.answered_at),
                first_response_warn_at=as_aware(t.first_response_warn_at),
                resolution_warn_at=as_aware(t.resolution_warn_at),
            )
            for t in tickets
        ]

    # -- changing -------------------------------------------------------------------------------

    def set_status(
        self,
        tracking: str,
        status: Status | str,
        actor: str,
        note: str | None = None,
        scope: Scope | None = None,
    ) -> TicketView:
        """Move a ticket to ``status`` if the transition table allows it (``TransitionRefused``
        otherwise, changing nothing); the same status with a note records just the note."""
        new = parse_status(status).value
        with session_scope(self.engine) as session:
            ticket = self._for_update(session, tracking, scope)
            if ticket.status != new:
                check_transition(ticket.tracking, ticket.status, new, note)
                if new == Status.REFERRED and ticket.agency is None:
                    raise TransitionRefused(
                        ticket.tracking, ticket.status, new, "a referral names its agency: refer"
                    )
                old = ticket.status
                self._change(session, ticket, "status", "status", new, actor, note)
                self._after_status(session, ticket, old, actor)
            elif note:
                self._change(session, ticket, "note", None, None, actor, note)
            return self._views(session, [ticket])[0]

    def refer(
        self,
        tracking: str,
        agency: str,
        actor: str,
        note: str | None = None,
        scope: Scope | None = None,
        mail: ReferralMail | None = None,
    ) -> TicketView:
        """Route a ticket to an agency of the agencies file (``UnknownAgency`` otherwise); its
        status becomes ``referred`` through the same transition table as ``set_status``.  A
        referred ticket may be referred on to another agency."""
        found = self.agencies.require(agency)
        code = found.code
        with session_scope(self.engine) as session:
            ticket = self._for_update(session, tracking, scope)
            if mail is not None and ticket.agency != code:
                self._queue_referral(session, ticket, found.email, code, mail)
            if ticket.status != Status.REFERRED:
                check_transition(ticket.tracking, ticket.status, Status.REFERRED, note)
            if ticket.agency != code:
                self._change(session, ticket, "agency", "agency", code, actor, note)
                note = None  # said once, on the line that names the agency
            if ticket.status != Status.REFERRED:
                old = ticket.status
                self._change(
                    session, ticket, "status", "status", Status.REFERRED.value, actor, note
                )
                self._after_status(session, ticket, old, actor)
            elif note:
                self._change(session, ticket, "note", None, None, actor, note)
            return self._views(session, [ticket])[0]

    @staticmethod
    def _queue_referral(
        session: Session, ticket: Ticket, address: str, code: str, mail: ReferralMail
    ) -> None:
        """The referral's mail to the agency, in the outbox, in the referral's transaction."""
        now = as_aware(utcnow())
        queue_mails(
            session.connection(),
            [
                {
                    "ticket_id": ticket.id,
                    "step": f"referral-{code}"[:32],
                    "recipient": address,
                    "province": ticket.province,
                    "sender": mail.sender,
                    "subject": mail.subject,
                    "body": mail.body,
                    "body_html": mail.body_html,
                    "created_at": now,
                    "not_before": now,
                    "attempts": 0,
                }
            ],
        )

    def assign(
        self, tracking: str, assignee: str | None, actor: str, scope: Scope | None = None
    ) -> TicketView:
        """Hand the ticket to ``assignee`` (a user name; None: nobody); a history line."""
        with session_scope(self.engine) as session:
            ticket = self._for_update(session, tracking, scope)
            if ticket.assignee != assignee:
                self._change(session, ticket, "assigned", "assignee", assignee, actor, None)
            return self._views(session, [ticket])[0]

    def answer(
        self,
        tracking: str,
        text: str,
        actor: str,
        *,
        audio_path: str | None = None,
        scope: Scope | None = None,
    ) -> TicketView:
        """Store the answer the caller hears on following up (text, and its audio), and move
        the ticket to ``answered`` where the transition table allows it.

        From waiting_for_caller or answered the status stays (the table has no such move): the
        answer is still stored, so the caller hears it.
        """
        text = text.strip()
        if not text:
            raise ValueError("an answer needs some text")
        with session_scope(self.engine) as session:
            ticket = self._for_update(session, tracking, scope)
            if ticket.status == Status.CLOSED:
                raise TransitionRefused(ticket.tracking, ticket.status, "answer", "it is closed")
            self._change(session, ticket, "answer", None, None, actor, text)
            ticket.answer_text = text
            ticket.answer_audio_path = audio_path
            ticket.answered_at = as_stored(Ticket.answered_at, utcnow())
            if Status.ANSWERED in TRANSITIONS[Status(ticket.status)]:
                old = ticket.status
                self._change(
                    session, ticket, "status", "status", Status.ANSWERED.value, actor, None
                )
                self._after_status(session, ticket, old, actor)
            session.add(ticket)
            session.flush()
            return self._views(session, [ticket])[0]

    def note_call(self, tracking: str, call_key: str, actor: str) -> TicketView:
        """A history line saying ``actor`` attached the call ``call_key`` to the ticket (the
        call's own row is linked by its owner, ``ivr.tickets.calls``)."""
        with session_scope(self.engine) as session:
            ticket = self._for_update(session, tracking)
            self._change(session, ticket, "call", None, call_key, actor, None)
            return self._views(session, [ticket])[0]

    def _after_status(self, session: Session, ticket: Ticket, old: str, actor: str) -> None:
        """Keep the SLA columns true after a status change.

        Leaving ``registered`` (by a person) is the first response.  Waiting for the caller
        pauses the clocks and coming back adds the paused time on, so the deadlines are
        recomputed from the status history; and the watch is told when to look next.
        """
        now = utcnow()
        if old == Status.REGISTERED and ticket.responded_at is None and actor != SYSTEM:
            ticket.responded_at = as_stored(Ticket.responded_at, now)
        if self.sla is not None and ticket.status in UNFINISHED_STATUSES:
            assert ticket.id is not None
            changes = session.exec(
                select(TicketEvent.at, TicketEvent.old_value, TicketEvent.new_value).where(
                    col(TicketEvent.ticket_id) == ticket.id, col(TicketEvent.kind) == "status"
                )
            ).all()
            try:
                found = self.sla.deadlines(
                    ticket.category,
                    ticket.province,
                    as_aware(ticket.created_at),
                    pauses_from_history((at, o, n) for at, o, n in changes),
                )
            except Exception:
                log.exception("could not recompute the deadlines of %s", ticket.tracking)
            else:
                for name, value in deadline_columns(found).items():
                    setattr(
                        ticket,
                        name,
                        None if value is None else as_stored(getattr(Ticket, name), value),
                    )
        check = next_sla_check(ticket)
        ticket.sla_check_at = None if check is None else as_stored(Ticket.sla_check_at, check)
        session.add(ticket)
        session.flush()

    @staticmethod
    def _for_update(session: Session, tracking: str, scope: Scope | None = None) -> Ticket:
        """The ticket, locked; ``TicketNotFound`` also when ``scope`` may not see it."""
        number = normalize_digits(tracking)
        statement = select(Ticket).where(Ticket.tracking == number)
        if scope is not None:
            statement = statement.where(scope.where(col(Ticket.province)))
        statement = statement.with_for_update()
        ticket = session.exec(statement).first()
        if ticket is None:
            raise TicketNotFound(tracking)
        return ticket

    @staticmethod
    def _change(
        session: Session,
        ticket: Ticket,
        kind: str,
        attribute: str | None,
        new: str | None,
        actor: str,
        note: str | None,
    ) -> None:
        now = as_stored(Ticket.updated_at, utcnow())
        old = getattr(ticket, attribute) if attribute else None
        if attribute:
            setattr(ticket, attribute, new)
        ticket.updated_at = now
        assert ticket.id is not None
        session.add(
            TicketEvent(
                ticket_id=ticket.id,
                at=as_stored(TicketEvent.at, now),
                kind=kind,
                old_value=old,
                new_value=new,
                actor=actor,
                note=note,
            )
        )
        session.flush()


def _spool_tag(call_key: str) -> str:
    """The part of a spool file's name that finds a call's ticket without reading every file."""
    return "k" + hashlib.sha256(call_key.encode()).hexdigest()[:16]


def _write_atomic(path: Path, record: dict[str, Any]) -> None:
    """Write JSON so the file is either absent or complete, and on disk before we return."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
