"""The call flow's one state machine: ``advance(state, event) -> Transition``.

Pure: no I/O, no clock, no database. Where a call goes next is decided by the tables in
``menus``; this module only knows the six kinds of node and what each kind does with each kind
of event. Errors a caller can cause (a wrong key, silence, a short recording, a wrong number)
are retries here, and the third failure in a row hands the caller to an agent with a prompt that
says which failure it was. Every transition names its outcome from ``outcomes.StepOutcome``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ivr import speech
from ivr.clock import TEHRAN, tehran_date
from ivr.flow import actions as act
from ivr.flow import menus as m
from ivr.flow.events import (
    AgentsChecked,
    CallbackFiled,
    CallStarted,
    Digits,
    Event,
    Hangup,
    QueueLeft,
    RecordingFailed,
    RecordingFinished,
    SystemFailed,
    TicketCreated,
    TicketLookedUp,
    Timeout,
)
from ivr.flow.outcomes import TRANSFERS, StepOutcome
from ivr.flow.state import CallState, ticket_from_dict, ticket_to_dict
from ivr.identifiers import is_valid_callback_number, is_valid_national_id, normalize_phone
from ivr.tickets.tracking import is_valid_tracking


@dataclass(frozen=True)
class Transition:
    state: CallState
    actions: tuple[act.Action, ...]
    outcome: StepOutcome
    """What came of the event, for the call's step log."""


def advance(state: CallState, event: Event) -> Transition:
    if isinstance(event, CallStarted):
        return _start(event)
    if isinstance(event, Hangup):
        return Transition(replace(state, ended=True), (), StepOutcome.HANGUP)
    if state.ended:
        return Transition(state, (), StepOutcome.IGNORED)
    if isinstance(event, SystemFailed):
        return unavailable(state)
    if state.node not in m.menus_for(state.province):
        # A call whose start was never saved: greet the caller rather than fail.
        return _start(CallStarted(state.caller_id, None, state.channel, state.province))
    node = m.menus_for(state.province)[state.node]
    handler = _HANDLERS[type(node)]
    return handler(state, node, event)


def _start(event: CallStarted) -> Transition:
    caller = normalize_phone(event.caller_id)
    state = CallState(
        node="main",
        channel=event.channel,
        province=event.province,
        caller_id=event.caller_id,
        caller_number=caller,
        queue_entered_at=_iso(event.queue_entered_at),
    )
    # A call the queue gives back is not greeted again: it goes on where the queue left it.
    if event.resume == "callback":
        return _enter(state, "recall", (), StepOutcome.QUEUE_LEFT)
    if event.resume == "no_agent":
        return _enter(replace(state, queue_refused=True), "agent.check", (), StepOutcome.STARTED)
    return _enter(state, "main", ("greeting",), StepOutcome.STARTED)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


def unavailable(state: CallState) -> Transition:
    """The system cannot go on with the call: say so and hand the caller to a person.

    Also what a transport answers when it cannot even load the call (``state`` then is a new
    ``CallState``). ``system.unavailable`` already says a person is coming, so the agent
    node's own prompt is not added; the queue is the agent node's, as for every transfer.
    """
    if isinstance(m.menus_for(state.province).get(state.node), m.Transfer):
        return Transition(state, (), StepOutcome.IGNORED)  # the agents have the call already
    agent = m.menus_for(state.province)["agent"]
    assert isinstance(agent, m.Transfer)
    actions = (act.Play(("system.unavailable",)), act.Transfer(agent.queue))
    return Transition(
        replace(state, node="agent", failures=0), actions, StepOutcome.TRANSFER_UNAVAILABLE
    )


# --- moving between nodes ---------------------------------------------------------------


def _follow(
    state: CallState,
    go: m.Go,
    digits: str = "",
    prefix: tuple = (),
    outcome: StepOutcome = StepOutcome.OK,
) -> Transition:
    if go is m.REPEAT or not go.target:
        return _enter(replace(state, failures=0), state.node, prefix, StepOutcome.REPEAT)
    moved = replace(state, failures=0, **dict(go.sets))
    if go.effect:
        changed = EFFECTS[go.effect](moved, digits)
        if changed is None:
            node = m.menus_for(state.province)[state.node]
            prompt = node.invalid_prompt if isinstance(node, m.Entry) else "retry.invalid"
            return _fail(state, prompt, StepOutcome.REJECTED)
        moved = changed
    return _enter(moved, go.target, (*prefix, *_expand(moved, go.say)), outcome)


