"""Fakes for the callback dispatcher's unit tests (the real parts are tested in tests/asterisk).

* :class:`StaticQueue` — a :class:`QueueView` returning whatever snapshot the test sets.
* :class:`RecordingDialer` — a :class:`Dialer` that records what it was asked to place.
* :class:`SimulatedQueue` — both at once, modelling app_queue the way the Asterisk dialer uses it:
  entries in queue order, a stand-in inserted at its position, every free agent taking the head
  entry at once (autofill), and a stand-in's caller rung only when an agent takes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ivr.callbacks.dialing import ALIVE, AttemptOrder, Check, Connected, DialError, Ended, Sink
from ivr.callbacks.models import Outcome
from ivr.callbacks.queue_view import QueueSnapshot, QueueViewError, WaitingEntry
from ivr.callbacks.service import OpenAttempt


class StaticQueue:
    def __init__(self, snapshot: QueueSnapshot | None = None) -> None:
        self.current = snapshot or QueueSnapshot(agents_logged_in=1, agents_free=1)
        self.fail: str | None = None

    def snapshot(self) -> QueueSnapshot:
        if self.fail:
            raise QueueViewError(self.fail)
        return self.current


class RecordingDialer:
    name = "fake"

    def __init__(self, holds_place: bool = True) -> None:
        self.holds_place = holds_place
        self.orders: list[AttemptOrder] = []
        self.withdrawn: list[tuple[int, str]] = []
        self.checks: dict[int, Check] = {}
        self.checked: list[list[int]] = []
        self.fail_place: str | None = None
        self.fail_check: str | None = None
        self.sink: Sink | None = None

    def listen(self, sink: Sink) -> None:
        self.sink = sink

    def place(self, order: AttemptOrder) -> str:
        if self.fail_place:
            raise DialError(self.fail_place)
        self.orders.append(order)
        return f"fake-{order.attempt_id}"

    def withdraw(self, attempt_id: int, channel: str) -> None:
        self.withdrawn.append((attempt_id, channel))

    def check(self, attempts: Sequence[OpenAttempt]) -> Mapping[int, Check]:
        if self.fail_check:
            raise DialError(self.fail_check)
        self.checked.append([a.id for a in attempts])
        return {a.id: self.checks[a.id] for a in attempts if a.id in self.checks}

    def close(self) -> None:
        pass


@dataclass
class _Entry:
    name: str
    entered_at: datetime
    attempt_id: int | None = None


@dataclass
class _Agent:
    name: str
    busy_until: datetime | None = None


@dataclass
class SimulatedQueue:
    """app_queue and the stand-in dialplan, in memory; time moves only through :meth:`tick`."""

    agents: int
    talk: timedelta
    now: datetime
    name: str = "fake"
    holds_place: bool = True
    served: list[str] = field(default_factory=list)
    """Who each agent took, in order: live callers by name, callbacks as ``cb<callback id>``."""
    rung: list[int] = field(default_factory=list)
    """Callback ids whose caller's phone rang."""
    ringing_max: int = 0
    """The most callers of callbacks rung or talking at one moment."""
    _entries: list[_Entry] = field(default_factory=list)
    _agents: list[_Agent] = field(default_factory=list)
    _talking: dict[int, datetime] = field(default_factory=dict)
    _sink: Sink | None = None
    _callback_of: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._agents = [_Agent(f"agent{i}") for i in range(self.agents)]

    # -- the world -----------------------------------------------------------------------------

    def join(self, name: str, at: datetime) -> None:
        """A live caller joins at the end, as Queue() without a position does."""
        self._entries.append(_Entry(name, at))

    def leave(self, name: str) -> datetime | None:
        """A live caller presses 1 and leaves; when they had joined (None: already served)."""
        entry = next((e for e in self._entries if e.name == name), None)
        if entry is None:
            return None
        self._entries.remove(entry)
        return entry.entered_at

    def tick(self, now: datetime) -> None:
        """Calls end, then every free agent takes the head of the queue at once (autofill)."""
        self.now = now
        for attempt_id, ends in list(self._talking.items()):
            if ends <= now:
                del self._talking[attempt_id]
                assert self._sink is not None
                self._sink(Ended(attempt_id, Outcome.ANSWERED, "talked"))
        for agent in self._agents:
            if agent.busy_until is not None and agent.busy_until > now:
                continue
            if not self._entries:
                agent.busy_until = None
                continue
            entry = self._entries.pop(0)
            agent.busy_until = now + self.talk
            if entry.attempt_id is None:
                self.served.append(entry.name)
                continue
            self.served.append(entry.name)
            self.rung.append(self._callback_of[entry.attempt_id])
            self._talking[entry.attempt_id] = now + self.talk
            self.ringing_max = max(self.ringing_max, len(self._talking))
            assert self._sink is not None
            self._sink(Connected(entry.attempt_id, agent.name))

    # -- QueueView -------------------------------------------------------------------------------

    def snapshot(self) -> QueueSnapshot:
        free = sum(1 for a in self._agents if a.busy_until is None or a.busy_until <= self.now)
        waiting = tuple(
            WaitingEntry(i + 1, e.entered_at, e.name, e.attempt_id)
            for i, e in enumerate(self._entries)
        )
        return QueueSnapshot(len(self._agents), free, waiting, max_len=30)

    # -- Dialer ----------------------------------------------------------------------------------

    def listen(self, sink: Sink) -> None:
        self._sink = sink

    def place(self, order: AttemptOrder) -> str:
        self._callback_of[order.attempt_id] = order.callback_id
        index = min(max(order.position, 1), len(self._entries) + 1) - 1
        entry = _Entry(f"cb{order.callback_id}", order.entered_at, order.attempt_id)
        self._entries.insert(index, entry)
        return f"standin-{order.attempt_id}"

    def withdraw(self, attempt_id: int, channel: str) -> None:
        self._entries = [e for e in self._entries if e.attempt_id != attempt_id]

    def check(self, attempts: Sequence[OpenAttempt]) -> Mapping[int, Check]:
        alive = {e.attempt_id for e in self._entries} | set(self._talking)
        return {a.id: ALIVE for a in attempts if a.id in alive}

    def close(self) -> None:
        pass
