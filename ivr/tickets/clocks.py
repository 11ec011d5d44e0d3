"""The ticket table's SLA columns written in sets: the calendar's recompute, the watch's steps.

``TicketService`` changes one ticket at a time; these change thousands in one statement, for the
two writers that work on sets: a calendar edit that moves every open deadline, and the overdue
watch that warns and escalates.  They live here, beside the service, so that only ``ivr.tickets``
writes ``ticket`` and ``ticket_event``: the calendar computes deadlines and the watch decides
steps, and both hand the writing to this module.  Each function takes the caller's connection
or engine and leaves the transaction boundaries to it, so the watch keeps its one transaction
per batch with ``UPDATE … RETURNING`` claims that only one node can win.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, or_, update
from sqlmodel import Session, col, select

from ivr.clock import as_aware, iso_utc, utcnow
from ivr.tickets.db import session_scope
from ivr.tickets.models import (
    DeadlinesLike,
    Ticket,
    TicketEvent,
    deadline_columns,
    next_sla_check,
    pauses_from_history,
)
from ivr.tickets.statuses import OPEN_STATUSES, SYSTEM, UNFINISHED_STATUSES, Status

Pause = tuple[datetime, datetime | None]
DeadlinesOf = Callable[[str, str, datetime, Sequence[Pause]], DeadlinesLike]
"""(category, province, created UTC, pauses) → the ticket's deadlines on today's calendar."""

TICKET = Ticket.__table__  # type: ignore[attr-defined]
EVENT = TicketEvent.__table__  # type: ignore[attr-defined]

WARNING_CLOCKS = {
    # clock name -> (moment column, "done" column)
    "first_response": ("first_response_warn_at", "first_response_warned_at"),
    "resolution": ("resolution_warn_at", "resolution_warned_at"),
}
DUE_COLUMN = {"first_response": "first_response_due_at", "resolution": "due_at"}
RECOMPUTED = (
    "due_at",
    "first_response_due_at",
    "first_response_warn_at",
    "resolution_warn_at",
    "sla_check_at",
)


# Reading ----------------------------------------------------------------------------------------


def ticket_pauses(session: Session, ticket_ids: Sequence[int]) -> dict[int, list[Pause]]:
    """Each ticket's waiting-for-the-caller intervals, from its status history."""
    if not ticket_ids:
        return {}
    waiting = Status.WAITING_FOR_CALLER.value
    events = session.exec(
        select(TicketEvent.ticket_id, TicketEvent.at, TicketEvent.old_value, TicketEvent.new_value)
        .where(col(TicketEvent.ticket_id).in_(ticket_ids), col(TicketEvent.kind) == "status")
        .where(or_(col(TicketEvent.old_value) == waiting, col(TicketEvent.new_value) == waiting))
    )
    changes: dict[int, list[tuple[datetime, str | None, str | None]]] = {}
    for ticket_id, at, old, new in events:
        changes.setdefault(ticket_id, []).append((at, old, new))
    return {tid: pauses_from_history(found) for tid, found in changes.items()}


# The calendar's recompute -----------------------------------------------------------------------


def recompute_deadlines(
    engine: Engine,
    deadlines_of: DeadlinesOf,
    *,
    since: datetime | None = None,
    reason: str = "the calendar changed",
    batch_size: int = 1000,
) -> int:
    """Rewrite the deadlines of unfinished tickets; returns how many tickets changed.

    ``since``: the first moment the change touches.  A deadline before it was reached over
    unchanged days and cannot move, so only tickets due on or after it (or without a deadline)
    are read.  Escalations already made stay: a later deadline does not take a step back.  A
    ticket whose resolution or first-response deadline moved gets a ``deadline`` history line
    (by ``system``, ``reason`` as its note), so a supervisor can see why a date changed.
    """
    statement = select(
        Ticket.id,
        Ticket.created_at,
        Ticket.category,
        Ticket.province,
        Ticket.status,
        Ticket.responded_at,
        Ticket.first_response_warned_at,
        Ticket.resolution_warned_at,
        Ticket.escalation_level,
        Ticket.escalated_at,
        *(getattr(Ticket, name) for name in RECOMPUTED),
    ).where(col(Ticket.status).in_(UNFINISHED_STATUSES))
    if since is not None:
        statement = statement.where(
            or_(
                col(Ticket.due_at).is_(None),
                col(Ticket.due_at) >= since,
                col(Ticket.first_response_due_at) >= since,
                col(Ticket.escalation_level) == 1,
            )
        )
    changed = 0
    last_id = 0
    while True:
        with session_scope(engine) as session:
            rows = session.execute(
                statement.where(col(Ticket.id) > last_id).order_by(col(Ticket.id)).limit(batch_size)
            ).all()
            if not rows:
                return changed
            last_id = rows[-1].id
            pauses = ticket_pauses(session, [r.id for r in rows])
            now = utcnow()
            updates, events = [], []
            for row in rows:
                found = deadlines_of(
                    row.category, row.province, row.created_at, pauses.get(row.id, ())
                )
                values = _recomputed(row, found)
                if any(values[name] != as_aware(getattr(row, name)) for name in RECOMPUTED):
                    updates.append({"id": row.id, "updated_at": now, **values})
                    event = _deadline_event(row, values, now, reason)
                    if event is not None:
                        events.append(event)
            if updates:
                session.execute(update(Ticket), updates)
            if events:
                session.execute(insert(EVENT), events)
            changed += len(updates)