def _enter(state: CallState, name: str, prefix: tuple, outcome: StepOutcome) -> Transition:
    node = m.menus_for(state.province)[name]
    state = replace(state, node=name)
    said = (*prefix, *_expand(state, getattr(node, "prompts", ())))
    match node:
        case m.Menu():
            wait: act.Action = act.Gather(said, 1, None, m.MENU_TIMEOUT_S)
            return Transition(state, (wait,), outcome)
        case m.Entry():
            # One key more than a valid answer has: the caller's closing # then ends the entry
            # instead of spilling into the next menu, and too many digits are refused, not cut.
            wait = act.Gather(
                said,
                node.max_digits + 1,
                "#",
                m.MENU_TIMEOUT_S,
                allow_empty=node.on_empty is not None,
            )
            return Transition(state, (wait,), outcome)
        case m.Recorder():
            return Transition(state, (act.Play(said), act.Record(m.RECORD_MAX_S, "#")), outcome)
        case m.Transfer():
            # The transfer's cause is its outcome: asked for, unless failures brought it here
            # (the key or failure's step says which; the check's step says agents can answer).
            cause = outcome if outcome in _TRANSFER_STEPS else StepOutcome.TRANSFER_REQUESTED
            return Transition(state, (act.Play(said), act.Transfer(node.queue)), cause)
        case m.Goodbye():
            return Transition(state, (act.Play(said), act.HangUp()), outcome)
        case m.Branch():
            go = node.yes if TESTS[node.test](state) else node.no
            return _follow(state, go, "", prefix, outcome)
        case m.Operation():
            if node.operation == "check_agents" and outcome is StepOutcome.OK:
                outcome = StepOutcome.TRANSFER_REQUESTED  # the caller asked for a person
            operation = OPERATIONS[node.operation](state)
            plays = (act.Play(prefix),) if prefix else ()
            return Transition(state, (*plays, operation), outcome)
    raise TypeError(f"unknown node {name!r}")


def _fail(state: CallState, prompt: str, outcome: StepOutcome) -> Transition:
    """One more failure at the call's node: ``prompt`` and the node again, or after the third
    in a row the agent, told why in words that fit this failure."""
    failures = state.failures + 1
    if failures >= m.MAX_FAILURES:
        node = m.menus_for(state.province)[state.node]
        if isinstance(node, m.Menu) and node.gave_up is not None:
            # Agents cannot take this call either: end it politely rather than loop.
            said = (m.GAVE_UP_PROMPTS[outcome],)
            return _enter(
                replace(state, failures=0), node.gave_up.target, said, StepOutcome.GAVE_UP
            )
        refused = outcome in (StepOutcome.INVALID, StepOutcome.REJECTED)
        gave_up = (
            node.gave_up_prompt
            if isinstance(node, m.Entry) and refused
            else m.GAVE_UP_PROMPTS[outcome]
        )
        return _enter(
            replace(state, failures=0),
            "agent.check",
            (gave_up,),
            StepOutcome.TRANSFER_AFTER_FAILURES,
        )
    return _enter(replace(state, failures=failures), state.node, (prompt,), outcome)


# --- what each kind of node does with each event -----------------------------------------


def _on_menu(state: CallState, node: m.Menu, event: Event) -> Transition:
    if isinstance(event, Digits) and event.digits:
        go = node.choices.get(speech.normalize_digits(event.digits))
        if go is None:
            return _fail(state, "retry.invalid", StepOutcome.INVALID)
        return _follow(state, go, event.digits)
    if isinstance(event, Digits):  # the finish key alone: a key, but no answer
        return _fail(state, "retry.no_input", StepOutcome.EMPTY)
    if isinstance(event, Timeout):
        return _fail(state, "retry.no_input", StepOutcome.TIMEOUT)
    return _enter(state, state.node, (), StepOutcome.UNEXPECTED)


def _on_entry(state: CallState, node: m.Entry, event: Event) -> Transition:
    if isinstance(event, Timeout):
        return _fail(state, "retry.no_input", StepOutcome.TIMEOUT)
    if not isinstance(event, Digits):
        return _enter(state, state.node, (), StepOutcome.UNEXPECTED)
    digits = speech.normalize_digits(event.digits).strip().rstrip("#")
    if not digits:
        if node.on_empty:
            return _follow(state, node.on_empty, outcome=StepOutcome.SKIPPED)
        return _fail(state, "retry.no_input", StepOutcome.EMPTY)
    if not CHECKS[node.check](digits):
        return _fail(state, node.invalid_prompt, StepOutcome.INVALID)
    return _follow(state, node.on_valid, digits)


