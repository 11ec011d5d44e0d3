"""Calls and each step of each call: what the reports are computed from, and where a call's
flow state waits between webhooks.

The only writer of the ``call`` and ``call_step`` tables: the session writes turns through it,
the AMI queue events (``ivr.telephony.queue_events``) their queue columns. Steps and endings are
checked against the flow's enums (``ivr.flow.outcomes``) on the way in, so no free string gets
into the records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ivr.clock import as_aware, as_stored, utcnow
from ivr.flow.outcomes import CallEnd, CallOutcome, EventKind, StepOutcome
from ivr.tickets.db import session_scope
from ivr.tickets.models import (
    Call,
    CallStep,
    Ticket,
)


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


class CallStore:
    """Calls and their steps; a call's flow state lives here so any node can take its next turn."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        """The call's id, creating the row the first time (webhooks are retried: be idempotent)."""
        existing = self._call_id(external_id)
        if existing is not None:
            return existing
        try:
            with session_scope(self.engine) as session:
                call = Call(
                    channel=str(channel),
                    external_id=external_id,
                    caller=caller,
                    called=called,
                    province=province,
                    channel_id=channel_id,
                    started_at=as_stored(Call.started_at, utcnow()),
                )
                session.add(call)
                session.flush()
                assert call.id is not None
                return call.id
        except IntegrityError:  # another node opened the same call a moment ago
            existing = self._call_id(external_id)
            if existing is None:
                raise
            return existing

    def _call_id(self, external_id: str) -> int | None:
        with Session(self.engine) as session:
            return session.exec(select(Call.id).where(Call.external_id == external_id)).first()

    def load_state(self, external_id: str) -> tuple[int, str] | None:
        """The call's id and the flow state JSON saved by its last turn."""
        with Session(self.engine) as session:
            row = session.exec(
                select(Call.id, Call.state).where(Call.external_id == external_id)
            ).first()
            return None if row is None else (row[0], row[1])

    def save_turn(self, call_id: int, state_json: str, steps: list[StepRecord]) -> None:
        """State and steps in one transaction: a crash never leaves one without the other."""
        with session_scope(self.engine) as session:
            result = session.execute(
                update(Call).where(col(Call.id) == call_id).values(state=state_json)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise LookupError(f"no call {call_id}")
            session.add_all(
                CallStep(
                    call_id=call_id,
                    at=as_stored(CallStep.at, s.at),
                    node=s.node,
                    event=EventKind(s.event).value,
                    key=s.key,
                    outcome=StepOutcome(s.outcome).value,
                )
                for s in steps
            )

    def finish(
        self,
        call_id: int,
        outcome: CallOutcome,
        ended_by: CallEnd,
        ticket_tracking: str | None = None,
    ) -> None:
        """Close the call, linking its ticket if that ticket is stored already (not spooled)."""
        outcome, ended_by = CallOutcome(outcome), CallEnd(ended_by)
        with session_scope(self.engine) as session:
            ticket_id = None
            if ticket_tracking is not None:
                ticket_id = session.exec(
                    select(Ticket.id).where(Ticket.tracking == ticket_tracking)
                ).first()
            result = session.execute(
                update(Call)
                .where(col(Call.id) == call_id)
                .values(
                    ended_at=as_stored(Call.ended_at, utcnow()),
                    outcome=outcome.value,
                    ended_by=ended_by.value,
                    ticket_id=ticket_id,
                )
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise LookupError(f"no call {call_id}")

    # --- the agents' queue (from AMI events) ------------------------------------------------

    def queue_wait(self, external_id: str) -> QueueWait | None:
        """The call's queue columns; None for a call the IVR never handled."""
        with Session(self.engine) as session:
            row = session.exec(
                select(Call.queue_joined_at, Call.queue_left_at, Call.queue_outcome).where(
                    Call.external_id == external_id
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