def _recomputed(row: Any, found: DeadlinesLike) -> dict[str, datetime | None]:
    values = deadline_columns(found)
    merged = {name: getattr(row, name) for name in row._fields} | values
    values["sla_check_at"] = next_sla_check(_Row(merged))
    return values


def _deadline_event(
    row: Any, values: Mapping[str, datetime | None], now: datetime, reason: str
) -> dict[str, Any] | None:
    old_due, new_due = as_aware(row.due_at), values["due_at"]
    old_first, new_first = as_aware(row.first_response_due_at), values["first_response_due_at"]
    if old_due == new_due and old_first == new_first:
        return None  # only a warning moment or the next check moved: nothing a person reads
    note = reason
    if old_first != new_first:
        note += f"; first response {_text(old_first)} → {_text(new_first)}"
    return {
        "ticket_id": row.id,
        "at": now,
        "kind": "deadline",
        "old_value": _text(old_due),
        "new_value": _text(new_due),
        "actor": SYSTEM,
        "note": note,
    }


def _text(moment: datetime | None) -> str:
    return iso_utc(moment) if moment is not None else "none (paused)"


class _Row:
    """Attribute access over a dict, for ``next_sla_check``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)


# The overdue watch's steps ----------------------------------------------------------------------


def claim_warning(
    connection: Connection, clock: str, ids: Sequence[int], now: datetime
) -> set[int]:
    """Mark the 75 % warning of ``clock`` written for those of ``ids`` still without one;
    returns the ids this call won (another node may have won the rest)."""
    done_column = WARNING_CLOCKS[clock][1]
    conditions = [
        TICKET.c.id.in_(ids),
        TICKET.c.status.in_(OPEN_STATUSES),
        TICKET.c[done_column].is_(None),
    ]
    if clock == "first_response":
        conditions.append(TICKET.c.responded_at.is_(None))
    return _claim(connection, conditions, {done_column: now})


def claim_escalation(
    connection: Connection, level: int, ids: Sequence[int], now: datetime
) -> set[int]:
    """Raise those of ``ids`` still one level below to ``level``; returns the ids won."""
    conditions = [
        TICKET.c.id.in_(ids),
        TICKET.c.status.in_(OPEN_STATUSES),
        TICKET.c.escalation_level == level - 1,
    ]
    values = {"escalation_level": level, "escalated_at": now, "updated_at": now}
    return _claim(connection, conditions, values)


def _claim(connection: Connection, conditions: list[Any], values: dict[str, Any]) -> set[int]:
    result = connection.execute(
        update(TICKET).where(*conditions).values(values).returning(TICKET.c.id)
    )
    return set(result.scalars())


def add_history(connection: Connection, lines: Iterable[Mapping[str, Any]]) -> None:
    """History lines for many tickets at once (``ticket_id``, ``at``, ``kind``, ``old_value``,
    ``new_value``, ``actor``, ``note``)."""
    lines = list(lines)
    if lines:
        connection.execute(insert(EVENT), lines)


def reschedule(connection: Connection, checks: Iterable[tuple[int, datetime | None]]) -> None:
    """Set each ticket's next ``sla_check_at`` (None: nothing pending)."""
    params = [{"b_id": ticket_id, "b_check": at} for ticket_id, at in checks]
    if params:
        connection.execute(
            update(TICKET)
            .where(TICKET.c.id == bindparam("b_id"))
            .values(sla_check_at=bindparam("b_check")),
            params,
        )
