"""Callbacks on Asterisk: the queue read with AMI ``QueueStatus``, attempts placed by ``Originate``.

Agent-first, through the agents' queue itself (contexts ``ivr124-callback-*`` in
``dialplans/extensions.conf``). Each attempt is one Local channel:

* its ``;2`` leg, uniqueid ``ivr124cb-<attempt>-2``, is the **stand-in**: it joins the queue
  unanswered, at the position the dispatcher computed from the callback's entry time, and waits
  there like the caller would have;
* when an agent answers it, app_queue answers the stand-in, which answers the ``;1`` leg
  (``ivr124cb-<attempt>-1``): Originate reports Success, and ``;1`` dials the caller while the
  agent hears ringback; the caller hears «تماس از سامانه ۱۲۴، بنا به درخواست شما» and is
  bridged to the agent;
* the dialplan reports each end with a ``UserEvent: IvrCallback`` (stage ``standin`` with
  QUEUESTATUS when no agent took it, stage ``result`` with DIALSTATUS and the hangup cause) and
  also writes it to AstDB (``ivr124cb/<attempt>``), so an outcome sent while no controller
  listened is still found by :meth:`AsteriskDialer.check` — a new leader never calls twice
  because the old one missed the end of a call.

The AMI user needs read ``call,user,agent`` (events), write ``originate,call`` and
``system,reporting`` (CoreShowChannels, DBGetTree, DBDel).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from ivr.callbacks.dialing import ALIVE, AttemptOrder, Check, DialError, Ended, Sink
from ivr.callbacks.dialing import Connected as ConnectedEvent
from ivr.callbacks.models import Outcome
from ivr.callbacks.queue_view import QueueSnapshot, QueueViewError, WaitingEntry
from ivr.callbacks.service import OpenAttempt
from ivr.clock import utcnow
from ivr.telephony.ami import AmiClient, AmiError, AmiEvent, ListenerHandle

log = logging.getLogger(__name__)

UNIQUEID_PREFIX = "ivr124cb"
_UNIQUEID = re.compile(rf"^{UNIQUEID_PREFIX}-(\d+)-[12]$")
DB_FAMILY = "ivr124cb"
STANDIN_CONTEXT = "ivr124-callback-standin"
CALL_CONTEXT = "ivr124-callback-call"
USER_EVENT = "IvrCallback"
EVENT_MASK = "call,user,agent"
"""OriginateResponse (call), the dialplan's UserEvents (user), AgentConnect (agent)."""

MEMBER_UNREACHABLE = {"4", "5"}
"""QueueMember Status: AST_DEVICE_INVALID, AST_DEVICE_UNAVAILABLE (not logged in, in effect)."""
MEMBER_IDLE = {"0", "1"}
"""AST_DEVICE_UNKNOWN (app_queue rings those), AST_DEVICE_NOT_INUSE."""

DIALSTATUS_OUTCOMES: Mapping[str, Outcome] = {
    "ANSWER": Outcome.ANSWERED,
    "NOANSWER": Outcome.NO_ANSWER,
    # The agent hung up while the caller's phone rang: the caller was rung and not reached.
    "CANCEL": Outcome.NO_ANSWER,
    "BUSY": Outcome.BUSY,
    "CONGESTION": Outcome.FAILED,
    "CHANUNAVAIL": Outcome.FAILED,
    "DONTCALL": Outcome.FAILED,
    "TORTURE": Outcome.FAILED,
    "INVALIDARGS": Outcome.FAILED,
}


def standin_uniqueids(attempt_id: int) -> tuple[str, str]:
    """(``;1`` leg, ``;2`` leg = the stand-in in the queue) of an attempt's Local channel."""
    return f"{UNIQUEID_PREFIX}-{attempt_id}-1", f"{UNIQUEID_PREFIX}-{attempt_id}-2"


def attempt_of(uniqueid: str) -> int | None:
    """The attempt a channel belongs to, from the uniqueid we gave it; None: not ours."""
    found = _UNIQUEID.match(uniqueid or "")
    return int(found.group(1)) if found else None


def outcome_of_dialstatus(dialstatus: str) -> Outcome:
    """Dial()'s DIALSTATUS as an attempt outcome; no status: the caller was never dialled."""
    return DIALSTATUS_OUTCOMES.get(dialstatus.strip().upper(), Outcome.WITHDRAWN)


