"""The tables: tickets and their history, calls and each step of each call.

Times are stored in UTC (timezone-aware values; ``timestamptz`` on PostgreSQL); they are turned
into Asia/Tehran Jalali dates only when shown or spoken.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Index, UniqueConstraint, text, true
from sqlmodel import Field, SQLModel

from ivr.clock import as_aware, utcnow

# Re-exported: the statuses and their table live in ivr.tickets.statuses.
from ivr.tickets.statuses import OPEN_STATUSES as OPEN_STATUSES
from ivr.tickets.statuses import UNFINISHED_STATUSES as UNFINISHED_STATUSES
from ivr.tickets.statuses import Status as Status


class Channel(StrEnum):
    TWILIO = "twilio"
    ASTERISK = "asterisk"
    TERMINAL = "terminal"
    WEB = "web"


class Ticket(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tracking: str = Field(index=True, unique=True, max_length=10)
    channel: str = Field(max_length=16)
    province: str = Field(max_length=32)
    category: str = Field(max_length=16)
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

    # The SLA clocks (ivr.calendar.policy.deadlines): None while a pause stops a clock.
    first_response_due_at: datetime | None = None
    first_response_warn_at: datetime | None = None
    resolution_warn_at: datetime | None = None
    responded_at: datetime | None = None
    """The first status change out of ``registered`` made by a person: stops the first clock."""
    first_response_warned_at: datetime | None = None
    resolution_warned_at: datetime | None = None
    """When the watch wrote the 75 % warning line; set once, so it is written once."""
    escalation_level: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """0 none, 1 the province's supervisors, 2 the ministry's national supervisors."""
    escalated_at: datetime | None = None
    """When the current escalation level was reached."""
    call_key: str | None = Field(default=None, max_length=80, index=True, unique=True)
    """The call it was registered on (``channel:external id``): one ticket per call, whatever
    retries, replays and the spool do; None for tickets made elsewhere."""
    sla_check_at: datetime | None = Field(default=None, index=True)
    """When the overdue watch must next look at this ticket; None: nothing pending.

    One index serves warnings, both escalation levels and closed tickets' clean-up, and a
    minute's scan touches only tickets with something due, not every open ticket.  It is a hint:
    the watch re-checks the real columns, so an early value costs one look, never a wrong step.
    """

    # The desk (ivr.web.desk): who works it, the answer the caller hears on following up.
    assignee: str | None = Field(default=None, max_length=64)
    """The user name (ivr.users) of the agent working it; users are never deleted or renamed."""
    answer_text: str | None = None
    answer_audio_path: str | None = None
    """The answer rendered with the prompts' voice (or uploaded): the follow-up plays it."""
    answered_at: datetime | None = None
    callback_reversed: str | None = Field(default=None, max_length=16, index=True)
    caller_reversed: str | None = Field(default=None, max_length=32, index=True)
    """The numbers' digits reversed: "the last digits of a phone number" becomes a range
    (prefix) search on an index, on SQLite and PostgreSQL alike."""

    # Every index is a page a new ticket's commit writes (migration 0016 dropped three): the
    # province's lookups go through ix_ticket_desk_province, and only worked tickets are in
    # ix_ticket_assignee.
    __table_args__ = (
        Index(
            "ix_ticket_assignee",
            "assignee",
            sqlite_where=text("assignee IS NOT NULL"),
            postgresql_where=text("assignee IS NOT NULL"),
        ),
        Index("ix_ticket_desk_province", "province", "id"),
        Index("ix_ticket_desk_status", "province", "status", "id"),
        Index("ix_ticket_desk_due", "province", "status", "due_at"),
    )


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


class TrackingKey(SQLModel, table=True):
    """The secret tracking numbers are derived with (one row, written by migration 0009), and
    where consecutive numbers from before it end (ivr.tickets.tracking.keyed_tracking)."""

    __tablename__ = "tracking_key"

    id: int | None = Field(default=None, primary_key=True)
    secret: str = Field(max_length=64)
    legacy_end: int = 0


