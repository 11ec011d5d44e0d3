"""AMI ``AgentConnect`` as a screen pop: the agent who just answered a queue call gets it on
their desk.

``AgentConnect`` names the queue member's ``Interface`` (PJSIP/201, or a Local channel in the
test PBX) and the caller's channel ``Uniqueid`` — the call's ``external_id`` in the call records
when the IVR answered it, a callback's stand-in otherwise. ``ivr users add --extension`` ties the
interface to a user; an interface nobody claims pops up nowhere. The pop itself is stored by
``ivr.desk_events`` (any node's desk may be the one to show it).
"""

from __future__ import annotations

import logging

from ivr.desk_events import DeskEvents
from ivr.telephony.ami import AmiClient, AmiEvent, ListenerHandle
from ivr.users.store import UserStore

log = logging.getLogger(__name__)

EVENT = "AgentConnect"


class AgentConnectPops:
    """An AMI listener that pushes one pop per connected queue call to the agent's desk."""

    def __init__(self, users: UserStore, events: DeskEvents, ami: AmiClient) -> None:
        self.users = users
        self.events = events
        self.ami = ami
        self.pushed = 0
        """Pops this listener stored (tests and logs)."""
        self._handle: ListenerHandle | None = None

    def start(self) -> None:
        if self._handle is None:
            self._handle = self.ami.add_listener(self.handle, EVENT)

    def stop(self) -> None:
        if self._handle is not None:
            self.ami.remove_listener(self._handle)
            self._handle = None

    def handle(self, event: AmiEvent) -> int | None:
        """The pop's id, or None (not an agent's call, or already popped). Never raises: the
        AMI dispatcher thread is shared with the call records' listener."""
        uniqueid = event.get("Uniqueid")
        if event.name != EVENT or not uniqueid:
            return None
        try:
            user = self.users.by_extension(event.get("Interface")) or self.users.by_extension(
                event.get("StateInterface")
            )
            if user is None or user.id is None:
                log.debug("AgentConnect from %s: no user has it as extension",
                          event.get("Interface"))  # fmt: skip
                return None
            made = self.events.push(user.id, "asterisk", uniqueid, _known(event.get("CallerIDNum")))
        except Exception:
            log.exception("could not push the screen pop of call %s", uniqueid)
            return None
        if made is not None:
            self.pushed += 1
            log.info("screen pop: call %s to %s", uniqueid, user.name)
        return made


def _known(number: str) -> str | None:
    return None if number in ("", "<unknown>") else number