def list_action(
    ami: AmiClient,
    action: str,
    complete: str,
    names: Iterable[str],
    timeout: float = 5.0,
    **keys: str,
) -> list[AmiEvent]:
    """An AMI action answered by a list of events (QueueStatus, CoreShowChannels, DBGetTree):
    the events carrying its ActionID, up to ``complete``. Raises AmiError."""
    with ami.events(*names, complete) as events:
        action_id = ami.action(action, timeout=timeout, **keys).get("ActionID", "")
        events.get(complete, timeout=timeout, ActionID=action_id)
        return [e for e in events.collected() if e.get("ActionID") == action_id]


def parse_queue_status(events: Sequence[AmiEvent], queue: str, now: datetime) -> QueueSnapshot:
    """A queue's snapshot from the events of one ``QueueStatus`` action.

    Entry times are ``now`` minus the entry's ``Wait`` (whole seconds: two callers who joined in
    the same second may be taken for either order).
    """
    params = [e for e in events if e.name == "QueueParams" and e.get("Queue") == queue]
    if not params:
        raise QueueViewError(f"Asterisk has no queue {queue!r}")
    logged_in = free = 0
    for member in (e for e in events if e.name == "QueueMember" and e.get("Queue") == queue):
        if member.get("Paused") == "1" or member.get("Status") in MEMBER_UNREACHABLE:
            continue
        logged_in += 1
        if member.get("Status") in MEMBER_IDLE and member.get("InCall", "0") == "0":
            free += 1
    entries = []
    for entry in (e for e in events if e.name == "QueueEntry" and e.get("Queue") == queue):
        wait = _int(entry.get("Wait"))
        entries.append(
            WaitingEntry(
                position=_int(entry.get("Position")),
                entered_at=now - timedelta(seconds=wait),
                channel=entry.get("Channel"),
                attempt_id=attempt_of(entry.get("Uniqueid")),
            )
        )
    entries.sort(key=lambda e: e.position)
    return QueueSnapshot(logged_in, free, tuple(entries), _int(params[0].get("Max")))


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


class AsteriskQueueView:
    """The agents' queue as Asterisk holds it, one ``QueueStatus`` per snapshot."""

    def __init__(self, ami: AmiClient, queue: str, timeout: float = 5.0) -> None:
        self.ami = ami
        self.queue = queue
        self.timeout = timeout

    def snapshot(self) -> QueueSnapshot:
        names = ("QueueParams", "QueueMember", "QueueEntry")
        try:
            events = list_action(
                self.ami,
                "QueueStatus",
                "QueueStatusComplete",
                names,
                self.timeout,
                Queue=self.queue,
            )
        except AmiError as error:
            raise QueueViewError(str(error)) from error
        return parse_queue_status(events, self.queue, utcnow())


