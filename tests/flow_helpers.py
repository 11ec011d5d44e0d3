"""A test caller for the flow engine: feeds events like a transport and checks every step.

Every event a test sends through :class:`Call` is checked against the engine's invariants:
``advance`` is pure, the state survives a JSON round trip (as it does between webhooks), every
prompt id is in the catalogue, and every answer ends in exactly one waiting action (Gather,
Record, Transfer, HangUp) or one ticket operation — so no path ends in silence.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ivr.flow import CallState, Transition, advance
from ivr.flow import menus as m
from ivr.flow.actions import (
    OPERATIONS,
    WAITS,
    Action,
    Audio,
    CheckAgents,
    CheckFollowup,
    CountFailedFollowup,
    CreateTicket,
    Gather,
    LookupTicket,
    Play,
    Recorded,
    Transfer,
)
from ivr.flow.events import (
    AgentsChecked,
    CallbackFiled,
    CallStarted,
    Digits,
    Event,
    FollowupChecked,
    Hangup,
    RecordingFinished,
    TicketCreated,
    TicketInfo,
    TicketLookedUp,
    Timeout,
)
from ivr.flow.outcomes import EventKind, StepOutcome
from ivr.identifiers import is_valid_callback_number, is_valid_national_id
from ivr.prompts import load_catalog
from ivr.tickets.tracking import tracking_from_sequence

PROJECT_ROOT = Path(__file__).resolve().parents[1]

PROMPTS_DIR = PROJECT_ROOT / "prompts"
CATALOG_IDS = frozenset(load_catalog(PROMPTS_DIR))
PROVINCE = "qom"

MOBILE = "09121234567"
OTHER_MOBILE = "09351112233"
LANDLINE = "02537123456"
NATIONAL_ID = "7731689956"
TRACKING = tracking_from_sequence(42)
RECORDING = "/var/spool/ivr124/recordings/call-1.wav"

CATEGORY_CODES = ("industry", "mining", "trade", "consumer", "permits", "other")
PLACE_IDS = frozenset(
    pid.removeprefix(f"place.{PROVINCE}.")
    for pid in CATALOG_IDS
    if pid.startswith(f"place.{PROVINCE}.")
)
IGNORED = StepOutcome.IGNORED
AVAILABLE = AgentsChecked(True)
NEXT_OPENING = datetime(2024, 5, 18, 4, 30, tzinfo=UTC)
"""Saturday 29 Ordibehesht 1403, 08:00 in Tehran."""
CLOSED = AgentsChecked(False, NEXT_OPENING, 1)


def digit_fragments(*groups: str) -> tuple[str, ...]:
    """``num.X`` for each digit, with ``pause`` between the groups: ('0912', '123') → …"""
    said: list[str] = []
    for group in groups:
        if said:
            said.append("pause")
        said += [f"num.{d}" for d in group]
    return tuple(said)


def ticket(
    *,
    callback: str = OTHER_MOBILE,
    category: str = "trade",
    status: str = "in_review",
    agency: str | None = None,
    created_at: datetime = datetime(2024, 3, 19, 21, 0, tzinfo=UTC),
    due_at: datetime | None = None,
    tracking: str = TRACKING,
) -> TicketInfo:
    return TicketInfo(
        tracking=tracking,
        callback_number=callback,
        category=category,
        status=status,
        agency=agency,
        created_at=created_at,
        due_at=due_at,
    )


def prompts_of(actions: Iterable[Action]) -> tuple[Audio, ...]:
    """Everything said by a list of actions, in order (Play and Gather prompts)."""
    said: list[Audio] = []
    for action in actions:
        if isinstance(action, Play | Gather):
            said += action.prompts
    return tuple(said)


def may_be_silent(node: str, province: str = PROVINCE) -> bool:
    """Nodes where the caller is not listening to the menus: a ticket operation is running
    (the session answers it at once) or the call is in the agents' queue."""
    return isinstance(m.menus_for(province).get(node), m.Operation | m.Transfer | m.Goodbye)