def _on_recorder(state: CallState, node: m.Recorder, event: Event) -> Transition:
    if isinstance(event, RecordingFinished):
        if event.path and event.duration_s >= m.RECORD_MIN_S:
            return _follow(replace(state, recording_path=event.path), node.on_done)
        return _fail(state, node.too_short_prompt, StepOutcome.TOO_SHORT)
    if isinstance(event, RecordingFailed):
        return _fail(state, node.not_saved_prompt, StepOutcome.NOT_SAVED)
    if isinstance(event, Timeout | Digits):
        return _fail(state, node.too_short_prompt, StepOutcome.TOO_SHORT)
    return _enter(state, state.node, (), StepOutcome.UNEXPECTED)


def _on_operation(state: CallState, node: m.Operation, event: Event) -> Transition:
    if node.operation == "create_ticket" and isinstance(event, TicketCreated):
        # The ticket holds the draft now: the call's state keeps none of it (personal data).
        filed = replace(state, tracking=event.tracking, **dict(m.CLEAR_DRAFT))
        return _enter(filed, "registered", (), StepOutcome.CREATED)
    if node.operation == "lookup_ticket" and isinstance(event, TicketLookedUp):
        info = event.ticket
        state = replace(state, ticket=ticket_to_dict(info) if info else None)
        if info and state.caller_number and state.caller_number == info.callback_number:
            return _enter(state, "followup.report", (), StepOutcome.VERIFIED_BY_CALLER_ID)
        return _enter(state, "followup.verify", (), StepOutcome.NEEDS_VERIFICATION)
    if node.operation == "check_agents" and isinstance(event, AgentsChecked):
        if event.available and not state.queue_refused:
            return _enter(state, "agent", (), StepOutcome.AGENTS_AVAILABLE)
        closed = replace(
            state,
            next_opening=_iso(event.next_opening),
            opening_in_days=event.opening_in_days,
        )
        return _enter(closed, "no_agent", (), StepOutcome.NO_AGENT)
    if node.operation == "request_callback" and isinstance(event, CallbackFiled):
        # The callback service holds the number now: the call's state keeps none of it.
        filed = replace(state, callback=None, pending_callback=None)
        return _enter(filed, "recall.filed", (), StepOutcome.CALLBACK_FILED)
    # Never re-issue an operation on a stray event: a ticket must not be created twice.
    return Transition(state, (), StepOutcome.IGNORED)


def _on_transfer(state: CallState, node: m.Transfer, event: Event) -> Transition:
    """The caller is in the agents' queue: the menus have nothing more to say, unless the
    queue gives the caller back (Twilio's ``<Enqueue action>``)."""
    if not isinstance(event, QueueLeft):
        return Transition(state, (), StepOutcome.IGNORED)
    if event.result == "leave":  # the callback key: keep the place of this queue entry
        left = replace(state, queue_entered_at=_iso(event.entered_at) or state.queue_entered_at)
        return _enter(left, "recall", (), StepOutcome.QUEUE_LEFT)
    if event.result in QUEUE_REFUSED:
        return _enter(replace(state, queue_refused=True), "agent.check", (), StepOutcome.NO_AGENT)
    if event.result in QUEUE_OVER:
        return Transition(replace(state, ended=True), (act.HangUp(),), StepOutcome.HANGUP)
    return Transition(state, (), StepOutcome.IGNORED)


def _on_goodbye(state: CallState, node: m.Goodbye, event: Event) -> Transition:
    """The IVR has said goodbye and hung up: nothing more to say."""
    return Transition(state, (), StepOutcome.IGNORED)


QUEUE_REFUSED = frozenset({"queue-full", "error", "system-error"})
"""Twilio's QueueResults that mean nobody could take the caller: the "no agent" branch."""
QUEUE_OVER = frozenset({"bridged", "hangup"})
"""The call is over for the IVR: an agent had it, or the caller hung up."""
_TRANSFER_STEPS = TRANSFERS | {StepOutcome.AGENTS_AVAILABLE}


_HANDLERS: dict[type, Callable[..., Transition]] = {
    m.Transfer: _on_transfer,
    m.Menu: _on_menu,
    m.Entry: _on_entry,
    m.Recorder: _on_recorder,
    m.Operation: _on_operation,
    m.Goodbye: _on_goodbye,
}


# --- the named pieces the menu tables refer to -------------------------------------------


def _last_four_matches(state: CallState, digits: str) -> CallState | None:
    callback = (state.ticket or {}).get("callback_number") or ""
    return state if state.ticket and callback[-4:] == digits else None


