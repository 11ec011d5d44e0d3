"""One call's session: feeds events to the pure engine and carries out what it cannot do itself.

The engine returns telephony actions and ticket operations; the session performs the operations
(create a ticket, look one up) right away, feeds their results back, writes the call's state and
steps, and hands the transport only the telephony actions. Every transport uses this class, so a
ticket made from Twilio, Asterisk or the terminal goes through exactly the same code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING

from ivr.clock import utcnow
from ivr.flow import CallState, advance, menus
from ivr.flow import actions as act
from ivr.flow.engine import unavailable
from ivr.flow.events import (
    AgentsChecked,
    CallbackFiled,
    CallStarted,
    Digits,
    Event,
    FollowupChecked,
    Hangup,
    RecordingFinished,
    SystemFailed,
    TicketCreated,
    TicketInfo,
    TicketLookedUp,
)
from ivr.flow.outcomes import CallEnd, CallOutcome, StepOutcome
from ivr.flow.resume import QueueReturn
from ivr.followup_guard import TryKind
from ivr.provinces import province_for_number
from ivr.tickets.calls import CallStore, Ending, SavedCall, StepRecord, TurnTaken
from ivr.tickets.service import TicketDraft, TicketService

if TYPE_CHECKING:
    from ivr.availability import AgentAvailability
    from ivr.callbacks.service import CallbackService
    from ivr.followup_guard import FollowupGuard

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What a session needs from the outside world, built once per process."""

    tickets: TicketService
    """Creates tickets with every deadline set from the database calendar."""
    calls: CallStore
    agents: AgentAvailability | None = None
    """Whether agents answer now; None: always (a PBX test without hours)."""
    callbacks: CallbackService | None = None
    """Files callbacks; None: a callback request fails over to a person."""
    followup_guard: FollowupGuard | None = None
    """Limits guessing at follow-ups (per ticket and per caller); None: no limit (a unit test)."""


