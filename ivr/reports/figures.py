"""One Jalali day's figures, computed by the database: a few aggregate queries, no rows in Python.

Every figure is a ``GROUP BY`` or a ``SUM(CASE …)`` over the day's rows (SQLAlchemy Core, the
same statements on SQLite and PostgreSQL), so a day of 100,000 calls costs the database's time,
not this process's memory. The day is 00:00–24:00 Asia/Tehran, turned into UTC bounds once
(``ivr.clock``); a scope is one province or the whole country (``None``). What each figure
means is written in ``definitions.toml`` and printed in the report.

Ticket figures that depend on a moment (open, overdue, escalated) are taken as they stood at
the day's end, from the ticket's history, so rendering the same day again gives the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.sql.selectable import Subquery

from ivr.callbacks.models import Callback, CallbackAttempt, Outcome
from ivr.clock import TEHRAN, as_stored, day_start_utc, utcnow
from ivr.flow.outcomes import CallEnd, CallOutcome, StepOutcome
from ivr.tickets.models import Call, CallStep, Ticket, TicketEvent
from ivr.tickets.statuses import OPEN_STATUSES, UNFINISHED_STATUSES, Status

CALL = Call.__table__  # type: ignore[attr-defined]
STEP = CallStep.__table__  # type: ignore[attr-defined]
TICKET = Ticket.__table__  # type: ignore[attr-defined]
EVENT = TicketEvent.__table__  # type: ignore[attr-defined]
CALLBACK = Callback.__table__  # type: ignore[attr-defined]
ATTEMPT = CallbackAttempt.__table__  # type: ignore[attr-defined]

SHORT_ABANDON_S = 5.0
"""A caller who hangs up within this many seconds of joining the queue is listed apart."""
WAIT_BUCKETS: tuple[tuple[float, float | None], ...] = (
    (0, 10),
    (10, 20),
    (20, 30),
    (30, 60),
    (60, 120),
    (120, 300),
    (300, None),
)
"""The queue wait distribution's bins in seconds, [low, high); None: no upper bound."""
OLDEST_OVERDUE = 10
CONTAINED_OUTCOMES = (
    CallOutcome.TICKET.value,
    CallOutcome.FOLLOWUP.value,
    CallOutcome.CALLBACK.value,
)
RANG_OUTCOMES = (
    Outcome.ANSWERED.value,
    Outcome.NO_ANSWER.value,
    Outcome.BUSY.value,
    Outcome.FAILED.value,
)
"""Attempt outcomes where the caller's phone was really tried (withdrawn and interrupted not)."""


@dataclass(frozen=True)
class Day:
    """One Tehran day and its UTC bounds."""

    day: date
    start: datetime
    end: datetime
    hours: tuple[datetime, ...]
    """The UTC moment each local hour starts (24 of them, 25 bounds with ``end``)."""

    @classmethod
    def of(cls, day: date) -> Day:
        start, end = day_start_utc(day), day_start_utc(day + timedelta(days=1))
        hours = tuple(
            datetime(day.year, day.month, day.day, hour, tzinfo=TEHRAN).astimezone(start.tzinfo)
            for hour in range(24)
        )
        return cls(day, start, end, hours)


@dataclass(frozen=True)
class NodeFigures:
    node: str
    reached: int
    dropped: int
    wrong_keys: int
    silences: int
    transfers_after_failures: int

    @property
    def drop_rate(self) -> float | None:
        return self.dropped / self.reached if self.reached else None


@dataclass(frozen=True)
class AgentFigures:
    agent: str
    calls: int
    talk_s: float | None
    tickets: int


@dataclass(frozen=True)
class AgencyFigures:
    agency: str
    referred: int
    answered: int
    late: int


@dataclass(frozen=True)
class OverdueTicket:
    tracking: str
    agency: str | None
    category: str
    province: str
    due_at: datetime
    escalation_level: int


