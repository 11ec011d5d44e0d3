"""What the desk reads: ticket lists with filters, a phone or tracking search, "my work", and
everything around one ticket (its call's path through the menus, the caller's other calls and
tickets). Read only; the writes stay in :mod:`ivr.tickets.service`.

Every query takes a :class:`~ivr.tickets.scope.Scope` and puts it in the ``WHERE``. Lists are
pages of ``id`` descending with a keyset cursor (``before``), so page 500 costs what page 1
does; the indexes they use are in migration 0010 (province + status + id, province + id, the
reversed phone numbers for "the last digits").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, and_, or_, union
from sqlmodel import Session, col, select

from ivr.clock import as_aware, as_stored, day_start_utc, utcnow
from ivr.speech import normalize_digits
from ivr.tickets.models import OPEN_STATUSES, Call, CallStep, Ticket
from ivr.tickets.scope import Scope
from ivr.tickets.tracking import is_valid_tracking

PAGE_SIZE = 50
WAITING_STALE = timedelta(hours=2)
MIN_PHONE_DIGITS = 3
"""Fewer trailing digits would match a tenth of all tickets: not a search."""


@dataclass(frozen=True)
class TicketFilter:
    status: str | None = None
    category: str | None = None
    place: str | None = None
    channel: str | None = None
    overdue: bool = False
    escalation_level: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    """Inclusive, Tehran days."""
    q: str | None = None
    """A tracking number, or the last digits of the caller's or callback number."""
    assignee: str | None = None


@dataclass(frozen=True)
class Row:
    """One line of a list."""

    id: int
    tracking: str
    province: str
    category: str
    place: str | None
    channel: str
    status: str
    callback_number: str
    created_at: datetime
    due_at: datetime | None
    escalation_level: int
    assignee: str | None

    def overdue(self, now: datetime) -> bool:
        return self.due_at is not None and self.status in OPEN_STATUSES and self.due_at < now


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_before: int | None
    """The cursor of the next (older) page; None on the last one."""


@dataclass(frozen=True)
class StepLine:
    at: datetime
    node: str
    event: str
    key: str | None
    outcome: str


@dataclass(frozen=True)
class CallLine:
    id: int
    channel: str
    caller: str | None
    started_at: datetime
    outcome: str | None
    steps: list[StepLine] = field(default_factory=list)


@dataclass(frozen=True)
class WaitingCaller:
    call_id: int
    caller: str | None
    joined_at: datetime


_ROW_COLUMNS = (
    Ticket.id,
    Ticket.tracking,
    Ticket.province,
    Ticket.category,
    Ticket.place,
    Ticket.channel,
    Ticket.status,
    Ticket.callback_number,
    Ticket.created_at,
    Ticket.due_at,
    Ticket.escalation_level,
    Ticket.assignee,
)


def _rows(result: list[tuple]) -> list[Row]:  # type: ignore[type-arg]
    rows = []
    for r in result:
        values = list(r)
        values[8] = as_aware(values[8])
        values[9] = as_aware(values[9])
        rows.append(Row(*values))
    return rows


