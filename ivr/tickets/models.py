"""The tables: tickets and their history, calls and each step of each call.

Times are stored in UTC (timezone-aware values; ``timestamptz`` on PostgreSQL); they are turned
into Asia/Tehran Jalali dates only when shown or spoken.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC now: the one clock every row is written with."""
    return datetime.now(UTC)


class Status(StrEnum):
    REGISTERED = "registered"
    IN_REVIEW = "in_review"
    REFERRED = "referred"
    WAITING_FOR_CALLER = "waiting_for_caller"
    ANSWERED = "answered"
    CLOSED = "closed"


class Category(StrEnum):
    INDUSTRY = "industry"
    MINING = "mining"
    TRADE = "trade"
    CONSUMER = "consumer"
    PERMITS = "permits"
    OTHER = "other"


class Channel(StrEnum):
    TWILIO = "twilio"
    ASTERISK = "asterisk"
    TERMINAL = "terminal"
    WEB = "web"


class Ticket(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tracking: str = Field(index=True, unique=True, max_length=10)
    channel: str = Field(max_length=16)
    province: str = Field(max_length=32, index=True)
    category: str = Field(max_length=16, index=True)
    place: str | None = Field(default=None, max_length=64)
    recording_path: str | None = None
    caller_number: str | None = Field(default=None, max_length=32)
    callback_number: str = Field(max_length=16)
    national_id: str | None = Field(default=None, max_length=10)
    status: str = Field(default=Status.REGISTERED, max_length=24, index=True)
    agency: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    due_at: datetime | None = Field(default=None, index=True)
    """When an answer is promised (the resolution deadline)."""


class TicketEvent(SQLModel, table=True):
    """One line of a ticket's history: every change, who made it and when."""

    __tablename__ = "ticket_event"

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    at: datetime = Field(default_factory=utcnow)
    kind: str = Field(max_length=24)
    """created, status, agency, note, escalated …"""
    old_value: str | None = None
    new_value: str | None = None
    actor: str = Field(default="system", max_length=64)
    note: str | None = None


class TrackingBlock(SQLModel, table=True):
    """A block of tracking numbers reserved by one node (hi/lo allocation).

    Each row's id names a block of numbers that only its node hands out, so several nodes can
    create tickets at the same moment without colliding, and a node can still hand out numbers
    from its reserved block while the database is briefly unreachable.
    """

    __tablename__ = "tracking_block"

    id: int | None = Field(default=None, primary_key=True)
    node: str = Field(max_length=64)
    allocated_at: datetime = Field(default_factory=utcnow)


class Call(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64, index=True, unique=True)
    """Twilio's CallSid, Asterisk's uniqueid, or a generated id for the terminal phone."""
    caller: str | None = Field(default=None, max_length=32)
    called: str | None = Field(default=None, max_length=32)
    started_at: datetime = Field(default_factory=utcnow, index=True)
    ended_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=24)
    """ticket, followup, transferred, abandoned, completed."""
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    state: str = "{}"
    """The flow engine's state as JSON, so any node can take the call's next webhook."""


class CallStep(SQLModel, table=True):
    """One turn of one call: where the caller was, what they did, what came of it."""

    __tablename__ = "call_step"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    node: str = Field(max_length=48)
    event: str = Field(max_length=24)
    key: str | None = Field(default=None, max_length=32)
    outcome: str = Field(max_length=24)
