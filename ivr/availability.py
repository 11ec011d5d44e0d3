"""Whether agents can answer a call now, and if not when they next do: the answer the flow's
``agent.check`` step gets before a caller is sent to the queue.

Two sources: the agents' hours per province (``ivr.calendar.agent_hours``: the working calendar's
days, the hours file's times) for every transport, and, for Asterisk calls when AMI is configured,
the queue itself (``QueueStatus``): at least one member logged in and not paused. Twilio has no
cheap view of who would answer, so its calls are judged by the hours alone (an empty Twilio queue
still plays the wait URL, which offers the callback key). A PBX that cannot be asked is not a
reason to refuse a caller: the hours decide, and the dialplan's JOINEMPTY still sends an empty
queue's caller back to the "no agent" menu.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from ivr.calendar.agent_hours import AgentHours
from ivr.clock import TEHRAN, as_aware, utcnow
from ivr.flow.events import AgentsChecked

log = logging.getLogger(__name__)

Presence = Callable[[], bool | None]
"""True: someone can answer; False: nobody logged in (or all paused); None: cannot tell."""

ANSWERING_STATES = frozenset({"free", "busy", "ringing"})
"""Agent states (``ivr.telephony.queue_status.AgentState``) of someone who will answer."""


class AgentAvailability:
    def __init__(
        self,
        hours: AgentHours,
        presence: dict[str, Presence] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.hours = hours
        self.presence = presence or {}
        """Per channel (``asterisk``): who is logged in; channels without one use hours only."""
        self.clock = clock

    def check(self, province: str, channel: str, at: datetime | None = None) -> AgentsChecked:
        now = as_aware(at or self.clock())
        opening = self.hours.next_opening(province, now)
        if opening > now:
            days = (opening.astimezone(TEHRAN).date() - now.astimezone(TEHRAN).date()).days
            return AgentsChecked(False, opening, days)
        ask = self.presence.get(channel)
        someone = ask() if ask is not None else None
        if someone is False:
            return AgentsChecked(False, None)
        return AgentsChecked(True)


class AmiPresence:
    """Asks Asterisk (AMI ``QueueStatus``) whether a member of ``queue`` can answer.

    The AMI login is made on first use and kept; any failure answers None (cannot tell).
    """

    def __init__(self, connect: Callable[[], object], queue: str) -> None:
        self._connect = connect
        self._client: object | None = None
        self._lock = threading.Lock()
        self.queue = queue

    def __call__(self) -> bool | None:
        from ivr.telephony.queue_status import queue_status

        try:
            with self._lock:
                if self._client is None:
                    self._client = self._connect()
                client = self._client
            snapshot = queue_status(client, self.queue).get(self.queue)  # type: ignore[arg-type]
        except Exception as error:  # the PBX's view is a hint; the hours still decide
            log.warning("cannot ask Asterisk who is logged in to %s: %s", self.queue, error)
            return None
        if snapshot is None:
            return False  # no such queue: nobody can answer in it
        return any(agent.state.value in ANSWERING_STATES for agent in snapshot.agents)