def check_transition(before: CallState, event: Event, result: Transition) -> None:
    """The invariants every single step of the engine must keep."""
    # Pure: the same state and event give the same answer, also from a state that went
    # through JSON (stored between webhooks, maybe read by another node of the cluster).
    assert advance(before, event) == result
    restored = CallState.from_json(before.to_json())
    assert restored == before
    assert advance(restored, event) == result
    assert CallState.from_json(result.state.to_json()) == result.state
    # The call records speak the flow's enums: every event has a kind, every step an outcome.
    assert isinstance(event.kind, EventKind)
    assert isinstance(result.outcome, StepOutcome)

    for audio in prompts_of(result.actions):
        if isinstance(audio, Recorded):
            assert audio.path, f"played an empty recording after {event!r}"
        else:
            assert audio in CATALOG_IDS, f"prompt id {audio!r} is not in the catalogue"

    if isinstance(event, Hangup):
        assert result.actions == ()
        assert result.state.ended
        return
    if before.ended and not isinstance(event, CallStarted):
        assert result.actions == (), f"an ended call answered {event!r}"
        assert result.state.ended
        return
    if not result.actions:
        # Silence only while the session performs a ticket operation or agents have the call.
        assert result.outcome is IGNORED
        assert may_be_silent(before.node, before.province), (
            f"{event!r} at {before.node} got no answer"
        )
        assert result.state == before
        return
    *leading, last = result.actions
    assert isinstance(last, WAITS + OPERATIONS), f"{result.actions} ends in {last!r}"
    assert all(isinstance(a, Play) for a in leading), f"not exactly one wait: {result.actions}"


def check_create_ticket(action: CreateTicket, province: str = PROVINCE) -> None:
    """A ticket is only asked for with a complete, valid draft."""
    assert action.province == province
    assert action.category in CATEGORY_CODES
    if action.category == "industry":
        assert action.place is None or action.place in PLACE_IDS
    else:
        assert action.place is None, f"a {action.category} ticket carries place {action.place}"
    assert action.recording_path, "a ticket without a recording"
    assert is_valid_callback_number(action.callback_number)
    assert action.national_id is None or is_valid_national_id(action.national_id)
    assert action.national_id is None or action.national_id.isascii()
    assert action.callback_number.isascii()


class Call:
    """One caller talking to the engine, every step checked by :func:`check_transition`."""

    def __init__(
        self,
        caller_id: str | None = MOBILE,
        *,
        channel: str = "twilio",
        province: str = PROVINCE,
        agents: AgentsChecked | None = AVAILABLE,
        resume: str | None = None,
        queue_entered_at: datetime | None = None,
        tries_left: bool | None = True,
    ) -> None:
        self.state = CallState()
        self.transitions: list[Transition] = []
        self.agents = agents
        """What the session answers when the engine asks whether agents answer (CheckAgents),
        as the session does, at once; None: the test answers itself."""
        self.tries_left = tries_left
        """What the guessing limit answers (CheckFollowup, CountFailedFollowup), at once as the
        session does; None: the test answers itself."""
        self.send(CallStarted(caller_id, "124", channel, province, resume, queue_entered_at))

    def send(self, event: Event) -> Transition:
        result = self._step(event)
        while result.actions and (answer_event := self._answer(result.actions[-1])):
            # As the session does: the answer follows at once and the caller hears both turns.
            before = result
            answer = self._step(answer_event)
            result = Transition(
                answer.state, _joined((*before.actions[:-1], *answer.actions)), before.outcome
            )
        self.transitions.append(result)
        return result

    def _answer(self, action: Action) -> Event | None:
        """The session's answer to an operation this caller answers at once, if any."""
        if isinstance(action, CheckAgents) and self.agents:
            return self.agents
        if isinstance(action, CheckFollowup | CountFailedFollowup) and self.tries_left is not None:
            return FollowupChecked(self.tries_left)
        return None

    def _step(self, event: Event) -> Transition:
        result = advance(self.state, event)
        check_transition(self.state, event, result)
        self.state = result.state
        return result

    def run(self, events: Iterable[Event | str]) -> Transition:
        result = self.transitions[-1]
        for event in events:
            result = self.send(Digits(event) if isinstance(event, str) else event)
        return result

    def press(self, keys: str) -> Transition:
        return self.send(Digits(keys))

    def timeout(self) -> Transition:
        return self.send(Timeout())

    def record(self, path: str | None = RECORDING, seconds: float = 12.0) -> Transition:
        return self.send(RecordingFinished(path, seconds))

    def hang_up(self) -> Transition:
        return self.send(Hangup())

    @property
    def node(self) -> str:
        return self.state.node

    @property
    def last(self) -> Transition:
        return self.transitions[-1]

    @property
    def actions(self) -> tuple[Action, ...]:
        return self.last.actions

    @property
    def said(self) -> tuple[Audio, ...]:
        return prompts_of(self.last.actions)

    def all_actions(self) -> list[Action]:
        return [a for t in self.transitions for a in t.actions]

    def created(self) -> list[CreateTicket]:
        return [a for a in self.all_actions() if isinstance(a, CreateTicket)]

    def lookups(self) -> list[LookupTicket]:
        return [a for a in self.all_actions() if isinstance(a, LookupTicket)]

    def transferred(self) -> bool:
        return bool(self.actions) and self.actions[-1] == Transfer(m.AGENT_QUEUE)