class Call(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64, index=True, unique=True)
    """Twilio's CallSid, Asterisk's uniqueid, or a generated id for the terminal phone."""
    channel_id: str | None = Field(default=None, max_length=128)
    """The network's own name for the line, to find the call in its logs: Asterisk's channel
    name (``PJSIP/trunk-0000002a``, as in the CDR), Twilio's ParentCallSid when the call was
    forwarded from another call, else its CallSid; None for the terminal phone."""
    caller: str | None = Field(default=None, max_length=32, index=True)
    """As the network delivered it; indexed for the desk's "other calls from this number"."""
    called: str | None = Field(default=None, max_length=32)
    """The number the caller dialled, as the network delivered it."""
    province: str | None = Field(default=None, max_length=32, index=True)
    """The province the call was answered for: the one claiming ``called``, else the node's."""
    started_at: datetime = Field(default_factory=utcnow, index=True)
    ended_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=24)
    """What came of it (``ivr.flow.outcomes.CallOutcome``): ticket, followup, transferred,
    abandoned, failed."""
    ended_by: str | None = Field(default=None, max_length=16)
    """How the IVR's part ended (``ivr.flow.outcomes.CallEnd``): caller, ivr, transferred,
    system_error; a transfer's cause is in its ``call_step``."""
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    state: str = "{}"
    """The flow engine's state as JSON, so any node can take the call's next webhook."""
    turn: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    """How many answers the call was given: a webhook for an older turn is a retry or replay."""
    reply: str | None = None
    """The last answer (TwiML), given again to a retry or replay of the turn that got it."""
    reply_token: str | None = Field(default=None, max_length=64)
    """Twilio's ``I-Twilio-Idempotency-Token`` of the request that got ``reply``."""

    # The agents' queue, from Asterisk's AMI events (ivr.telephony.queue_events) or Twilio's
    # queue webhooks (ivr.web.twilio_queue, twilio_agents): how long a transferred caller
    # waited, whether a person answered, who, and how long they talked. None: never queued.
    queue: str | None = Field(default=None, max_length=64)
    queue_joined_at: datetime | None = Field(default=None, index=True)
    queue_left_at: datetime | None = None
    queue_wait_s: float | None = None
    """Seconds from joining the queue to an agent answering, the caller hanging up, or the
    queue giving up."""
    queue_outcome: str | None = Field(default=None, max_length=16)
    """connected, abandoned (the caller hung up while waiting) or left (the queue gave up)."""
    agent: str | None = Field(default=None, max_length=128)
    """The queue member who answered (its MemberName in queues.conf)."""
    queue_talk_s: float | None = None
    """Seconds the caller talked with that agent (AMI ``AgentComplete``'s ``TalkTime``)."""


class CallStep(SQLModel, table=True):
    """One turn of one call: where the caller was, what they did, what came of it."""

    __tablename__ = "call_step"

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    node: str = Field(max_length=48)
    """Where the caller was when the event came (for a transfer: where it happened)."""
    event: str = Field(max_length=24)
    """``ivr.flow.outcomes.EventKind``."""
    key: str | None = Field(default=None, max_length=32)
    """A menu key as pressed; a typed number only as its length (``"11 digits"``)."""
    outcome: str = Field(max_length=24)
    """``ivr.flow.outcomes.StepOutcome``; a transfer's outcome is its cause."""


