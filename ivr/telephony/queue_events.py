"""The agents' queue in the call records: AMI queue events written into the IVR's ``call`` rows.

After the IVR hands a caller to ``Queue()`` (``IVR_ACTION=transfer``) the controller hears no
more of the call over AGI; only Asterisk knows whether a person answered and how long the
caller waited. Asterisk says so on AMI, on the same channel the AGI ran on, so the events'
``Uniqueid`` is the call's ``external_id``:

- ``QueueCallerJoin``     the caller starts waiting (``queue``, ``queue_joined_at``);
- ``QueueCallerLeave``    the caller stops waiting, for any reason (``queue_left_at``; outcome
                          ``left`` unless a more precise event says otherwise);
- ``AgentConnect``        an agent answered (``connected``, ``agent``);
- ``QueueCallerAbandon``  the caller hung up while waiting (``abandoned``);
- ``AgentComplete``       the conversation with the agent ended (``queue_talk_s``, its
                          ``TalkTime``).

Asterisk sends Leave before AgentConnect and after QueueCallerAbandon; the dispatcher delivers
events in order, so the precise outcome always ends up in the row. Waits are measured from the
events' own times (AMI ``Timestamp`` when ``timestampevents = yes``, else arrival), and fall
back to Asterisk's whole-second ``HoldTime`` when the join was not seen (the controller
started while the caller waited). Events for channels the IVR never handled (other queues on
the same PBX) match no row and are ignored. Events sent while AMI is disconnected are lost:
the ``AmiClient`` watchdog logs in again, but Asterisk does not replay them.

This module only reads the events; the call store (``ivr.tickets.calls``), the one writer of
the ``call`` table, reads and writes the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from ivr.clock import utcnow
from ivr.desk_events import desk_events
from ivr.settings import Settings
from ivr.telephony.ami import AmiClient, AmiEvent, ListenerHandle
from ivr.telephony.screen_pops import AgentConnectPops
from ivr.tickets.calls import CallStore, QueueColumns
from ivr.users.store import UserStore

log = logging.getLogger(__name__)

EVENTS = (
    "QueueCallerJoin",
    "QueueCallerLeave",
    "AgentConnect",
    "QueueCallerAbandon",
    "AgentComplete",
)


class QueueEventRecorder:
    """An AMI listener that keeps each IVR call's queue columns up to date."""

    def __init__(
        self, calls: CallStore, ami: AmiClient, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.calls = calls
        self.ami = ami
        self.clock = clock
        self.written = 0
        """Events that changed a call row (tests and logs use it)."""
        self._handle: ListenerHandle | None = None

    def start(self) -> None:
        """Listen from now on (the AMI client may still be connecting: it logs in by itself)."""
        if self._handle is None:
            self._handle = self.ami.add_listener(self.handle, *EVENTS)

    def stop(self) -> None:
        if self._handle is not None:
            self.ami.remove_listener(self._handle)
            self._handle = None

    # ------------------------------------------------------------------ events
    def handle(self, event: AmiEvent) -> bool:
        """Write one event into its call's row; True if a row changed. Never raises: a
        database hiccup must not stop the AMI dispatcher that other listeners share."""
        uniqueid = event.get("Uniqueid")
        if event.name not in EVENTS or not uniqueid:
            return False
        try:
            changed = self._write(event, uniqueid, self._when(event))
        except Exception:
            log.exception("could not record %s for call %s", event.name, uniqueid)
            return False
        if changed:
            self.written += 1
        return changed

    def _when(self, event: AmiEvent) -> datetime:
        stamp = event.get("Timestamp")
        if stamp:
            try:
                return datetime.fromtimestamp(float(stamp), UTC)
            except ValueError:
                pass
        return self.clock()

    def _write(self, event: AmiEvent, uniqueid: str, at: datetime) -> bool:
        wait_so_far = self.calls.queue_wait(uniqueid)
        if wait_so_far is None:
            return False  # not a call the IVR handled
        joined, left, outcome = wait_so_far.joined_at, wait_so_far.left_at, wait_so_far.outcome
        values: QueueColumns
        if event.name == "AgentComplete":
            talk = _seconds(event.get("TalkTime"))
            return talk is not None and self.calls.update_queue(uniqueid, {"queue_talk_s": talk})
        if event.name == "QueueCallerJoin":
            # A second transfer in one call starts a new wait: forget the first one.
            values = {
                "queue": event.get("Queue") or None,
                "queue_joined_at": at,
                "queue_left_at": None,
                "queue_wait_s": None,
                "queue_outcome": None,
                "agent": None,
                "queue_talk_s": None,
            }
        else:
            hold = _seconds(event.get("HoldTime"))
            if joined is None and hold is not None:
                joined = at - timedelta(seconds=hold)
            wait = (at - joined).total_seconds() if joined is not None else hold
            values = {"queue": event.get("Queue") or None}
            if joined is not None:
                values["queue_joined_at"] = joined
            if event.name == "QueueCallerLeave":
                values["queue_left_at"] = left or at
                if outcome is None:
                    values["queue_outcome"] = "left"
                    values["queue_wait_s"] = wait
            elif event.name == "AgentConnect":
                # Leave came first (same moment): keep its time, it is when the waiting ended.
                values["queue_left_at"] = left or at
                values["queue_outcome"] = "connected"
                values["agent"] = event.get("MemberName") or event.get("Interface") or None
                values["queue_wait_s"] = _wait(joined, left, wait)
            else:  # QueueCallerAbandon
                values["queue_left_at"] = left or at
                values["queue_outcome"] = "abandoned"
                values["queue_wait_s"] = _wait(joined, left, wait)
        return self.calls.update_queue(uniqueid, values)


def _seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _wait(joined: datetime | None, left: datetime | None, fallback: float | None) -> float | None:
    """Join to leave when both were seen, else the event's own measure."""
    if joined is not None and left is not None:
        return max((left - joined).total_seconds(), 0.0)
    return None if fallback is None else max(fallback, 0.0)


def start_queue_events(engine: Engine, settings: Settings) -> tuple[AmiClient, QueueEventRecorder]:
    """The long-lived AMI client ``ivr serve`` runs when ``IVR_AMI_USERNAME`` is set.

    Does not wait for Asterisk: the client's watchdog keeps logging in (Asterisk may start
    after the controller, or restart under it), and events flow from the first login on.
    """
    ami = AmiClient(
        settings.ami_host,
        settings.ami_port,
        settings.ami_username,
        settings.ami_secret,
        event_mask="agent",  # the queue events' class: nothing else is parsed
    )
    recorder = QueueEventRecorder(CallStore(engine), ami)
    recorder.start()
    # The agent who answers gets the call on their desk (ivr.desk_events, any node's desk).
    AgentConnectPops(UserStore(engine), desk_events(engine), ami).start()
    try:
        ami.connect(timeout=1.0)
    except Exception as exc:  # AmiError: not up yet; the watchdog goes on trying
        log.warning("AMI at %s:%s not reachable yet (%s); will keep trying",
                    settings.ami_host, settings.ami_port, exc)  # fmt: skip
    else:
        log.info("recording queue events from AMI at %s:%s", settings.ami_host, settings.ami_port)
    return ami, recorder