CHECKS: dict[str, Callable[[str], bool]] = {
    "callback_number": is_valid_callback_number,
    "national_id": is_valid_national_id,
    "tracking": is_valid_tracking,
    "last_four": lambda digits: len(digits) == 4 and digits.isdigit(),
}

EFFECTS: dict[str, Callable[[CallState, str], CallState | None]] = {
    "accept_caller_id": lambda s, _: replace(s, callback=s.caller_number),
    "hold_callback": lambda s, digits: replace(s, pending_callback=digits),
    "accept_callback": lambda s, _: replace(s, callback=s.pending_callback, pending_callback=None),
    "keep_national_id": lambda s, digits: replace(s, national_id=digits),
    "keep_tracking": lambda s, digits: replace(s, tracking=digits, ticket=None),
    "verify_last_four": _last_four_matches,
}

TESTS: dict[str, Callable[[CallState], bool]] = {
    "caller_id_usable": lambda s: (
        bool(s.caller_number) and is_valid_callback_number(s.caller_number or "")
    ),
}

OPERATIONS: dict[str, Callable[[CallState], act.Action]] = {
    "create_ticket": lambda s: act.CreateTicket(
        channel=s.channel,
        province=s.province,
        category=s.category or "other",
        place=s.place,
        recording_path=s.recording_path,
        caller_number=s.caller_id,
        callback_number=s.callback or "",
        national_id=s.national_id,
    ),
    "lookup_ticket": lambda s: act.LookupTicket(s.tracking or ""),
    "check_agents": lambda s: act.CheckAgents(s.province, s.channel),
    "request_callback": lambda s: act.RequestCallback(
        s.callback or "", s.province, s.queue_entered_at
    ),
}


# --- prompt slots ------------------------------------------------------------------------


def _phone(number: str | None) -> list[act.Audio]:
    return list(speech.digits_fragments(number, speech.phone_groups(number))) if number else []


def _tracking(number: str) -> list[act.Audio]:
    return list(speech.digits_fragments(number, speech.tracking_groups(number)))


def _registered(state: CallState) -> list[act.Audio]:
    if not state.tracking:
        return ["registered.pending"]
    number = _tracking(state.tracking)
    return ["registered.done", *number, "registered.repeat", *number]


def _ticket_report(state: CallState) -> list[act.Audio]:
    if not state.ticket:
        return []
    info = ticket_from_dict(state.ticket)
    said: list[act.Audio] = [
        "followup.registered_on",
        *speech.date_fragments(tehran_date(info.created_at)),
        "followup.registered_on_end",
        "followup.category",
        f"category.{info.category}",
        "followup.status",
        f"status.{info.status}",
    ]
    if info.agency:
        said += ["followup.agency", f"agency.{info.agency}"]
    if info.due_at:
        said += ["followup.due", *speech.date_fragments(tehran_date(info.due_at))]
    if info.answer_audio_path:
        said += ["followup.answer", act.Recorded(info.answer_audio_path)]
    return said


def _place(state: CallState) -> list[act.Audio]:
    return [f"place.{state.province}.{state.place}"] if state.place else []


def _no_agent(state: CallState) -> list[act.Audio]:
    """Why nobody answers and, outside the agents' hours, when they do («شنبه ساعت هشت»)."""
    if not state.next_opening:
        return ["no_agent.busy"]
    opening = datetime.fromisoformat(state.next_opening).astimezone(TEHRAN)
    with_date = state.opening_in_days >= speech.WEEK_DAYS
    return [
        "no_agent.closed",
        "no_agent.opens",
        *speech.opening_fragments(opening, with_date=with_date),
        "no_agent.opens_end",
    ]


SLOTS: dict[str, Callable[[CallState], list[act.Audio]]] = {
    "caller_digits": lambda s: _phone(s.caller_number),
    "pending_callback_digits": lambda s: _phone(s.pending_callback),
    "category_name": lambda s: [f"category.{s.category}"] if s.category else [],
    "place_name": _place,
    "recording": lambda s: [act.Recorded(s.recording_path)] if s.recording_path else [],
    "registered": _registered,
    "ticket_report": _ticket_report,
    "no_agent": _no_agent,
}


def _expand(state: CallState, parts: tuple[m.Part, ...]) -> tuple[act.Audio, ...]:
    said: list[act.Audio] = []
    for part in parts:
        said += SLOTS[part.name](state) if isinstance(part, m.Slot) else [part]
    return tuple(said)
