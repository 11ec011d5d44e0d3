"""What a queue looks like right now, from AMI ``QueueStatus``: callers waiting, agents' states.

``ivr queue status``, the agents' desk and the callbacks dispatcher (how many agents are free)
all read it through ``queue_status``; ``parse`` is pure, so the mapping from Asterisk's fields
(QueueParams, QueueMember, QueueEntry events) is tested without a PBX.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from ivr.telephony.ami import AmiClient, AmiEvent


class AgentState(StrEnum):
    """One word for what an agent is doing, as a supervisor would say it."""

    FREE = "free"
    BUSY = "busy"
    RINGING = "ringing"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"  # phone not registered or unreachable
    INVALID = "invalid"  # the interface does not exist
    UNKNOWN = "unknown"


# Asterisk's device states (enum ast_device_state) as QueueMember's Status field numbers them.
_DEVICE_STATES = {
    "0": AgentState.UNKNOWN,
    "1": AgentState.FREE,  # not in use
    "2": AgentState.BUSY,  # in use
    "3": AgentState.BUSY,  # busy
    "4": AgentState.INVALID,
    "5": AgentState.UNAVAILABLE,
    "6": AgentState.RINGING,
    "7": AgentState.BUSY,  # ringing while in use
    "8": AgentState.BUSY,  # on hold
}


@dataclass(frozen=True)
class QueueAgent:
    name: str
    interface: str
    state: AgentState
    dynamic: bool
    """Logged in with QueueAdd (the desk, a phone code), not a member in queues.conf."""
    calls_taken: int = 0
    last_call: datetime.datetime | None = None
    paused_reason: str = ""


@dataclass(frozen=True)
class WaitingCaller:
    position: int
    channel: str
    uniqueid: str
    caller_id: str
    wait_s: int


@dataclass(frozen=True)
class QueueSnapshot:
    name: str
    max_callers: int
    """0: no limit."""
    strategy: str
    holdtime_s: int
    """app_queue's average wait of answered calls (what its announcements estimate from)."""
    talktime_s: int
    completed: int
    abandoned: int
    callers: tuple[WaitingCaller, ...] = field(default_factory=tuple)
    agents: tuple[QueueAgent, ...] = field(default_factory=tuple)

    @property
    def longest_wait_s(self) -> int:
        return max((c.wait_s for c in self.callers), default=0)

    @property
    def free_agents(self) -> int:
        return sum(1 for a in self.agents if a.state is AgentState.FREE)


def parse(events: Iterable[AmiEvent]) -> dict[str, QueueSnapshot]:
    """The queues described by one QueueStatus answer, by name, callers in position order."""
    params: dict[str, AmiEvent] = {}
    agents: dict[str, list[QueueAgent]] = {}
    callers: dict[str, list[WaitingCaller]] = {}
    for ev in events:
        queue = ev.get("Queue")
        if ev.name == "QueueParams":
            params[queue] = ev
        elif ev.name == "QueueMember":
            agents.setdefault(queue, []).append(_agent(ev))
        elif ev.name == "QueueEntry":
            callers.setdefault(queue, []).append(
                WaitingCaller(
                    position=_int(ev.get("Position")),
                    channel=ev.get("Channel"),
                    uniqueid=ev.get("Uniqueid"),
                    caller_id=_known(ev.get("CallerIDNum")),
                    wait_s=_int(ev.get("Wait")),
                )
            )
    return {
        name: QueueSnapshot(
            name=name,
            max_callers=_int(p.get("Max")),
            strategy=p.get("Strategy"),
            holdtime_s=_int(p.get("Holdtime")),
            talktime_s=_int(p.get("TalkTime")),
            completed=_int(p.get("Completed")),
            abandoned=_int(p.get("Abandoned")),
            callers=tuple(sorted(callers.get(name, []), key=lambda c: c.position)),
            agents=tuple(agents.get(name, [])),
        )
        for name, p in sorted(params.items())
    }


def queue_status(ami: AmiClient, queue: str | None = None) -> dict[str, QueueSnapshot]:
    """Ask Asterisk now (one QueueStatus action); every queue unless ``queue`` is named."""
    keys = {"Queue": queue} if queue else {}
    return parse(ami.action_list("QueueStatus", "QueueStatusComplete", **keys))


def _agent(ev: AmiEvent) -> QueueAgent:
    paused = ev.get("Paused") == "1"
    state = _DEVICE_STATES.get(ev.get("Status"), AgentState.UNKNOWN)
    if ev.get("InCall") == "1" and state is AgentState.FREE:
        state = AgentState.BUSY  # a Local-channel agent may not report device state
    last = _int(ev.get("LastCall"))
    return QueueAgent(
        name=ev.get("Name") or ev.get("Location"),
        interface=ev.get("Location") or ev.get("StateInterface"),
        state=AgentState.PAUSED if paused else state,
        dynamic=ev.get("Membership") == "dynamic",
        calls_taken=_int(ev.get("CallsTaken")),
        last_call=datetime.datetime.fromtimestamp(last, datetime.UTC) if last > 0 else None,
        paused_reason=ev.get("PausedReason") if paused else "",
    )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _known(text: str) -> str:
    return "" if text in ("", "<unknown>") else text
