"""The screen pop's two links: a new ticket for the call on the agent's screen, or the call
attached to one of the caller's earlier tickets. Either way the call's record points at the
ticket (``call.ticket_id``, written by ``ivr.tickets.calls``) and the ticket's history names the
agent (``ivr.tickets.service``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlmodel import Session, col, select

from ivr.identifiers import normalize_phone
from ivr.tickets.calls import CallStore
from ivr.tickets.models import Call
from ivr.tickets.service import TicketDraft, TicketService


class CallTicketError(ValueError):
    """Something the agent can fix (the message is the line to show), or a call not theirs."""


@dataclass(frozen=True)
class CallOnScreen:
    external_id: str
    channel: str
    province: str | None
    caller: str | None
    ticket_id: int | None


def call_on_screen(calls: CallStore, external_id: str) -> CallOnScreen | None:
    with Session(calls.engine) as session:
        call = session.exec(select(Call).where(col(Call.external_id) == external_id)).first()
    if call is None:
        return None
    return CallOnScreen(call.external_id, call.channel, call.province, call.caller, call.ticket_id)


def call_key(call: CallOnScreen) -> str:
    """The same key the IVR gives the ticket it registers on a call: one ticket per call."""
    return f"{call.channel}:{call.external_id}"[:80]


def new_ticket_for_call(
    tickets: TicketService,
    calls: CallStore,
    external_id: str,
    *,
    category: str,
    actor: str,
    province: str,
    place: str | None = None,
    callback_number: str | None = None,
) -> str:
    """Register a ticket for the call (asked twice, the same ticket) and link the call to it;
    the tracking number. ``province``: the agent's (the call's own when it has one)."""
    call = call_on_screen(calls, external_id)
    if call is None:
        raise CallTicketError(f"no call {external_id}")
    number = normalize_phone(callback_number) if callback_number else normalize_phone(call.caller)
    if number is None:
        raise CallTicketError("a callback number is needed: the caller's number is not one")
    if tickets.categories.get(category) is None:
        raise CallTicketError(f"unknown category {category!r}")
    draft = TicketDraft(
        channel=call.channel,
        province=call.province or province,
        category=category,
        place=place or None,
        recording_path=None,
        caller_number=normalize_phone(call.caller),
        callback_number=number,
        national_id=None,
    )
    created = tickets.create(draft, actor=actor, call_key=call_key(call))
    if created.tracking is None or created.spooled:
        raise CallTicketError("the database is unreachable: the ticket waits in the spool")
    calls.link_ticket(external_id, created.tracking)
    return created.tracking


def attach_call(
    tickets: TicketService,
    calls: CallStore,
    external_id: str,
    tracking: str,
    *,
    actor: str,
    provinces: Collection[str] | None = None,
) -> str:
    """Link the call to an existing ticket of the agent's scope (``provinces``; None: any)."""
    call = call_on_screen(calls, external_id)
    if call is None:
        raise CallTicketError(f"no call {external_id}")
    ticket = tickets.get(tracking)
    if ticket is None or (provinces is not None and ticket.province not in provinces):
        raise CallTicketError(f"no ticket {tracking}")
    calls.link_ticket(external_id, ticket.tracking)
    tickets.note_call(ticket.tracking, call_key(call), actor)
    return ticket.tracking
