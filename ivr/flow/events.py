"""What a transport tells the engine: the network's news and the ticket store's answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CallStarted:
    caller_id: str | None
    called: str | None
    channel: str
    province: str


@dataclass(frozen=True)
class Digits:
    """Keys pressed, without the finish key; empty when only the finish key was pressed."""

    digits: str


@dataclass(frozen=True)
class Timeout:
    """The caller pressed nothing before the gather's timeout."""


@dataclass(frozen=True)
class RecordingFinished:
    path: str | None
    duration_s: float


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class TicketInfo:
    """What the follow-up menu may say about a ticket, once the caller has proved who they are."""

    tracking: str
    callback_number: str
    category: str
    status: str
    agency: str | None
    created_at: datetime
    due_at: datetime | None


@dataclass(frozen=True)
class TicketCreated:
    tracking: str | None
    """None only when the database was down and no number could be reserved: spooled unnumbered."""


@dataclass(frozen=True)
class TicketLookedUp:
    ticket: TicketInfo | None


Event = CallStarted | Digits | Timeout | RecordingFinished | Hangup | TicketCreated | TicketLookedUp
