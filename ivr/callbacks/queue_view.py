"""What the dispatcher needs to know of the live agents' queue, whichever PBX holds it.

Callbacks are served in order of original entry time *together with* the callers still waiting,
so the dispatcher must see those callers' entry times, and how many agents could take a call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class QueueViewError(Exception):
    """The queue could not be read (PBX unreachable, queue unknown)."""


@dataclass(frozen=True)
class WaitingEntry:
    """One channel waiting in the queue: a live caller, or a callback's stand-in."""

    position: int
    entered_at: datetime
    channel: str
    attempt_id: int | None = None
    """The callback attempt this entry stands in for; None for a live caller."""


@dataclass(frozen=True)
class QueueSnapshot:
    agents_logged_in: int
    """Members that can take calls now or after their current one: not paused, reachable."""
    agents_free: int
    """Of those, the ones not on a call right now."""
    waiting: tuple[WaitingEntry, ...] = field(default=())
    """In queue order (position 1 first)."""
    max_len: int = 0
    """The queue's maxlen; 0: unlimited."""
    serving: frozenset[str] = field(default=frozenset())
    """Calls agents are talking to now, by their id on the network (Twilio's CallSid): a
    caller-first attempt among them has its agent, and promises no other."""


class QueueView(Protocol):
    def snapshot(self) -> QueueSnapshot:
        """The queue now; raises QueueViewError when it cannot be read."""
        ...