Render = Callable[[tuple[act.Action, ...], int], str]
"""A transport's answer to a turn's actions, given the answer's number (TwiML for Twilio)."""


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
        self.turn = 0
        """Answers the call was given so far (as saved): the next one is ``turn + 1``."""
        self.saved: SavedCall | None = None
        """The call as its last turn left it, when it was loaded from the store."""
        self.reply: str | None = None
        """The transport's answer to the last event, when it gave ``feed`` a ``render``."""
        self._started_from: str | None = None
        """The stored state this session's next save expects, when it was remembered rather
        than read (``CallStore.save_turn``'s ``was``)."""

    @classmethod
    def start(
        cls,
        services: Services,
        *,
        channel: str,
        external_id: str,
        caller: str | None,
        called: str | None,
        default_province: str,
        channel_id: str | None = None,
        resume: QueueReturn | None = None,
        render: Render | None = None,
    ) -> tuple[CallSession, tuple[act.Action, ...]]:
        """Answer a new call for the province its called number reaches (``default_province``
        when no province file claims the number).

        The call record is opened best effort: a call is answered even if the database is down.
        ``resume`` is set for a call the dialplan hands back from the agents' queue: the flow
        goes on at the callback step (``callback``) or the "no agent" menu (``no_agent``), not
        at the greeting.
        """
        province = province_for_number(called, default_province)
        services.tickets.allocator.ensure_ready()
        try:
            call_id = services.calls.open(
                channel, external_id, caller, called, province=province, channel_id=channel_id
            )
        except Exception:
            log.exception("could not open call record %s; going on without it", external_id)
            call_id = None
        session = cls(services, external_id, call_id, CallState())
        session.resumed_from = resume
        started = CallStarted(
            caller,
            called,
            channel,
            province,
            resume=resume.reason.value if resume else None,
            queue_entered_at=resume.entered_at if resume else None,
        )
        actions = session.feed(started, render=render)
        return session, actions

    @classmethod
    def resume(
        cls, services: Services, external_id: str, *, at_turn: int | None = None
    ) -> CallSession | None:
        """Load a call another webhook (maybe on another node) started; None if unknown.
        ``at_turn``: the turn the request answers (``CallStore.load``)."""
        found = services.calls.load(external_id, at_turn=at_turn)
        if found is None:
            return None
        session = cls(services, external_id, found.id, CallState.from_json(found.state))
        session.turn, session.saved = found.turn, found
        if found.remembered:
            session._started_from = found.state
        return session

    @classmethod
    def fail_over(
        cls, services: Services, external_id: str, default_province: str
    ) -> tuple[act.Action, ...]:
        """A transport could not run the call's turn (the database is down, …): the caller
        hears that the system is unavailable and goes to a person. Recorded when the call
        store can still be reached; never raises."""
        try:
            session = cls.resume(services, external_id)
        except Exception:
            log.warning("call %s: its record is out of reach too", external_id)
            session = None
        if session is None:
            session = cls(services, external_id, None, CallState(province=default_province))
        try:
            return session.feed(SystemFailed())
        except Exception:
            log.exception("call %s: could not even fail over; transferring", external_id)
            return unavailable(CallState(province=default_province)).actions

    def feed(
        self, event: Event, *, render: Render | None = None, token: str | None = None
    ) -> tuple[act.Action, ...]:
        """Advance the call by one event; return what the transport must do next.

        ``render``: the transport's answer to the actions, given the answer's number; it is
        saved with the turn (``self.reply``), only if no other request answered this turn
        first (``TurnTaken`` then, and the winner's answer is the one to give). ``token`` is
        the request's idempotency token, saved with the answer.
        """
        was_over = self.state.ended
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
                elif isinstance(action, act.CheckAgents):
                    pending.append(self._check_agents(action))
                elif isinstance(action, act.RequestCallback):
                    pending.append(self._request_callback(action))
                elif isinstance(action, act.CheckFollowup | act.CountFailedFollowup):
                    pending.append(self._guard_followup(action))
                else:
                    telephony.append(action)
        actions = tuple(telephony)
        self.reply = None if render is None else render(actions, self.turn + 1)
        ending = None if was_over else _ending(self.state, telephony, event)
        self._save(steps, ending, turned=render is not None, token=token)
        if render is not None:
            self.turn += 1
        return actions

    def crashed(self) -> None:
        """The transport lost the call to an error (not a hangup): the records say so, best
        effort, and keep no personal data."""
        if self.call_id is None or self.state.ended:
            return
        try:
            self.services.calls.save_turn(
                self.call_id,
                self.state.without_personal_data().to_json(),
                [],
                ending=Ending(CallOutcome.FAILED, CallEnd.SYSTEM_ERROR),
            )
        except Exception:
            log.exception("could not record the failure of call %s", self.external_id)

    # --- ticket operations -----------------------------------------------------------------

    def _create(self, action: act.CreateTicket) -> TicketCreated | SystemFailed:
        # The action carries exactly the draft's fields: the engine names them, the store keeps.
        # They are plain values, so its own dict serves (``asdict`` deep-copies each: 6 µs).
        try:
            created = self.services.tickets.create(
                TicketDraft(**vars(action)), call_key=self.call_key
            )
        except Exception:  # neither stored nor spooled: a person must take the request
            log.exception("call %s: the ticket could not be created", self.external_id)
            return SystemFailed()
        self.tracking_created = created.tracking
        return TicketCreated(created.tracking)

    def _lookup(self, action: act.LookupTicket) -> TicketLookedUp | SystemFailed:
        try:
            view = self.services.tickets.get(action.tracking)
        except Exception:
            log.exception("call %s: the ticket could not be looked up", self.external_id)
            return SystemFailed()
        if view is None:
            return TicketLookedUp(None)
        return TicketLookedUp(
            TicketInfo(**{f.name: getattr(view, f.name) for f in fields(TicketInfo)})
        )

    def _check_agents(self, action: act.CheckAgents) -> AgentsChecked:
        """Never fails the call: when the hours cannot be read, the queue decides (its
        JOINEMPTY still brings an unanswerable caller back to the "no agent" menu)."""
        if self.services.agents is None:
            return AgentsChecked(True)
        try:
            return self.services.agents.check(action.province, action.channel)
        except Exception:
            log.exception("call %s: could not tell whether agents answer", self.external_id)
            return AgentsChecked(True)

    def _request_callback(self, action: act.RequestCallback) -> CallbackFiled | SystemFailed:
        if self.services.callbacks is None:
            log.error("call %s: callbacks are not configured", self.external_id)
            return SystemFailed()
        entered = datetime.fromisoformat(action.entered_at) if action.entered_at else utcnow()
        try:
            row = self.services.callbacks.request(
                action.number, action.province, entered, call_id=self.call_id
            )
        except Exception:
            log.exception("call %s: the callback could not be filed", self.external_id)
            return SystemFailed()
        return CallbackFiled(row.id)

    def _guard_followup(
        self, action: act.CheckFollowup | act.CountFailedFollowup
    ) -> FollowupChecked | SystemFailed:
        """The guessing limit's verdict, counting the failed try first for a wrong answer.
        When the counts cannot be read, a person takes the call (no unlimited guessing)."""
        guard = self.services.followup_guard
        if guard is None:
            return FollowupChecked(True)
        try:
            if isinstance(action, act.CountFailedFollowup):
                kind = TryKind.MISMATCH if action.found else TryKind.NOT_FOUND
                verdict = guard.failed(action.tracking, action.caller, kind, call_id=self.call_id)
            else:
                verdict = guard.check(action.tracking, action.caller)
        except Exception:
            log.exception("call %s: the follow-up tries could not be counted", self.external_id)
            return SystemFailed()
        return FollowupChecked(verdict.allowed)

    # --- the call's record -----------------------------------------------------------------

    def _step(self, node: str, event: Event, outcome: StepOutcome) -> StepRecord:
        return StepRecord(
            node=node,
            event=event.kind,
            key=_loggable_key(node, self.state, event),
            outcome=outcome,
            at=utcnow(),
        )

    @property
    def call_key(self) -> str:
        """The call's name for the ticket it registers: one ticket per call."""
        return f"{self.state.channel or 'call'}:{self.external_id}"[:80]

    def _save(
        self,
        steps: list[StepRecord],
        ending: tuple[CallOutcome, CallEnd] | None,
        *,
        turned: bool = False,
        token: str | None = None,
    ) -> None:
        """State, steps, the answer and (on the last turn) the ending, in one write."""
        if self.call_id is None:
            return
        try:
            # Over for the IVR (hung up, or with the agents): nothing typed is kept any longer.
            over = self.state.ended or _with_agents(self.state)
            stored = self.state.without_personal_data() if over else self.state
            closing = None
            if ending is not None:
                outcome, ended_by = ending
                tracking = self.state.tracking if outcome is CallOutcome.TICKET else None
                closing = Ending(outcome, ended_by, tracking)
            state_json = stored.to_json()
            self.services.calls.save_turn(
                self.call_id,
                state_json,
                steps,
                ending=closing,
                turn=self.turn if turned else None,
                reply=self.reply,
                reply_token=token,
                was=self._started_from,
            )
            if self._started_from is not None:
                self._started_from = state_json
        except TurnTaken:
            raise
        except Exception:
            # The caller must not hear an error because a log line could not be written.
            log.exception("could not save call %s", self.external_id)