class AsteriskDialer:
    """Places attempts with AMI Originate (see the module docstring) and reports their ends."""

    name = "asterisk"
    holds_place = True

    def __init__(
        self,
        ami: AmiClient,
        *,
        queue: str,
        dial: str,
        caller_id: str = "124",
        hold_seconds: int = 900,
        ring_seconds: int = 30,
        timeout: float = 5.0,
    ) -> None:
        self.ami = ami
        self.queue = queue
        self.dial = dial
        self.caller_id = caller_id
        self.hold_seconds = hold_seconds
        self.ring_seconds = ring_seconds
        self.timeout = timeout
        self._sink: Sink | None = None
        self._handle: ListenerHandle | None = None
        self._lock = threading.Lock()

    # -- events ----------------------------------------------------------------------------------

    def listen(self, sink: Sink) -> None:
        with self._lock:
            self._sink = sink
            if self._handle is None:
                self._handle = self.ami.add_listener(
                    self._on_event, "OriginateResponse", "AgentConnect", "UserEvent"
                )

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self.ami.remove_listener(self._handle)
                self._handle = None
            self._sink = None

    def _on_event(self, event: AmiEvent) -> None:
        sink = self._sink
        if sink is None:
            return
        if event.name == "OriginateResponse":
            attempt = attempt_of(event.get("Uniqueid"))
            if attempt is None:
                return
            if event.get("Response") == "Success":
                sink(ConnectedEvent(attempt))
            else:
                reason = event.get("Reason")
                sink(Ended(attempt, Outcome.WITHDRAWN, f"no agent took the stand-in ({reason})"))
        elif event.name == "AgentConnect":
            attempt = attempt_of(event.get("Uniqueid"))
            if attempt is not None:
                agent = event.get("MemberName") or event.get("Interface") or None
                sink(ConnectedEvent(attempt, agent))
        elif event.name == "UserEvent" and event.get("UserEvent") == USER_EVENT:
            ended = _ended_from(event.get("Attempt"), event.get("Stage"), event.fields)
            if ended is not None:
                sink(ended)
                self._forget(ended.attempt_id, event.get("Stage"))

    def _forget(self, attempt_id: int, stage: str) -> None:
        """The outcome has been recorded: its AstDB copy is no longer needed."""
        key = f"{attempt_id}-standin" if stage == "standin" else str(attempt_id)
        try:
            self.ami.action("DBDel", Family=DB_FAMILY, Key=key, timeout=self.timeout)
        except AmiError as error:  # AMI down: the key stays, and check() finds it harmlessly
            log.debug("AstDB %s/%s not deleted: %s", DB_FAMILY, key, error)

    # -- actions ---------------------------------------------------------------------------------

    def place(self, order: AttemptOrder) -> str:
        first, standin = standin_uniqueids(order.attempt_id)
        e164 = "+98" + order.number[1:]
        variables = {
            "CB_ATTEMPT": order.attempt_id,
            "CB_QUEUE": self.queue,
            "CB_POSITION": max(order.position, 1),
            "CB_HOLD": self.hold_seconds,
            "CB_DIAL": self.dial.format(number=order.number, e164=e164),
            "CB_RING": self.ring_seconds,
            "CB_CALLER_ID": self.caller_id,
        }
        try:
            self.ami.action(
                "Originate",
                variables=variables,
                timeout=self.timeout,
                Channel=f"Local/s@{STANDIN_CONTEXT}/n",
                Context=CALL_CONTEXT,
                Exten="s",
                Priority=1,
                # The stand-in may wait its whole hold time before an agent "answers" it.
                Timeout=(self.hold_seconds + 60) * 1000,
                Async="true",
                ChannelId=first,
                OtherChannelId=standin,
                # What the agent's phone shows: the number they are about to talk to.
                CallerID=f'"callback" <{order.number}>',
            )
        except AmiError as error:
            raise DialError(str(error)) from error
        return standin

    def withdraw(self, attempt_id: int, channel: str) -> None:
        try:
            self.ami.action("Hangup", Channel=channel, timeout=self.timeout)
        except AmiError as error:
            if "No such channel" not in str(error):
                raise DialError(str(error)) from error

    def check(self, attempts: Sequence[OpenAttempt]) -> Mapping[int, Check]:
        if not attempts:
            return {}
        try:
            channels = list_action(
                self.ami,
                "CoreShowChannels",
                "CoreShowChannelsComplete",
                ("CoreShowChannel",),
                self.timeout,
            )
            stored = list_action(
                self.ami,
                "DBGetTree",
                "DBGetTreeComplete",
                ("DBGetTreeResponse",),
                self.timeout,
                Family=DB_FAMILY,
            )
        except AmiError as error:
            raise DialError(str(error)) from error
        alive = {attempt_of(c.get(field)) for c in channels for field in ("Uniqueid", "Linkedid")}
        values = {e.get("Key").rsplit("/", 1)[-1]: e.get("Val") for e in stored}
        found: dict[int, Check] = {}
        for attempt in attempts:
            if attempt.id in alive:
                found[attempt.id] = ALIVE
                continue
            result = values.get(str(attempt.id))
            standin = values.get(f"{attempt.id}-standin")
            if result is not None:
                dialstatus, _, cause = result.partition(",")
                stage, fields = "result", {"DialStatus": dialstatus, "HangupCause": cause}
            elif standin is not None:
                stage, fields = "standin", {"QueueStatus": standin}
            else:
                continue
            ended = _ended_from(str(attempt.id), stage, fields)
            if ended is not None:
                found[attempt.id] = ended
                self._forget(attempt.id, stage)
        return found


def _ended_from(attempt: str, stage: str, fields: Mapping[str, str]) -> Ended | None:
    """An attempt's end as the dialplan reported it (UserEvent or AstDB)."""
    try:
        attempt_id = int(attempt)
    except ValueError:
        return None
    if stage == "standin":
        status = fields.get("QueueStatus", "")
        return Ended(attempt_id, Outcome.WITHDRAWN, f"no agent took it: QUEUESTATUS={status}")
    if stage == "result":
        dialstatus = fields.get("DialStatus", "")
        cause = fields.get("HangupCause", "")
        detail = f"DIALSTATUS={dialstatus or '-'} cause={cause or '-'}"
        return Ended(attempt_id, outcome_of_dialstatus(dialstatus), detail)
    return None