def _prefix_range(column: object, prefix: str) -> object:
    """``column`` starts with ``prefix``, as a range an ordinary index answers."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(col(column) >= prefix, col(column) < upper)  # type: ignore[arg-type]


class DeskQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def conditions(self, scope: Scope, f: TicketFilter, now: datetime | None = None) -> list:  # type: ignore[type-arg]
        where = [scope.where(col(Ticket.province))]
        if f.status:
            where.append(col(Ticket.status) == f.status)
        if f.category:
            where.append(col(Ticket.category) == f.category)
        if f.place:
            where.append(col(Ticket.place) == f.place)
        if f.channel:
            where.append(col(Ticket.channel) == f.channel)
        if f.assignee:
            where.append(col(Ticket.assignee) == f.assignee)
        if f.escalation_level is not None:
            where.append(col(Ticket.escalation_level) == f.escalation_level)
        if f.overdue:
            moment = as_stored(Ticket.due_at, now or utcnow())
            where += [col(Ticket.status).in_(OPEN_STATUSES), col(Ticket.due_at) < moment]
        if f.created_from:
            start = as_stored(Ticket.created_at, day_start_utc(f.created_from))
            where.append(col(Ticket.created_at) >= start)
        if f.created_to:
            end = day_start_utc(f.created_to + timedelta(days=1))
            where.append(col(Ticket.created_at) < as_stored(Ticket.created_at, end))
        if f.q:
            where.append(self._search(f.q))
        return where

    @staticmethod
    def _search(q: str) -> object:
        digits = "".join(c for c in normalize_digits(q) if c.isascii() and c.isdigit())
        if len(digits) < MIN_PHONE_DIGITS and not is_valid_tracking(digits):
            return col(Ticket.id).is_(None)  # matches nothing: too short to mean anything
        tail = digits[::-1]
        matches = [
            select(Ticket.id).where(_prefix_range(Ticket.callback_reversed, tail)),
            select(Ticket.id).where(_prefix_range(Ticket.caller_reversed, tail)),
        ]
        if is_valid_tracking(digits):
            matches.append(select(Ticket.id).where(col(Ticket.tracking) == digits))
        # The ids each index finds, then the page: SQLite answers an OR of two indexed ranges
        # combined with ORDER BY id by walking the whole province newest first (168 ms on a
        # million tickets); a set of ids it looks up by rowid.
        return col(Ticket.id).in_(union(*matches))

    def page(
        self,
        scope: Scope,
        f: TicketFilter,
        before: int | None = None,
        limit: int = PAGE_SIZE,
        now: datetime | None = None,
    ) -> Page:
        """Newest first, ``limit`` rows older than the cursor ``before``."""
        where = self.conditions(scope, f, now)
        if before is not None:
            where.append(col(Ticket.id) < before)
        statement = (
            select(*_ROW_COLUMNS).where(*where).order_by(col(Ticket.id).desc()).limit(limit + 1)
        )
        with Session(self.engine) as session:
            rows = _rows(list(session.exec(statement)))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more and rows else None)

    def my_work(self, scope: Scope, me: str, limit: int = PAGE_SIZE) -> list[Row]:
        """Unfinished tickets in scope by deadline (overdue come first by being earliest),
        mine before the others'."""
        unfinished = (*OPEN_STATUSES, "waiting_for_caller")
        base = [scope.where(col(Ticket.province)), col(Ticket.status).in_(unfinished)]
        order = (col(Ticket.due_at).is_(None), col(Ticket.due_at), col(Ticket.id))
        with Session(self.engine) as session:
            mine = session.exec(
                select(*_ROW_COLUMNS)
                .where(*base, col(Ticket.assignee) == me)
                .order_by(*order)
                .limit(limit)
            ).all()
            others = session.exec(
                select(*_ROW_COLUMNS)
                .where(*base, or_(col(Ticket.assignee).is_(None), col(Ticket.assignee) != me))
                .order_by(*order)
                .limit(limit)
            ).all()
        return _rows([*mine, *others])[:limit]

    def waiting_now(
        self, scope: Scope, now: datetime | None = None, limit: int = 20
    ) -> list[WaitingCaller]:
        """Callers in the agents' queue now, longest waiting first, from the queue columns the
        PBX's AMI events keep (``QueueCallerJoin`` → ``QueueCallerLeave``). A call that joined
        more than ``WAITING_STALE`` ago without a leave is a lost event, not a caller."""
        now = now or utcnow()
        since = as_stored(Call.queue_joined_at, now - WAITING_STALE)
        statement = (
            select(Call)
            .where(
                scope.where(col(Call.province)),
                col(Call.queue_joined_at) >= since,
                col(Call.queue_left_at).is_(None),
                col(Call.ended_at).is_(None),
            )
            .order_by(col(Call.queue_joined_at), col(Call.id))
            .limit(limit)
        )
        with Session(self.engine) as session:
            calls = session.exec(statement).all()
        return [
            WaitingCaller(c.id or 0, c.caller, as_aware(c.queue_joined_at) or now) for c in calls
        ]

    def calls_of(self, tracking: str) -> list[CallLine]:
        """The calls that made or looked at this ticket, with each step, oldest first."""
        with Session(self.engine) as session:
            ticket_id = session.exec(select(Ticket.id).where(Ticket.tracking == tracking)).first()
            if ticket_id is None:
                return []
            calls = session.exec(
                select(Call).where(col(Call.ticket_id) == ticket_id).order_by(col(Call.id))
            ).all()
            lines = []
            for call in calls:
                steps = session.exec(
                    select(CallStep)
                    .where(col(CallStep.call_id) == call.id)
                    .order_by(col(CallStep.at), col(CallStep.id))
                ).all()
                lines.append(
                    CallLine(
                        call.id or 0,
                        call.channel,
                        call.caller,
                        as_aware(call.started_at),
                        call.outcome,
                        [
                            StepLine(as_aware(s.at), s.node, s.event, s.key, s.outcome)
                            for s in steps
                        ],
                    )
                )
            return lines

    def same_number(
        self, scope: Scope, tracking: str, numbers: list[str], limit: int = 20
    ) -> list[Row]:
        """Other tickets in scope from the same caller or callback number, newest first."""
        keys = sorted({n[::-1] for n in (self._digits(x) for x in numbers) if n})
        if not keys:
            return []
        match = or_(
            *(col(Ticket.callback_reversed) == k for k in keys),
            *(col(Ticket.caller_reversed) == k for k in keys),
        )
        statement = (
            select(*_ROW_COLUMNS)
            .where(scope.where(col(Ticket.province)), match, col(Ticket.tracking) != tracking)
            .order_by(col(Ticket.id).desc())
            .limit(limit)
        )
        with Session(self.engine) as session:
            return _rows(list(session.exec(statement)))

    def calls_from(self, numbers: list[str], limit: int = 20) -> list[CallLine]:
        """The latest calls from these numbers (as the network gave them), without steps."""
        wanted = sorted({n for n in numbers if n})
        if not wanted:
            return []
        with Session(self.engine) as session:
            calls = session.exec(
                select(Call)
                .where(col(Call.caller).in_(wanted))
                .order_by(col(Call.id).desc())
                .limit(limit)
            ).all()
        return [
            CallLine(c.id or 0, c.channel, c.caller, as_aware(c.started_at), c.outcome)
            for c in calls
        ]

    @staticmethod
    def _digits(number: str | None) -> str:
        return "".join(c for c in normalize_digits(number or "") if c.isdigit())