def _loggable_key(node: str, state: CallState, event: Event) -> str | None:
    """Menu keys are logged as pressed; typed numbers only by length (they are personal data).

    Anything longer than one key is a typed number wherever it was typed (the terminal phone
    lets a caller type a whole number at a menu).
    """
    if isinstance(event, Digits):
        kind = menus.menus_for(state.province).get(node)
        if isinstance(kind, menus.Menu) and len(event.digits) <= 1:
            return event.digits
        return f"{len(event.digits)} digits"
    if isinstance(event, RecordingFinished):
        return f"{event.duration_s:.1f}s"
    return None


def _with_agents(state: CallState) -> bool:
    return isinstance(menus.menus_for(state.province).get(state.node), menus.Transfer)


_OUTCOME_AT = {
    "registered": CallOutcome.TICKET,
    "followup.report": CallOutcome.FOLLOWUP,
    "recall.filed": CallOutcome.CALLBACK,
}
"""What a call that ends at these nodes achieved; anywhere else in the menus it was abandoned."""


def _ending(
    state: CallState, telephony: list[act.Action], event: Event
) -> tuple[CallOutcome, CallEnd] | None:
    """How the call ended and what came of it, for the reports; None while it goes on."""
    if any(isinstance(a, act.Transfer) for a in telephony):
        return CallOutcome.TRANSFERRED, CallEnd.TRANSFERRED
    if any(isinstance(a, act.HangUp) for a in telephony):
        return _OUTCOME_AT.get(state.node, CallOutcome.ABANDONED), CallEnd.IVR
    if not isinstance(event, Hangup):
        return None
    if _with_agents(state):
        return CallOutcome.TRANSFERRED, CallEnd.TRANSFERRED
    return _OUTCOME_AT.get(state.node, CallOutcome.ABANDONED), CallEnd.CALLER