class FollowupTry(SQLModel, table=True):
    """A follow-up try that failed: a wrong last 4 digits for a ticket, or a tracking number
    that names no ticket. Counted per ticket and per calling number over a window, so every
    node refuses a guesser alike (written only by ``ivr.followup_guard``)."""

    __tablename__ = "followup_try"
    __table_args__ = (
        Index("ix_followup_try_tracking_at", "tracking", "at"),
        Index("ix_followup_try_caller_at", "caller", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    tracking: str = Field(max_length=16)
    """The tracking number typed (it may name no ticket)."""
    caller: str = Field(max_length=32)
    """The calling number as the network gave it; ``withheld`` when it gave none."""
    kind: str = Field(max_length=16)
    """``mismatch`` (wrong last 4) or ``not_found`` (no such ticket)."""
    call_id: int | None = Field(default=None, foreign_key="call.id")


class DeadlinesLike(Protocol):
    """``ivr.calendar.Deadlines`` (not imported: the models stay below the calendar)."""

    @property
    def first_response_due(self) -> datetime | None: ...
    @property
    def resolution_due(self) -> datetime | None: ...
    @property
    def first_response_warn(self) -> datetime | None: ...
    @property
    def resolution_warn(self) -> datetime | None: ...


def reversed_digits(number: str | None) -> str | None:
    """``09121234567`` → ``76543212190``: the key the desk's phone search runs on."""
    digits = "".join(c for c in (number or "") if c.isdigit())
    return digits[::-1] or None


def deadline_columns(deadlines: DeadlinesLike) -> dict[str, datetime | None]:
    """A ticket's deadline columns (aware UTC) from the calendar's naive-UTC ``Deadlines``."""
    return {
        "due_at": as_aware(deadlines.resolution_due),
        "first_response_due_at": as_aware(deadlines.first_response_due),
        "first_response_warn_at": as_aware(deadlines.first_response_warn),
        "resolution_warn_at": as_aware(deadlines.resolution_warn),
    }


def next_sla_check(row: Any) -> datetime | None:
    """The earliest pending moment of a ticket-like ``row`` (Ticket or a result row), or None.

    Warnings not yet written, the resolution deadline before level 1; a ticket already escalated
    is looked at again now-ish (its level-2 moment needs the calendar, which the watch has).
    """
    if row.status not in OPEN_STATUSES:
        return None
    moments: list[datetime | None] = []
    if row.responded_at is None and row.first_response_warned_at is None:
        moments.append(row.first_response_warn_at)
    if row.resolution_warned_at is None and row.escalation_level == 0:
        moments.append(row.resolution_warn_at)
    if row.escalation_level == 0:
        moments.append(row.due_at)
    elif row.escalation_level == 1:
        moments.append(row.escalated_at)
    found = [as_aware(m) for m in moments if m is not None]
    return min(found) if found else None  # type: ignore[type-var]


StatusChange = tuple[datetime, str | None, str | None]
"""(when, old status, new status) from a ticket's history."""


def pauses_from_history(changes: Iterable[StatusChange]) -> list[tuple[datetime, datetime | None]]:
    """Intervals spent waiting for the caller (the last one open if still waiting), aware UTC."""
    pauses: list[tuple[datetime, datetime | None]] = []
    started: datetime | None = None
    for at, old, new in sorted(changes, key=lambda c: as_aware(c[0]) or c[0]):
        moment = as_aware(at)
        assert moment is not None
        if new == Status.WAITING_FOR_CALLER and started is None:
            started = moment
        elif old == Status.WAITING_FOR_CALLER and new != old and started is not None:
            pauses.append((started, moment))
            started = None
    if started is not None:
        pauses.append((started, None))
    return pauses


# The calendar and the escalation ladder, as data an administrator edits ------------------------


class HolidayRow(SQLModel, table=True):
    """A closed day: fixed Jalali holiday, lunar holiday or one-off closure (ivr.calendar.store).

    ``province`` None means nationwide.  ``estimated`` is the ``holidays`` package's word that a
    lunar date awaits moon sighting; ``confirmed`` is an administrator's word that it is right.
    """

    __tablename__ = "holiday"

    id: int | None = Field(default=None, primary_key=True)
    day: date = Field(index=True)
    name: str = Field(max_length=128)
    kind: str = Field(max_length=16)
    """fixed, lunar, holiday (added by an administrator) or closure (ivr.calendar.workdays)."""
    province: str | None = Field(default=None, max_length=32)
    estimated: bool = False
    confirmed: bool = False
    updated_at: datetime = Field(default_factory=utcnow)
    """With the row count, tells a process's cached calendar that the data changed."""


class HolidaySeed(SQLModel, table=True):
    """One row per Jalali year whose holidays were seeded: seed once, even with several nodes.

    The primary key makes a second node's seed fail instead of doubling the year's holidays,
    and a holiday an administrator removed is not seeded back.
    """

    __tablename__ = "holiday_seed"

    jalali_year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    seeded_at: datetime = Field(default_factory=utcnow)


class ThursdayRuleRow(SQLModel, table=True):
    """Thursday's status from ``effective_from`` on, until the next rule (a decree is a row)."""

    __tablename__ = "thursday_rule"

    id: int | None = Field(default=None, primary_key=True)
    effective_from: date = Field(index=True, unique=True)
    open: bool = False
    opens: time = time(8, 0)
    closes: time = time(13, 0)
    updated_at: datetime = Field(default_factory=utcnow)


class Supervisor(SQLModel, table=True):
    """Who is told of an escalation: a province's supervisors (level 1), or national (level 2)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128)
    email: str = Field(max_length=254)
    province: str | None = Field(default=None, max_length=32, index=True)
    """None: a national supervisor at the ministry."""
    active: bool = True


class Notification(SQLModel, table=True):
    """The outbox: one e-mail to one recipient for one step of one ticket.

    UNIQUE(ticket_id, step, recipient) makes "queue this step" safe to repeat and to race: the
    second insert fails.  ``sent_at`` is set in the transaction that claims the row, before the
    SMTP conversation, so no restart or second node sends it again (ivr.notify).
    """

    __table_args__ = (
        UniqueConstraint("ticket_id", "step", "recipient", name="uq_notification_step"),
        Index("ix_notification_pending", "sent_at", "not_before"),
    )

    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int | None = Field(default=None, foreign_key="ticket.id")
    step: str = Field(max_length=32)
    """escalation-1, escalation-2 …"""
    recipient: str = Field(max_length=254)
    province: str = Field(max_length=32)
    """Whose office hours the mail waits for (the recipient's province; national: Tehran)."""
    sender: str = Field(max_length=254)
    subject: str
    body: str
    """The plain-text part."""
    body_html: str | None = None
    """The HTML part (RTL Persian), sent as the alternative to ``body``."""
    created_at: datetime = Field(default_factory=utcnow)
    not_before: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_error: str | None = None
    attachments: str | None = None
    """JSON list of file paths attached to the mail (the nightly report's PDF and CSV)."""
    office_hours: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    """Held until the recipient's office opens (escalations); False: sent when due (the
    nightly report, which supervisors read at night)."""


class ReportDelivery(SQLModel, table=True):
    """One row per day and scope whose report was queued for mail (ivr.reports.delivery).

    The primary key makes "send the day's report" safe to repeat and to race across nodes and
    restarts: the second insert fails and sends nothing.
    """

    __tablename__ = "report_delivery"

    day: date = Field(primary_key=True)
    """The Tehran (Jalali) day the report is about."""
    scope: str = Field(primary_key=True, max_length=32)
    """A province code, or ``national``."""
    queued_at: datetime = Field(default_factory=utcnow)
    recipients: int = 0
