"""What a transport tells the engine: the network's news and the ticket store's answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ivr.flow.outcomes import EventKind


@dataclass(frozen=True)
class CallStarted:
    kind: ClassVar[EventKind] = EventKind.CALL_STARTED
    caller_id: str | None
    called: str | None
    channel: str
    province: str
    resume: str | None = None
    """A call the agents' queue gave back (``ivr.flow.resume.ReturnReason``): ``no_agent`` or
    ``callback``; None for a new call."""
    queue_entered_at: datetime | None = None
    """When the caller joined the queue they come back from (UTC): a callback keeps it."""


@dataclass(frozen=True)
class Digits:
    """Keys pressed, without the finish key; empty when only the finish key was pressed."""

    kind: ClassVar[EventKind] = EventKind.DIGITS
    digits: str


@dataclass(frozen=True)
class Timeout:
    """The caller pressed nothing before the gather's timeout."""

    kind: ClassVar[EventKind] = EventKind.TIMEOUT


@dataclass(frozen=True)
class RecordingFinished:
    """The recording ended; ``path`` None (or a short one) when the caller said nothing."""

    kind: ClassVar[EventKind] = EventKind.RECORDING_FINISHED
    path: str | None
    duration_s: float


@dataclass(frozen=True)
class RecordingFailed:
    """The caller may have spoken, but the system lost the recording (Twilio's audio could not
    be fetched, Asterisk wrote no file): not the caller's fault, so not "too short"."""

    kind: ClassVar[EventKind] = EventKind.RECORDING_FAILED


@dataclass(frozen=True)
class Hangup:
    kind: ClassVar[EventKind] = EventKind.HANGUP


@dataclass(frozen=True)
class SystemFailed:
    """The call cannot go on in the menus (the database or the ticket store failed): a person
    takes it."""

    kind: ClassVar[EventKind] = EventKind.SYSTEM_FAILED


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
    answer_audio_path: str | None = None
    """The agent's answer as audio (ivr.answers): played after the status."""


@dataclass(frozen=True)
class TicketCreated:
    kind: ClassVar[EventKind] = EventKind.TICKET_CREATED
    tracking: str | None
    """None only when the database was down and no number could be reserved: spooled unnumbered."""


@dataclass(frozen=True)
class TicketLookedUp:
    kind: ClassVar[EventKind] = EventKind.TICKET_LOOKED_UP
    ticket: TicketInfo | None


@dataclass(frozen=True)
class AgentsChecked:
    """Whether agents can answer now; when not, ``next_opening`` says when (aware UTC), or None
    when they are inside their hours but nobody is free to answer."""

    kind: ClassVar[EventKind] = EventKind.AGENTS_CHECKED
    available: bool
    next_opening: datetime | None = None
    opening_in_days: int = 0
    """Calendar days (Tehran) from the check to the next opening: from 7 on, the weekday alone
    would be ambiguous, so its date is said too."""


@dataclass(frozen=True)
class CallbackFiled:
    """The callback service holds a pending callback for the caller's number."""

    kind: ClassVar[EventKind] = EventKind.CALLBACK_FILED
    callback_id: int | None


@dataclass(frozen=True)
class QueueLeft:
    """The caller left the agents' queue without an agent (Twilio's QueueResult)."""

    kind: ClassVar[EventKind] = EventKind.QUEUE_LEFT
    result: str
    """``leave`` (the callback key), ``queue-full``, ``error``, ``system-error``, ``hangup``,
    ``bridged``, ``redirected``."""
    entered_at: datetime | None = None


Event = (
    CallStarted
    | Digits
    | Timeout
    | RecordingFinished
    | RecordingFailed
    | Hangup
    | SystemFailed
    | TicketCreated
    | TicketLookedUp
    | AgentsChecked
    | CallbackFiled
    | QueueLeft
)