@dataclass
class Figures:
    """Everything one report says, for one day and one scope."""

    day: date
    province: str | None
    computed_at: datetime = field(default_factory=utcnow)
    # calls
    received: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    by_hour: list[int] = field(default_factory=lambda: [0] * 24)
    repeat_callers: int = 0
    repeat_calls: int = 0
    # the IVR
    contained: int = 0
    nodes: list[NodeFigures] = field(default_factory=list)
    # the queue
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    queue_gave_up: int = 0
    answered_in_threshold: int = 0
    service_level_s: float = 20.0
    average_answer_s: float | None = None
    longest_wait_s: float | None = None
    average_talk_s: float | None = None
    wait_buckets: list[int] = field(default_factory=lambda: [0] * len(WAIT_BUCKETS))
    agents: list[AgentFigures] = field(default_factory=list)
    # callbacks
    callbacks_requested: int = 0
    callbacks_placed: int = 0
    callbacks_reached: int = 0
    callbacks_failed: int = 0
    callback_delay_s: float | None = None
    # tickets
    tickets_new: int = 0
    new_by_category: dict[str, int] = field(default_factory=dict)
    new_by_place: dict[str, int] = field(default_factory=dict)
    new_by_channel: dict[str, int] = field(default_factory=dict)
    tickets_answered: int = 0
    tickets_closed: int = 0
    tickets_open: int = 0
    due: int = 0
    due_answered_in_time: int = 0
    overdue: int = 0
    escalated: dict[int, int] = field(default_factory=dict)
    """Open tickets at the day's end by escalation level (1, 2)."""
    agencies: list[AgencyFigures] = field(default_factory=list)
    oldest_overdue: list[OverdueTicket] = field(default_factory=list)

    @property
    def peak_hour(self) -> int | None:
        best = max(self.by_hour)
        return self.by_hour.index(best) if best else None

    @property
    def containment(self) -> float | None:
        return _ratio(self.contained, self.received)

    @property
    def abandon_rate(self) -> float | None:
        return _ratio(self.abandoned, self.offered)

    @property
    def service_level(self) -> float | None:
        return _ratio(self.answered_in_threshold, self.answered)

    @property
    def sla_compliance(self) -> float | None:
        return _ratio(self.due_answered_in_time, self.due)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    """``end − start`` in seconds, in the dialect's own arithmetic."""
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


