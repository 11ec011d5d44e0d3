"""One call's session: feeds events to the pure engine and carries out what it cannot do itself.

The engine returns telephony actions and ticket operations; the session performs the operations
(create a ticket, look one up) right away, feeds their results back, writes the call's state and
steps, and hands the transport only the telephony actions. Every transport uses this class, so a
ticket made from Twilio, Asterisk or the terminal goes through exactly the same code.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields

from ivr.clock import utcnow
from ivr.flow import CallState, advance, menus
from ivr.flow import actions as act
from ivr.flow.events import (
    CallStarted,
    Digits,
    Event,
    Hangup,
    RecordingFinished,
    TicketCreated,
    TicketInfo,
    TicketLookedUp,
)
from ivr.flow.resume import QueueReturn
from ivr.tickets.calls import CallStore, StepRecord
from ivr.tickets.service import TicketDraft, TicketService

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What a session needs from the outside world, built once per process."""

    tickets: TicketService
    """Creates tickets with every deadline set from the database calendar."""
    calls: CallStore


class CallSession:
    def __init__(
        self, services: Services, external_id: str, call_id: int | None, state: CallState
    ) -> None:
        self.services = services
        self.external_id = external_id
        self.call_id = call_id
        self.state = state
        self.tracking_created: str | None = None
        self.resumed_from: QueueReturn | None = None

    @classmethod
    def start(
        cls,
        services: Services,
        *,
        channel: str,
        external_id: str,
        caller: str | None,
        called: str | None,
        province: str,
        resume: QueueReturn | None = None,
    ) -> tuple[CallSession, tuple[act.Action, ...]]:
        """Open the call record (best effort: a call is answered even if the database is down).

        ``resume`` is set for a call the dialplan hands back from the agents' queue; the flow
        has no nodes for it yet, so for now such a call starts like a new one.
        """
        services.tickets.allocator.ensure_ready()
        try:
            call_id = services.calls.open(channel, external_id, caller, called)
        except Exception:
            log.exception("could not open call record %s; going on without it", external_id)
            call_id = None
        session = cls(services, external_id, call_id, CallState())
        session.resumed_from = resume
        actions = session.feed(CallStarted(caller, called, channel, province))
        return session, actions

    @classmethod
    def resume(cls, services: Services, external_id: str) -> CallSession | None:
        """Load a call another webhook (maybe on another node) started; None if unknown."""
        found = services.calls.load_state(external_id)
        if found is None:
            return None
        call_id, state_json = found
        return cls(services, external_id, call_id, CallState.from_json(state_json))

    def feed(self, event: Event) -> tuple[act.Action, ...]:
        """Advance the call by one event; return what the transport must do next."""
        telephony: list[act.Action] = []
        steps: list[StepRecord] = []
        pending: list[Event] = [event]
        while pending:
            current = pending.pop(0)
            node = self.state.node
            transition = advance(self.state, current)
            steps.append(self._step(node, current, transition.outcome))
            self.state = transition.state
            for action in transition.actions:
                if isinstance(action, act.CreateTicket):
                    pending.append(self._create(action))
                elif isinstance(action, act.LookupTicket):
                    pending.append(self._lookup(action))
                else:
                    telephony.append(action)
        self._save(steps, telephony, event)
        return tuple(telephony)

    # --- ticket operations -----------------------------------------------------------------

    def _create(self, action: act.CreateTicket) -> TicketCreated:
        # The action carries exactly the draft's fields: the engine names them, the store keeps.
        created = self.services.tickets.create(TicketDraft(**asdict(action)))
        self.tracking_created = created.tracking
        return TicketCreated(created.tracking)

    def _lookup(self, action: act.LookupTicket) -> TicketLookedUp:
        view = self.services.tickets.get(action.tracking)
        if view is None:
            return TicketLookedUp(None)
        return TicketLookedUp(
            TicketInfo(**{f.name: getattr(view, f.name) for f in fields(TicketInfo)})
        )

    # --- the call's record -----------------------------------------------------------------

    def _step(self, node: str, event: Event, outcome: str) -> StepRecord:
        return StepRecord(
            node=node,
            event=type(event).__name__,
            key=_loggable_key(node, self.state, event),
            outcome=outcome,
            at=utcnow(),
        )

    def _save(self, steps: list[StepRecord], telephony: list[act.Action], event: Event) -> None:
        if self.call_id is None:
            return
        try:
            self.services.calls.save_turn(self.call_id, self.state.to_json(), steps)
            outcome = _call_outcome(self.state, telephony, event)
            if outcome:
                self.services.calls.finish(
                    self.call_id, outcome, self.state.tracking if outcome == "ticket" else None
                )
        except Exception:
            # The caller must not hear an error because a log line could not be written.
            log.exception("could not save call %s", self.external_id)


def _loggable_key(node: str, state: CallState, event: Event) -> str | None:
    """Menu keys are logged as pressed; typed numbers only by length (they are personal data)."""
    if isinstance(event, Digits):
        kind = menus.menus_for(state.province).get(node)
        if isinstance(kind, menus.Entry):
            return f"{len(event.digits)} digits"
        return event.digits
    if isinstance(event, RecordingFinished):
        return f"{event.duration_s:.1f}s"
    return None


def _call_outcome(state: CallState, telephony: list[act.Action], event: Event) -> str | None:
    """How the call ended, for the reports; None while it goes on."""
    if any(isinstance(a, act.Transfer) for a in telephony):
        return "transferred"
    if not isinstance(event, Hangup):
        return None
    if state.node == "agent":
        return "transferred"
    if state.node == "registered":
        return "ticket"
    if state.node == "followup.report":
        return "followup"
    return "abandoned"
