"""The callbacks' tables: one row per callback a caller asked for, one per attempt to place it.

Written only by :mod:`ivr.callbacks.service`. Times are UTC (``timestamptz`` on PostgreSQL), as
in :mod:`ivr.tickets.models`.

Two columns carry the concurrency rules, so the database enforces them rather than the code:

* ``callback.active_number`` is the number while the callback is open (pending, queued or in
  progress) and NULL once it is finished; it is UNIQUE, so one number never has two open
  callbacks, and a second request from it finds the first.
* a callback leaves ``pending`` only through a conditional UPDATE (``claim``), so of two
  dispatchers racing for it exactly one gets the attempt.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from ivr.clock import utcnow
from ivr.tickets import models as _tickets  # noqa: F401  (call.id and ticket.id for the keys)


class CallbackStatus(StrEnum):
    PENDING = "pending"
    """Waiting for its turn (or for the next attempt slot)."""
    QUEUED = "queued"
    """A stand-in holds its place in the agents' queue; nobody has been rung yet."""
    IN_PROGRESS = "in_progress"
    """An agent took it: the caller is being rung or is talking to the agent."""
    DONE = "done"
    FAILED = "failed"
    """No answer, busy or failed on every attempt."""
    CANCELLED = "cancelled"


OPEN_STATUSES: tuple[str, ...] = (
    CallbackStatus.PENDING.value,
    CallbackStatus.QUEUED.value,
    CallbackStatus.IN_PROGRESS.value,
)
"""A callback in one of these still owns its number (``active_number``)."""


class Outcome(StrEnum):
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    """The attempt's dispatcher died and its lease ran out with no trace of the call."""
    WITHDRAWN = "withdrawn"
    """The caller was never rung: no agent took the stand-in (queue empty or full, hours over,
    callback cancelled), or the dialer could not place it. Not counted as an attempt."""


COUNTED_OUTCOMES: frozenset[str] = frozenset(
    o.value for o in (Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.INTERRUPTED)
)
"""Unsuccessful outcomes that use up one of the callback's attempts."""


class Callback(SQLModel, table=True):
    """A caller asked to be called back; the row is its whole life, attempts aside."""

    __table_args__ = (
        Index("ix_callback_status_entered", "status", "entered_at"),
        Index("ix_callback_status_province", "status", "province"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=16)
    """National 11-digit form (09121234567)."""
    active_number: str | None = Field(default=None, max_length=16, index=True, unique=True)
    """``number`` while the callback is open, else NULL: one open callback per number."""
    province: str = Field(max_length=32)
    """Whose agents' hours and calendar decide when it may be placed."""
    status: str = Field(default=CallbackStatus.PENDING, max_length=16)
    requested_at: datetime = Field(default_factory=utcnow)
    entered_at: datetime
    """The original entry time: when the caller joined the queue they left by asking for the
    callback, or the request time (the "no agent" menu). Callbacks and live callers are served
    in this order."""
    call_id: int | None = Field(default=None, foreign_key="call.id")
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """Attempts used up (see COUNTED_OUTCOMES); withdrawn ones do not count."""
    next_attempt_at: datetime = Field(default_factory=utcnow)
    """Not before this moment (the retry spacing); the agents' hours are checked besides."""
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    """When it became done, failed or cancelled."""


class CallbackAttempt(SQLModel, table=True):
    """One try at a callback, from the claim to its outcome."""

    __tablename__ = "callback_attempt"
    __table_args__ = (Index("ix_callback_attempt_open", "ended_at", "lease_until"),)

    id: int | None = Field(default=None, primary_key=True)
    callback_id: int = Field(foreign_key="callback.id", index=True)
    slot: int
    """Which attempt this is (1, 2, 3): a withdrawn try leaves the slot to the next one."""
    node: str = Field(max_length=48)
    """The node that claimed it (IVR_NODE_NAME)."""
    dialer: str = Field(max_length=16)
    """asterisk or twilio."""
    external_id: str | None = Field(default=None, max_length=64)
    """The stand-in's Asterisk uniqueid, or Twilio's CallSid."""
    started_at: datetime = Field(default_factory=utcnow)
    connected_at: datetime | None = None
    """When an agent took it (agent-first) or the caller's phone started ringing (Twilio)."""
    agent: str | None = Field(default=None, max_length=128)
    ended_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=16)
    detail: str | None = Field(default=None, max_length=255)
    """What the telephone network said: DIALSTATUS and hangup cause, QUEUESTATUS, an error."""
    lease_until: datetime | None = None
    """While open: renewed as long as the call is seen alive; past it, with no trace of the
    call, the attempt is closed as interrupted."""


class AgentLineState(StrEnum):
    IDLE = "idle"
    """In ``<Dial><Queue>`` with nobody bridged: the next caller (or callback) is theirs."""
    TALKING = "talking"
    """A caller was dequeued to them (the connect URL was asked)."""


class AgentLine(SQLModel, table=True):
    """An agent on the Twilio agents' line right now: one row per agent's call.

    Twilio shows who waits in a queue, not who dequeues from it, so the webhooks of the agents'
    line keep this (``ivr.callbacks.agent_line`` writes it) and the Twilio queue view reads it.
    """

    __tablename__ = "agent_line"

    call_sid: str = Field(primary_key=True, max_length=64)
    """The agent's own call."""
    agent: str = Field(max_length=64)
    """The user's name (``ivr users``)."""
    state: str = Field(default=AgentLineState.IDLE, max_length=16)
    caller_sid: str | None = Field(default=None, max_length=64)
    """The caller they talk to, while talking."""
    since: datetime = Field(default_factory=utcnow)
    """When the state began."""
    seen_at: datetime = Field(default_factory=utcnow)
    """The last webhook of this call: a row not seen for long is checked with the REST API."""