class _Query:
    """The statements for one day and scope, sharing the bounds and the scope's condition."""

    def __init__(self, connection: Connection, day: Day, province: str | None) -> None:
        self.c, self.day, self.province = connection, day, province
        self.dialect = connection.dialect.name
        self.start = as_stored(CALL.c.started_at, day.start)
        self.end = as_stored(CALL.c.started_at, day.end)

    def in_day(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)

    def scoped(self, column: Any) -> ColumnElement[bool]:
        return literal(True) if self.province is None else column == self.province

    def day_calls(self) -> ColumnElement[bool]:
        return and_(self.in_day(CALL.c.started_at), self.scoped(CALL.c.province))

    # -- calls --------------------------------------------------------------------------------

    def calls(self, figures: Figures) -> None:
        hours = [*self.day.hours, self.day.end]
        columns = [
            _count_if(
                and_(
                    CALL.c.started_at >= as_stored(CALL.c.started_at, hours[h]),
                    CALL.c.started_at < as_stored(CALL.c.started_at, hours[h + 1]),
                )
            )
            for h in range(24)
        ]
        contained = _count_if(
            and_(CALL.c.outcome.in_(CONTAINED_OUTCOMES), CALL.c.queue_joined_at.is_(None))
        )
        row = self.c.execute(
            select(func.count(), contained, *columns).select_from(CALL).where(self.day_calls())
        ).one()
        figures.received, figures.contained = int(row[0]), int(row[1])
        figures.by_hour = [int(v) for v in row[2:]]
        figures.by_channel = {
            str(channel): int(n)
            for channel, n in self.c.execute(
                select(CALL.c.channel, func.count())
                .where(self.day_calls())
                .group_by(CALL.c.channel)
                .order_by(CALL.c.channel)
            )
        }
        per_number = (
            select(CALL.c.caller, func.count().label("n"))
            .where(self.day_calls(), CALL.c.caller.is_not(None), CALL.c.caller != "")
            .group_by(CALL.c.caller)
            .having(func.count() > 1)
            .subquery()
        )
        repeat = self.c.execute(
            select(func.count(), func.coalesce(func.sum(per_number.c.n), 0))
        ).one()
        figures.repeat_callers, figures.repeat_calls = int(repeat[0]), int(repeat[1])

    # -- the IVR's menus ----------------------------------------------------------------------

    def nodes(self, figures: Figures) -> None:
        steps = (
            select(
                STEP.c.node,
                func.count(distinct(STEP.c.call_id)).label("reached"),
                _count_if(STEP.c.outcome == StepOutcome.INVALID.value).label("wrong"),
                _count_if(STEP.c.outcome == StepOutcome.TIMEOUT.value).label("silent"),
                _count_if(STEP.c.outcome == StepOutcome.TRANSFER_AFTER_FAILURES.value).label(
                    "transfers"
                ),
            )
            .select_from(STEP.join(CALL, STEP.c.call_id == CALL.c.id))
            .where(self.day_calls())
            .group_by(STEP.c.node)
        )
        last = self._last_steps()
        drops = dict(
            self.c.execute(
                select(STEP.c.node, func.count())
                .select_from(
                    last.join(STEP, STEP.c.id == last.c.last_id).join(
                        CALL, CALL.c.id == last.c.call_id
                    )
                )
                .where(CALL.c.ended_by == CallEnd.CALLER.value)
                .group_by(STEP.c.node)
            ).all()
        )
        rows = self.c.execute(steps).all()
        figures.nodes = sorted(
            (
                NodeFigures(
                    str(r.node),
                    int(r.reached),
                    int(drops.get(r.node, 0)),
                    int(r.wrong),
                    int(r.silent),
                    int(r.transfers),
                )
                for r in rows
            ),
            key=lambda n: (-n.reached, n.node),
        )

    def _last_steps(self) -> Subquery:
        return (
            select(STEP.c.call_id, func.max(STEP.c.id).label("last_id"))
            .select_from(STEP.join(CALL, STEP.c.call_id == CALL.c.id))
            .where(self.day_calls())
            .group_by(STEP.c.call_id)
            .subquery()
        )

    # -- the agents' queue --------------------------------------------------------------------

    def queue(self, figures: Figures, threshold_s: float) -> None:
        queued = and_(self.day_calls(), CALL.c.queue_joined_at.is_not(None))
        wait = CALL.c.queue_wait_s
        connected = CALL.c.queue_outcome == "connected"
        abandoned = CALL.c.queue_outcome == "abandoned"
        talk = CALL.c.queue_talk_s  # AgentComplete's TalkTime: the conversation's own length
        has_talk = and_(connected, talk.is_not(None))
        buckets = [
            _count_if(and_(wait >= low) if high is None else and_(wait >= low, wait < high))
            for low, high in WAIT_BUCKETS
        ]
        row = self.c.execute(
            select(
                func.count(),
                _count_if(connected),
                _count_if(abandoned),
                _count_if(and_(abandoned, wait < SHORT_ABANDON_S)),
                _count_if(CALL.c.queue_outcome == "left"),
                _count_if(and_(connected, wait <= threshold_s)),
                func.avg(case((connected, wait))),
                func.max(wait),
                func.avg(case((has_talk, talk))),
                *buckets,
            ).where(queued)
        ).one()
        figures.offered, figures.answered, figures.abandoned = (int(v) for v in row[:3])
        figures.short_abandoned, figures.queue_gave_up = int(row[3]), int(row[4])
        figures.answered_in_threshold, figures.service_level_s = int(row[5]), threshold_s
        figures.average_answer_s = _float(row[6])
        figures.longest_wait_s = _float(row[7])
        figures.average_talk_s = _float(row[8])
        figures.wait_buckets = [int(v) for v in row[9:]]
        handled = dict(
            self.c.execute(
                select(EVENT.c.actor, func.count(distinct(EVENT.c.ticket_id)))
                .select_from(EVENT.join(TICKET, TICKET.c.id == EVENT.c.ticket_id))
                .where(self.in_day(EVENT.c.at), self.scoped(TICKET.c.province))
                .group_by(EVENT.c.actor)
            ).all()
        )
        agents = self.c.execute(
            select(CALL.c.agent, func.count(), func.sum(case((has_talk, talk))))
            .where(queued, connected, CALL.c.agent.is_not(None))
            .group_by(CALL.c.agent)
            .order_by(CALL.c.agent)
        ).all()
        figures.agents = [
            AgentFigures(str(a), int(n), _float(t), int(handled.get(a, 0))) for a, n, t in agents
        ]

    # -- callbacks ----------------------------------------------------------------------------

    def callbacks(self, figures: Figures) -> None:
        rang = (
            select(ATTEMPT.c.callback_id)
            .where(ATTEMPT.c.outcome.in_(RANG_OUTCOMES))
            .group_by(ATTEMPT.c.callback_id)
            .subquery()
        )
        reached = (
            select(
                ATTEMPT.c.callback_id,
                func.min(func.coalesce(ATTEMPT.c.connected_at, ATTEMPT.c.started_at)).label("at"),
            )
            .where(ATTEMPT.c.outcome == Outcome.ANSWERED.value)
            .group_by(ATTEMPT.c.callback_id)
            .subquery()
        )
        delay = seconds_between(self.dialect, CALLBACK.c.requested_at, reached.c.at)
        row = self.c.execute(
            select(
                func.count(),
                func.count(rang.c.callback_id),
                func.count(reached.c.callback_id),
                _count_if(CALLBACK.c.status == "failed"),
                func.avg(delay),
            )
            .select_from(
                CALLBACK.outerjoin(rang, rang.c.callback_id == CALLBACK.c.id).outerjoin(
                    reached, reached.c.callback_id == CALLBACK.c.id
                )
            )
            .where(self.in_day(CALLBACK.c.requested_at), self.scoped(CALLBACK.c.province))
        ).one()
        figures.callbacks_requested, figures.callbacks_placed = int(row[0]), int(row[1])
        figures.callbacks_reached, figures.callbacks_failed = int(row[2]), int(row[3])
        figures.callback_delay_s = _float(row[4])

    # -- tickets ------------------------------------------------------------------------------

    def tickets(self, figures: Figures) -> None:
        new = and_(self.in_day(TICKET.c.created_at), self.scoped(TICKET.c.province))
        figures.tickets_new = int(self.c.execute(select(func.count()).where(new)).scalar_one())
        for column, target in (
            (TICKET.c.category, figures.new_by_category),
            (func.coalesce(TICKET.c.place, ""), figures.new_by_place),
            (TICKET.c.channel, figures.new_by_channel),
        ):
            for key, n in self.c.execute(
                select(column, func.count()).where(new).group_by(column).order_by(column)
            ):
                target[str(key)] = int(n)
        changed = and_(
            EVENT.c.kind == "status", self.in_day(EVENT.c.at), self.scoped(TICKET.c.province)
        )
        joined = EVENT.join(TICKET, TICKET.c.id == EVENT.c.ticket_id)
        row = self.c.execute(
            select(
                func.count(
                    distinct(case((EVENT.c.new_value == Status.ANSWERED.value, EVENT.c.ticket_id)))
                ),
                func.count(
                    distinct(case((EVENT.c.new_value == Status.CLOSED.value, EVENT.c.ticket_id)))
                ),
            )
            .select_from(joined)
            .where(changed)
        ).one()
        figures.tickets_answered, figures.tickets_closed = int(row[0]), int(row[1])
        self._at_day_end(figures)
        self._due(figures)
        self._agencies(figures)

    def _status_at_end(self) -> Subquery:
        """Each ticket's status as the day ended: its last status change before the end."""
        last = (
            select(EVENT.c.ticket_id, func.max(EVENT.c.id).label("last_id"))
            .where(EVENT.c.kind == "status", EVENT.c.at < self.end)
            .group_by(EVENT.c.ticket_id)
            .subquery()
        )
        level = (
            select(EVENT.c.ticket_id, func.max(cast(EVENT.c.new_value, Integer)).label("level"))
            .where(EVENT.c.kind == "escalated", EVENT.c.at < self.end)
            .group_by(EVENT.c.ticket_id)
            .subquery()
        )
        status = func.coalesce(EVENT.c.new_value, Status.REGISTERED.value)
        return (
            select(
                TICKET.c.id,
                TICKET.c.tracking,
                TICKET.c.agency,
                TICKET.c.category,
                TICKET.c.province,
                TICKET.c.due_at,
                status.label("status"),
                func.coalesce(level.c.level, 0).label("level"),
            )
            .select_from(
                TICKET.outerjoin(last, last.c.ticket_id == TICKET.c.id)
                .outerjoin(EVENT, EVENT.c.id == last.c.last_id)
                .outerjoin(level, level.c.ticket_id == TICKET.c.id)
            )
            .where(TICKET.c.created_at < self.end, self.scoped(TICKET.c.province))
            .subquery()
        )

    def _at_day_end(self, figures: Figures) -> None:
        state = self._status_at_end()
        overdue = and_(state.c.status.in_(OPEN_STATUSES), state.c.due_at < self.end)
        row = self.c.execute(
            select(
                _count_if(state.c.status.in_(UNFINISHED_STATUSES)),
                _count_if(overdue),
                _count_if(and_(state.c.status.in_(UNFINISHED_STATUSES), state.c.level == 1)),
                _count_if(and_(state.c.status.in_(UNFINISHED_STATUSES), state.c.level >= 2)),
            )
        ).one()
        figures.tickets_open, figures.overdue = int(row[0]), int(row[1])
        figures.escalated = {1: int(row[2]), 2: int(row[3])}
        oldest = self.c.execute(
            select(state).where(overdue).order_by(state.c.due_at, state.c.id).limit(OLDEST_OVERDUE)
        ).all()
        figures.oldest_overdue = [
            OverdueTicket(r.tracking, r.agency, r.category, r.province, r.due_at, int(r.level))
            for r in oldest
        ]
        late = self.c.execute(
            select(state.c.agency, func.count())
            .where(overdue, state.c.agency.is_not(None))
            .group_by(state.c.agency)
        ).all()
        self._late = {str(a): int(n) for a, n in late}

    def _due(self, figures: Figures) -> None:
        answered = (
            select(EVENT.c.ticket_id, func.min(EVENT.c.at).label("at"))
            .where(EVENT.c.kind == "status", EVENT.c.new_value == Status.ANSWERED.value)
            .group_by(EVENT.c.ticket_id)
            .subquery()
        )
        row = self.c.execute(
            select(func.count(), _count_if(answered.c.at <= TICKET.c.due_at))
            .select_from(TICKET.outerjoin(answered, answered.c.ticket_id == TICKET.c.id))
            .where(self.in_day(TICKET.c.due_at), self.scoped(TICKET.c.province))
        ).one()
        figures.due, figures.due_answered_in_time = int(row[0]), int(row[1])

    def _agencies(self, figures: Figures) -> None:
        joined = EVENT.join(TICKET, TICKET.c.id == EVENT.c.ticket_id)
        scope = and_(self.in_day(EVENT.c.at), self.scoped(TICKET.c.province))
        referred = dict(
            self.c.execute(
                select(EVENT.c.new_value, func.count(distinct(EVENT.c.ticket_id)))
                .select_from(joined)
                .where(scope, EVENT.c.kind == "agency")
                .group_by(EVENT.c.new_value)
            ).all()
        )
        answered = dict(
            self.c.execute(
                select(TICKET.c.agency, func.count(distinct(EVENT.c.ticket_id)))
                .select_from(joined)
                .where(
                    scope,
                    EVENT.c.kind == "status",
                    EVENT.c.new_value == Status.ANSWERED.value,
                    TICKET.c.agency.is_not(None),
                )
                .group_by(TICKET.c.agency)
            ).all()
        )
        names = sorted({*referred, *answered, *self._late})
        figures.agencies = [
            AgencyFigures(
                str(a), int(referred.get(a, 0)), int(answered.get(a, 0)), self._late.get(a, 0)
            )
            for a in names
        ]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def compute(
    engine: Engine, day: date, province: str | None = None, *, service_level_s: float = 20.0
) -> Figures:
    """The day's figures for ``province`` (None: national), in one read-only transaction."""
    figures = Figures(day=day, province=province)
    with engine.connect() as connection:
        query = _Query(connection, Day.of(day), province)
        query.calls(figures)
        query.nodes(figures)
        query.queue(figures, service_level_s)
        query.callbacks(figures)
        query.tickets(figures)
    return figures


def provinces_of_day(engine: Engine, day: date) -> list[str]:
    """The provinces with a call or a ticket that day: each gets its own report."""
    bounds = Day.of(day)
    with engine.connect() as connection:
        start = as_stored(CALL.c.started_at, bounds.start)
        end = as_stored(CALL.c.started_at, bounds.end)
        calls = select(CALL.c.province.label("p")).where(
            CALL.c.started_at >= start, CALL.c.started_at < end, CALL.c.province.is_not(None)
        )
        tickets = select(TICKET.c.province.label("p")).where(
            or_(
                and_(TICKET.c.created_at >= start, TICKET.c.created_at < end),
                and_(TICKET.c.due_at >= start, TICKET.c.due_at < end),
            )
        )
        union = calls.union(tickets).subquery()
        return sorted(str(p) for (p,) in connection.execute(select(union.c.p)))
