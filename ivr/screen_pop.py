"""What an agent's desk shows the second a queue call reaches them (after VICIdial / Twilio Flex):
who is calling, what they did in the IVR on this call, and what they asked before.

Read-only: the call, its steps and the caller's earlier tickets, from the tables their owners
write (``ivr.tickets.calls``, ``ivr.tickets.service``). A callback's stand-in is no IVR call:
its pop shows the callback's number and the call the callback came from. Earlier tickets are
those of the viewer's scope (``provinces``; None for national staff), so the pop never shows a
ticket the desk would refuse to open.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from ivr.callbacks.asterisk import attempt_of
from ivr.callbacks.models import Callback, CallbackAttempt
from ivr.clock import as_aware, iso_utc, jalali
from ivr.desk_events import DeskEvent
from ivr.identifiers import normalize_phone
from ivr.tickets.desk_queries import StepLine
from ivr.tickets.models import Call, CallStep, Ticket

PREVIOUS_TICKETS = 10


@dataclass(frozen=True)
class PreviousTicket:
    tracking: str
    status: str
    category: str
    province: str
    created_at: datetime


@dataclass(frozen=True)
class ScreenPop:
    event_id: int
    channel: str
    external_id: str
    number: str | None
    """The caller's number in national form when it is a valid one, else as the network sent it."""
    call_id: int | None
    """The IVR's call record (None: not found, e.g. a callback whose first call is unknown)."""
    province: str | None
    ticket: str | None
    """The tracking number the call is linked to already, if any."""
    at: datetime
    steps: tuple[StepLine, ...] = field(default_factory=tuple)
    tickets: tuple[PreviousTicket, ...] = field(default_factory=tuple)
    callback_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The SSE payload (times both ISO UTC for programs and Jalali Tehran for people)."""
        return {
            "event_id": self.event_id,
            "channel": self.channel,
            "external_id": self.external_id,
            "number": self.number,
            "call_id": self.call_id,
            "province": self.province,
            "ticket": self.ticket,
            "callback_id": self.callback_id,
            "at": iso_utc(self.at),
            "at_jalali": jalali(self.at),
            "steps": [
                {
                    "at": iso_utc(s.at),
                    "at_jalali": jalali(s.at),
                    "node": s.node,
                    "event": s.event,
                    "key": s.key,
                    "outcome": s.outcome,
                }
                for s in self.steps
            ],
            "tickets": [
                {
                    "tracking": t.tracking,
                    "status": t.status,
                    "category": t.category,
                    "province": t.province,
                    "created_at": iso_utc(t.created_at),
                    "created_jalali": jalali(t.created_at),
                }
                for t in self.tickets
            ],
        }


def build_pop(
    engine: Engine, event: DeskEvent, provinces: Collection[str] | None = None
) -> ScreenPop:
    """The pop of ``event`` as the viewer may see it (``provinces``: their scope)."""
    assert event.id is not None
    with Session(engine) as session:
        callback = _callback_of(session, event.external_id)
        if callback is not None:
            call = session.get(Call, callback.call_id) if callback.call_id else None
            raw_number: str | None = callback.number
        else:
            call = session.exec(
                select(Call).where(col(Call.external_id) == event.external_id)
            ).first()
            raw_number = (call.caller if call is not None else None) or event.caller
        number = normalize_phone(raw_number) or raw_number
        steps: tuple[StepLine, ...] = ()
        linked = None
        if call is not None and call.id is not None:
            steps = tuple(
                StepLine(as_aware(s.at), s.node, s.event, s.key, s.outcome)
                for s in session.exec(
                    select(CallStep)
                    .where(col(CallStep.call_id) == call.id)
                    .order_by(col(CallStep.id))
                )
            )
            if call.ticket_id is not None:
                ticket = session.get(Ticket, call.ticket_id)
                linked = ticket.tracking if ticket is not None else None
        tickets = _previous(session, normalize_phone(raw_number), provinces)
    return ScreenPop(
        event_id=event.id,
        channel=event.channel,
        external_id=event.external_id,
        number=number,
        call_id=call.id if call is not None else None,
        province=call.province if call is not None else (callback.province if callback else None),
        ticket=linked,
        at=as_aware(event.at),
        steps=steps,
        tickets=tickets,
        callback_id=callback.id if callback is not None else None,
    )


def _callback_of(session: Session, external_id: str) -> Callback | None:
    """The callback whose stand-in this channel is (``ivr124cb-<attempt>-2``), if it is one."""
    attempt_id = attempt_of(external_id)
    if attempt_id is None:
        return None
    attempt = session.get(CallbackAttempt, attempt_id)
    return None if attempt is None else session.get(Callback, attempt.callback_id)


def _previous(
    session: Session, number: str | None, provinces: Collection[str] | None
) -> tuple[PreviousTicket, ...]:
    if number is None:
        return ()
    statement = (
        select(Ticket)
        .where(or_(col(Ticket.caller_number) == number, col(Ticket.callback_number) == number))
        .order_by(col(Ticket.created_at).desc(), col(Ticket.id).desc())
        .limit(PREVIOUS_TICKETS)
    )
    if provinces is not None:
        statement = statement.where(col(Ticket.province).in_(sorted(provinces)))
    return tuple(
        PreviousTicket(t.tracking, t.status, t.category, t.province, as_aware(t.created_at))
        for t in session.exec(statement)
    )