def _joined(actions: tuple[Action, ...]) -> tuple[Action, ...]:
    """Plays in a row as one Play: what the caller hears across the two turns."""
    out: list[Action] = []
    for action in actions:
        if out and isinstance(action, Play) and isinstance(out[-1], Play):
            out[-1] = Play((*out[-1].prompts, *action.prompts))
        else:
            out.append(action)
    return tuple(out)


# --- walking the tree ------------------------------------------------------------------------

WALK_EVENTS: tuple[Event, ...] = (
    *(Digits(key) for key in "0123456789*#"),
    Digits(""),
    Digits(OTHER_MOBILE),
    Digits(NATIONAL_ID),
    Digits(TRACKING),
    Digits(OTHER_MOBILE[-4:]),
    Digits("0000"),  # a wrong last 4
    RecordingFinished(RECORDING, 12.0),
    Timeout(),
    TicketCreated(TRACKING),
    TicketLookedUp(ticket(callback=MOBILE)),
    TicketLookedUp(ticket(callback=OTHER_MOBILE)),
    AVAILABLE,
    CLOSED,
    CallbackFiled(7),
    FollowupChecked(True),
    FollowupChecked(False),
)
"""What a breadth-first walk of the menus may do at each node: every key and every kind of
valid answer, for a caller whose caller ID is MOBILE."""


def walk_tree(province: str = PROVINCE) -> dict[str, tuple[Event, ...]]:
    """The shortest event sequence (after CallStarted from MOBILE) that reaches each node."""
    start = advance(CallState(), CallStarted(MOBILE, "124", "twilio", province)).state
    routes: dict[str, tuple[Event, ...]] = {start.node: ()}
    queue = deque([(start, ())])
    while queue:
        state, route = queue.popleft()
        if isinstance(m.menus_for(province)[state.node], m.Transfer | m.Goodbye):
            continue  # the call is with an agent, or over: nothing more to explore
        for event in WALK_EVENTS:
            after = advance(state, event).state
            if after.node not in routes:
                routes[after.node] = (*route, event)
                queue.append((after, routes[after.node]))
    return routes


def call_at(node: str, routes: dict[str, tuple[Event, ...]], caller_id: str = MOBILE) -> Call:
    call = Call(caller_id)
    route = routes[node]
    call.agents, call.tries_left = None, None  # the walk answered the checks itself
    call.run(route)
    call.agents, call.tries_left = AVAILABLE, True
    assert call.node == node
    return call
