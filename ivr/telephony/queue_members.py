"""Agents in and out of the agents' queue, for the supervisors' live view: AMI ``QueueAdd``,
``QueueRemove``, ``QueuePause`` and the queue now (``QueueStatus``, ``ivr.telephony.queue_status``).

An agent is a queue member by their extension (``ivr users add --extension PJSIP/201``); a
dynamic member added here survives an Asterisk restart (app_queue keeps it in AstDB). The pause
reason is what Asterisk shows as ``PausedReason`` and what the live view prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ivr.telephony.ami import AmiClient, AmiError
from ivr.telephony.queue_status import QueueAgent, QueueSnapshot, WaitingCaller, queue_status

REASON_MAX = 64


class QueueMemberError(Exception):
    """A member action Asterisk refused or could not be asked (the message says which)."""


@dataclass(frozen=True)
class Member:
    """Who to act on: a user's name (shown in the queue) and their extension."""

    name: str
    extension: str


@dataclass(frozen=True)
class LiveAgent:
    name: str
    """The user's name when the interface is one's, else the member name Asterisk has."""
    interface: str
    state: str
    paused_reason: str
    calls_taken: int
    dynamic: bool
    user: str | None


@dataclass(frozen=True)
class LiveQueue:
    """The supervisors' view: callers waiting, longest wait, agents and their state."""

    name: str
    callers: tuple[WaitingCaller, ...]
    longest_wait_s: int
    agents: tuple[LiveAgent, ...]
    completed: int
    abandoned: int
    holdtime_s: int

    @property
    def free_agents(self) -> int:
        return sum(1 for a in self.agents if a.state == "free")


def _member(user: Member) -> str:
    if not user.extension:
        raise QueueMemberError(f"{user.name} has no extension: ivr users add --extension")
    return user.extension


def log_in(ami: AmiClient, queue: str, user: Member, *, paused: bool = False) -> None:
    try:
        ami.queue_add(queue, _member(user), user.name, paused=paused)
    except AmiError as error:
        raise QueueMemberError(f"could not log {user.name} in to {queue}: {error}") from None


def log_out(ami: AmiClient, queue: str, user: Member) -> None:
    try:
        ami.queue_remove(queue, _member(user))
    except AmiError as error:
        raise QueueMemberError(f"could not log {user.name} out of {queue}: {error}") from None


def pause(ami: AmiClient, queue: str, user: Member, reason: str, *, paused: bool = True) -> None:
    """Pause (with a reason; e.g. «ناهار») or unpause an agent in ``queue``."""
    text = " ".join(reason.split())[:REASON_MAX]
    if paused and not text:
        raise QueueMemberError("a pause needs a reason")
    try:
        ami.queue_pause(queue, _member(user), paused, text if paused else "")
    except AmiError as error:
        word = "pause" if paused else "unpause"
        raise QueueMemberError(f"could not {word} {user.name} in {queue}: {error}") from None


def live_queue(ami: AmiClient, queue: str, users: Iterable[Member] = ()) -> LiveQueue:
    """The queue now, its members named by the users whose extensions they are."""
    try:
        found = queue_status(ami, queue).get(queue)
    except AmiError as error:
        raise QueueMemberError(f"could not read the queue {queue}: {error}") from None
    if found is None:
        raise QueueMemberError(f"Asterisk has no queue {queue!r}")
    return live_view(found, users)


def live_view(snapshot: QueueSnapshot, users: Iterable[Member] = ()) -> LiveQueue:
    """Pure: a QueueStatus snapshot with the users' names on their interfaces."""
    by_interface = {u.extension: u.name for u in users if u.extension}
    return LiveQueue(
        name=snapshot.name,
        callers=snapshot.callers,
        longest_wait_s=snapshot.longest_wait_s,
        agents=tuple(_live(a, by_interface.get(a.interface)) for a in snapshot.agents),
        completed=snapshot.completed,
        abandoned=snapshot.abandoned,
        holdtime_s=snapshot.holdtime_s,
    )


def _live(agent: QueueAgent, user: str | None) -> LiveAgent:
    return LiveAgent(
        name=user or agent.name,
        interface=agent.interface,
        state=agent.state.value,
        paused_reason=agent.paused_reason,
        calls_taken=agent.calls_taken,
        dynamic=agent.dynamic,
        user=user,
    )
