"""Calls and each step of each call: what the reports are computed from, and where a call's
flow state waits between webhooks.

The only writer of the ``call`` and ``call_step`` tables: the session writes turns through it,
the AMI queue events (``ivr.telephony.queue_events``) their queue columns. Steps and endings are
checked against the flow's enums (``ivr.flow.outcomes``) on the way in, so no free string gets
into the records.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NoReturn, TypedDict

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    String,
    bindparam,
    cast,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.selectable import ScalarSelect
from sqlmodel import Session, col

from ivr.clock import as_aware, as_stored, utcnow
from ivr.flow.outcomes import CallEnd, CallOutcome, EventKind, StepOutcome
from ivr.tickets import kept
from ivr.tickets.db import one_statement_engine, session_scope
from ivr.tickets.models import (
    Call,
    CallStep,
    Ticket,
)
from ivr.tickets.prepared import Prepared


@dataclass(frozen=True)
class StepRecord:
    """One turn of a call as the flow runner reports it."""

    node: str
    event: EventKind
    key: str | None
    """A menu key as pressed; a typed number only as its length (it is personal data)."""
    outcome: StepOutcome
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class QueueWait:
    """A call's time in the agents' queue so far (aware UTC), as the AMI events left it."""

    joined_at: datetime | None
    left_at: datetime | None
    outcome: str | None


class QueueColumns(TypedDict, total=False):
    """The queue columns of a call that one AMI event changes (absent keys stay as they are)."""

    queue: str | None
    queue_joined_at: datetime | None
    queue_left_at: datetime | None
    queue_wait_s: float | None
    queue_outcome: str | None
    agent: str | None
    queue_talk_s: float | None


@dataclass(frozen=True)
class SavedCall:
    """What the last turn of a call left: its flow state and the answer it was given."""

    id: int
    state: str
    turn: int
    """How many answers the call was given (``/twilio/voice``'s is the first)."""
    reply: str | None
    reply_token: str | None
    remembered: bool = False
    """Read from this process's memory, not the database: this node gave the call's last
    answer, and its next turn's save checks that nobody changed the state since."""


@dataclass(frozen=True)
class Ending:
    """How a call ended, saved with its last turn."""

    outcome: CallOutcome
    ended_by: CallEnd
    ticket_tracking: str | None = None
    """Linked if that ticket is stored already (not spooled)."""


log = logging.getLogger(__name__)

RECENT_CALLS = 2000
"""Calls whose last turn this process keeps in memory, for when the database cannot be read."""


class TurnTaken(Exception):
    """Another request answered this turn of the call first (a retry or replay raced it)."""


_CALL = Call.__table__  # type: ignore[attr-defined]
_STEP = CallStep.__table__  # type: ignore[attr-defined]
_TICKET = Ticket.__table__  # type: ignore[attr-defined]
_ID_BY_SID = select(_CALL.c.id).where(_CALL.c.external_id == bindparam("sid"))
_SAVED_BY_SID = select(
    _CALL.c.id, _CALL.c.state, _CALL.c.turn, _CALL.c.reply, _CALL.c.reply_token
).where(_CALL.c.external_id == bindparam("sid"))
_INSERT_STEP = _STEP.insert()
_OPEN_KEYS = (
    "channel",
    "external_id",
    "caller",
    "called",
    "province",
    "channel_id",
    "started_at",
    "state",
    "turn",
)


def _save_turn_statement(turned: bool, ending: bool, linked: bool, checked: bool) -> Update:
    """The UPDATE a turn's save runs, built once per shape: building it from literal values
    on every turn cost more CPU than the rest of the save. ``checked``: only if the stored
    state is still the one the turn started from (it was remembered, not read)."""
    values: dict[str, object] = {"state": bindparam("b_state")}
    condition = _CALL.c.id == bindparam("b_id")
    if checked:
        condition = condition & (_CALL.c.state == bindparam("b_was"))
    if turned:
        values |= {
            "turn": bindparam("b_next"),
            "reply": bindparam("b_reply"),
            "reply_token": bindparam("b_token"),
        }
        condition = condition & (_CALL.c.turn == bindparam("b_turn"))
    if ending:
        values |= {
            "ended_at": bindparam("b_ended_at"),
            "outcome": bindparam("b_outcome"),
            "ended_by": bindparam("b_ended_by"),
            "ticket_id": select(_TICKET.c.id)
            .where(_TICKET.c.tracking == bindparam("b_tracking"))
            .scalar_subquery()
            if linked
            else None,
        }
    return update(_CALL).where(condition).values(**values)


_SAVE_TURN = {
    shape: _save_turn_statement(*shape) for shape in itertools.product((False, True), repeat=4)
}
"""By (a turn answered, the call ended, its ticket named, the state checked): the ticket is
only looked up when there is one (a spooled ticket is not found: linked later)."""

_STEP_COLUMNS = ("at", "node", "event", "key", "outcome")
_STEP_KEYS = ("call_id", *_STEP_COLUMNS)
_STEP_ARRAYS = {
    name: cast(bindparam(f"s_{name}"), ARRAY(DateTime(timezone=True) if name == "at" else String))
    for name in _STEP_COLUMNS
}


def _save_with_steps_statement(turned: bool, ending: bool, linked: bool, checked: bool) -> Insert:
    """PostgreSQL: a turn's update and its steps as one statement, autocommitted — one round
    trip where a transaction took four (BEGIN, UPDATE, INSERT, COMMIT), and still all or
    nothing. The steps come as one array per column; no step is stored unless the update
    found the call at its turn (and state, when checked), so the rows inserted say whether it
    did."""
    saved = _save_turn_statement(turned, ending, linked, checked)
    moved = saved.returning(_CALL.c.id).cte("moved")
    steps = func.unnest(*_STEP_ARRAYS.values()).table_valued(*_STEP_COLUMNS).render_derived()
    rows = select(moved.c.id, *(steps.c[name] for name in _STEP_COLUMNS)).join_from(
        moved, steps, true()
    )
    return insert(_STEP).from_select(["call_id", *_STEP_COLUMNS], rows)


def _ticket_id(tracking: str) -> ScalarSelect[int]:
    """The stored ticket's id, inside the call's update (NULL while it waits in the spool)."""
    return select(_TICKET.c.id).where(_TICKET.c.tracking == tracking).scalar_subquery()


class CallStore:
    """Calls and their steps; a call's flow state lives here so any node can take its next turn.

    Every call's turn passes here, so it is written in SQLAlchemy Core with statements built
    once: the ORM's unit of work cost more CPU per turn than the rest of the turn.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._single = one_statement_engine(engine)
        """For one statement (a call's load): autocommitted on PostgreSQL."""
        self._recent: OrderedDict[str, tuple[SavedCall, bool]] = OrderedDict()
        """The last turn of recent calls of this process, and whether the database has it:
        with the database out of reach a call this node answered goes on (a confirmed request
        is spooled, the caller hears its number); once it is back, a turn it missed wins."""
        self._sids: dict[int, str] = {}
        self._lock = threading.Lock()
        self._load = Prepared(_SAVED_BY_SID, engine.dialect)
        self._saves = {shape: Prepared(save, engine.dialect) for shape, save in _SAVE_TURN.items()}
        self._insert_steps = Prepared(_INSERT_STEP, engine.dialect, _STEP_KEYS)
        """Every turn's statements, prepared (:mod:`ivr.tickets.prepared`): SQLAlchemy's work
        around each execution cost more than SQLite's share of the turn."""
        dialect = engine.dialect.name
        self._saves_with_steps = (
            {
                shape: Prepared(_save_with_steps_statement(*shape), engine.dialect)
                for shape in _SAVE_TURN
            }
            if dialect == "postgresql"
            else None
        )
        """PostgreSQL: a turn's save as one autocommitted statement (SQLite has no UPDATE in
        a WITH clause; its transaction is no round trip anyway)."""
        insert_of = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}.get(dialect)
        self._open_insert = (
            None
            if insert_of is None
            else Prepared(
                insert_of(_CALL)
                .on_conflict_do_nothing(index_elements=["external_id"])
                .returning(_CALL.c.id),
                engine.dialect,
                _OPEN_KEYS,
            )
        )

    def open(
        self,
        channel: str,
        external_id: str,
        caller: str | None,
        called: str | None,
        *,
        province: str | None = None,
        channel_id: str | None = None,
    ) -> int:
        """The call's id, creating the row the first time (webhooks are retried: be idempotent).

        One statement for a new call (an insert that does nothing if the call exists); the
        existing call's id is read only when it did exist.
        """
        call_id = self._open(
            channel, external_id, caller, called, province=province, channel_id=channel_id
        )
        with self._lock:
            known = external_id in self._recent
        if not known:
            self._remember(external_id, SavedCall(call_id, "{}", 0, None, None), True)
        return call_id

    def _open(
        self,
        channel: str,
        external_id: str,
        caller: str | None,
        called: str | None,
        *,
        province: str | None = None,
        channel_id: str | None = None,
    ) -> int:
        values = {
            "channel": str(channel),
            "external_id": external_id,
            "caller": caller,
            "called": called,
            "province": province,
            "channel_id": channel_id,
            "started_at": as_stored(_CALL.c.started_at, utcnow()),
            "state": "{}",
            "turn": 0,
        }
        # PostgreSQL: one autocommitted statement
        with kept.connection(self._single) as connection, connection.begin():
            if self._open_insert is not None:
                made = self._open_insert.scalar(connection, values)
                if made is not None:
                    return int(made)
            else:  # another backend: no portable "insert unless there"
                existing = connection.execute(_ID_BY_SID, {"sid": external_id}).scalar()
                if existing is not None:
                    return int(existing)
                return int(connection.execute(_CALL.insert(), values).inserted_primary_key[0])
            existing = connection.execute(_ID_BY_SID, {"sid": external_id}).scalar()
        if existing is None:
            raise LookupError(f"call {external_id} was neither opened nor found")
        return int(existing)

    def _remember(self, external_id: str, saved: SavedCall, stored: bool) -> None:
        with self._lock:
            self._recent[external_id] = (saved, stored)
            self._recent.move_to_end(external_id)
            self._sids[saved.id] = external_id
            while len(self._recent) > RECENT_CALLS:
                _sid, (gone, _stored) = self._recent.popitem(last=False)
                self._sids.pop(gone.id, None)

    def load_state(self, external_id: str) -> tuple[int, str] | None:
        """The call's id and the flow state JSON saved by its last turn."""
        saved = self.load(external_id)
        return None if saved is None else (saved.id, saved.state)

    def load(self, external_id: str, *, at_turn: int | None = None) -> SavedCall | None:
        """The call's state, turn and last answer; None for a call never opened.

        ``at_turn``: the turn the request answers. When this process gave that answer and
        saved it, the call comes from memory, not the database (``remembered``): a read saved
        on most turns, a round trip on PostgreSQL. Its save then also checks the state (see
        ``save_turn``), so a turn another node answered or a hangup it saved is never lost.
        """
        with self._lock:
            recent = self._recent.get(external_id)
        mine = recent[0] if recent is not None and recent[1] else None
        if mine is not None and at_turn and mine.turn == at_turn:
            return replace(mine, remembered=True)
        try:
            with kept.connection(self._single) as connection:
                row = self._load.first(connection, {"sid": external_id})
        except SQLAlchemyError:
            if recent is None:
                raise
            log.warning("call %s: the database is out of reach; its last turn from memory",
                        external_id)  # fmt: skip
            return recent[0]
        if row is None:
            return None
        saved, stored = SavedCall(*row), True
        if recent is not None and not recent[1] and recent[0].turn > saved.turn:
            # Turns answered while the database was away: they go on from there, saved as the
            # database's next turn (so the saving condition holds).
            log.warning("call %s: turns answered while the database was away win", external_id)
            saved, stored = replace(recent[0], id=saved.id, turn=saved.turn), False
        self._remember(external_id, saved, stored)
        return saved

    def save_turn(
        self,
        call_id: int,
        state_json: str,
        steps: list[StepRecord],
        *,
        ending: Ending | None = None,
        turn: int | None = None,
        reply: str | None = None,
        reply_token: str | None = None,
        was: str | None = None,
    ) -> None:
        """State, steps and (on the last turn) how the call ended, in one transaction (one
        statement on PostgreSQL): a crash never leaves one without the other.

        ``turn``: the turn this answers; the save happens only if the call is still at it
        (``TurnTaken`` otherwise, saving nothing), and ``reply`` becomes the answer given again
        to a retry of it. ``was``: the state the turn started from, when that was remembered
        rather than read; the save then also happens only if the stored state is still it.
        """
        params: dict[str, object] = {"b_id": call_id, "b_state": state_json}
        if was is not None:
            params["b_was"] = was
        if turn is not None:
            params |= {"b_turn": turn, "b_next": turn + 1, "b_reply": reply}
            params["b_token"] = reply_token
        if ending is not None:
            params |= {
                "b_ended_at": as_stored(_CALL.c.ended_at, utcnow()),
                "b_outcome": CallOutcome(ending.outcome).value,
                "b_ended_by": CallEnd(ending.ended_by).value,
            }
            if ending.ticket_tracking is not None:
                params["b_tracking"] = ending.ticket_tracking
        linked = ending is not None and ending.ticket_tracking is not None
        guarded = turn is not None or was is not None
        shape = (turn is not None, ending is not None, linked, was is not None)
        rows = [
            {
                "call_id": call_id,
                "at": as_stored(_STEP.c.at, s.at),
                "node": s.node,
                "event": EventKind(s.event).value,
                "key": s.key,
                "outcome": StepOutcome(s.outcome).value,
            }
            for s in steps
        ]
        sid = self._sids.get(call_id)
        try:
            if self._saves_with_steps is not None and rows:
                params |= {f"s_{name}": [row[name] for row in rows] for name in _STEP_COLUMNS}
                with kept.connection(self._single) as connection:
                    if self._saves_with_steps[shape].run(connection, params) != len(rows):
                        self._not_saved(connection, call_id, guarded)
            else:
                with kept.connection(self.engine) as connection, connection.begin():
                    if self._saves[shape].run(connection, params) != 1:
                        self._not_saved(connection, call_id, guarded)
                    if rows:
                        self._insert_steps.run_many(connection, rows)
        except SQLAlchemyError:
            if sid is not None:
                self._remember(
                    sid, self._after(sid, call_id, state_json, turn, reply, reply_token), False
                )
            raise
        if sid is not None:
            self._remember(
                sid, self._after(sid, call_id, state_json, turn, reply, reply_token), True
            )

    @staticmethod
    def _not_saved(connection: Connection, call_id: int, guarded: bool) -> NoReturn:
        """The save changed nothing: another request answered this turn first (or, for a
        remembered state, another node saved the call since), or (a bug) the call is not
        there."""
        if guarded and connection.execute(select(_CALL.c.id).where(_CALL.c.id == call_id)).first():
            raise TurnTaken(f"call {call_id} has moved on since its state was read")
        raise LookupError(f"no call {call_id}")

    def _after(
        self,
        sid: str,
        call_id: int,
        state_json: str,
        turn: int | None,
        reply: str | None,
        reply_token: str | None,
    ) -> SavedCall:
        """The call as this save leaves it."""
        with self._lock:
            before = self._recent.get(sid)
        if turn is None:
            if before is None:
                return SavedCall(call_id, state_json, 0, None, None)
            return replace(before[0], state=state_json)
        return SavedCall(call_id, state_json, turn + 1, reply, reply_token)

    def finish(
        self,
        call_id: int,
        outcome: CallOutcome,
        ended_by: CallEnd,
        ticket_tracking: str | None = None,
    ) -> None:
        """Close the call, linking its ticket if that ticket is stored already (not spooled)."""
        ending = Ending(CallOutcome(outcome), CallEnd(ended_by), ticket_tracking)
        values = {
            "ended_at": as_stored(_CALL.c.ended_at, utcnow()),
            "outcome": ending.outcome.value,
            "ended_by": ending.ended_by.value,
            "ticket_id": None if ticket_tracking is None else _ticket_id(ticket_tracking),
        }
        with self.engine.begin() as connection:
            result = connection.execute(update(_CALL).where(_CALL.c.id == call_id).values(**values))
            if result.rowcount != 1:
                raise LookupError(f"no call {call_id}")

    def link_ticket(self, external_id: str, tracking: str) -> int | None:
        """Tie the call to a stored ticket (an agent's choice on the screen pop: a new ticket
        for this call, or an earlier one); the call's id, or None if either is unknown."""
        with self.engine.begin() as connection:
            ticket_id = connection.execute(
                select(_TICKET.c.id).where(_TICKET.c.tracking == tracking)
            ).scalar()
            call_id = connection.execute(_ID_BY_SID, {"sid": external_id}).scalar()
            if ticket_id is None or call_id is None:
                return None
            connection.execute(
                update(_CALL).where(_CALL.c.id == call_id).values(ticket_id=ticket_id)
            )
            return int(call_id)

    def provinces_of(self, external_ids: list[str]) -> dict[str, str | None]:
        """Each known call's province (the live view shows callers of the viewer's scope)."""
        if not external_ids:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_CALL.c.external_id, _CALL.c.province).where(
                    _CALL.c.external_id.in_(sorted(set(external_ids)))
                )
            )
            return {external_id: province for external_id, province in rows}

    # --- the agents' queue (from AMI events) ------------------------------------------------

    def queue_wait(self, external_id: str) -> QueueWait | None:
        """The call's queue columns; None for a call the IVR never handled."""
        with Session(self.engine) as session:
            row = session.execute(
                select(Call.queue_joined_at, Call.queue_left_at, Call.queue_outcome).where(
                    col(Call.external_id) == external_id
                )
            ).first()
        if row is None:
            return None
        return QueueWait(as_aware(row[0]), as_aware(row[1]), row[2])

    def update_queue(self, external_id: str, columns: QueueColumns) -> bool:
        """Write ``columns`` into the call's row; True if a row changed."""
        if not columns:
            return False
        with session_scope(self.engine) as session:
            result = session.execute(
                update(Call).where(col(Call.external_id) == external_id).values(**columns)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]
