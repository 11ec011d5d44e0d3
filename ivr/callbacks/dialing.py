"""What the dispatcher asks of a dialer (Asterisk, Twilio), and what a dialer reports back.

A dialer places one attempt at a time (:meth:`Dialer.place`, asynchronous: it returns once the
network has the request) and reports what became of it through the ``sink`` it was given in
:meth:`Dialer.listen`: :class:`Connected` when an agent took it, :class:`Ended` with the
outcome. Events may be lost (the controller was down when Asterisk sent them), so the
dispatcher also asks :meth:`Dialer.check` about attempts it has not heard from for a while.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from ivr.callbacks.models import Outcome
from ivr.callbacks.service import OpenAttempt


class DialError(Exception):
    """The dialer could not place or ask about a call (network, PBX or API down)."""


@dataclass(frozen=True)
class AttemptOrder:
    """One attempt to place: who to call and, for a dialer that holds places, where."""

    attempt_id: int
    callback_id: int
    number: str
    """National form, 09121234567."""
    province: str
    entered_at: datetime
    position: int
    """The place in the agents' queue the stand-in takes (1 = head), as the dispatcher saw it."""


@dataclass(frozen=True)
class Connected:
    attempt_id: int
    agent: str | None = None


@dataclass(frozen=True)
class Ended:
    attempt_id: int
    outcome: Outcome
    detail: str | None = None


DialEvent = Connected | Ended
Sink = Callable[[DialEvent], None]
ALIVE: Literal["alive"] = "alive"
Check = Ended | Literal["alive"]


class Dialer(Protocol):
    """Places callbacks on one telephone network."""

    name: str
    """Stored on each attempt (``asterisk``, ``twilio``)."""
    holds_place: bool
    """True: an attempt first waits in the agents' queue as a stand-in and the caller is rung
    only once an agent has answered (agent-first); False: the caller is rung at once."""

    def listen(self, sink: Sink) -> None:
        """Report attempts' events to ``sink`` from now on (replacing an earlier sink)."""
        ...

    def place(self, order: AttemptOrder) -> str:
        """Start the attempt; returns its id on the network. Raises DialError."""
        ...

    def withdraw(self, attempt_id: int, channel: str) -> None:
        """Take the attempt's stand-in (``channel``, as the queue view saw it) out of the queue:
        hours over, callback cancelled, attempt closed."""
        ...

    def check(self, attempts: Sequence[OpenAttempt]) -> Mapping[int, Check]:
        """For each attempt: ALIVE, its outcome if the network kept one, or absent (no trace).
        Raises DialError when the network cannot be asked."""
        ...

    def close(self) -> None: ...
