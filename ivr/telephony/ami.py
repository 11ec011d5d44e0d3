"""One long-lived AMI connection, on the PyPI ``asterisk-ami`` library, that survives restarts.

asterisk-ami 0.1.7 needs three things done around it:

- Its ``timeout`` is also the socket timeout of its reader thread: after that much AMI silence
  the thread dies and every later action quietly returns None. Here the socket has no timeout
  once connected; every wait is bounded by this module instead (``action_timeout``).
- It never notices a dead Asterisk by itself and its AutoReconnect helper waits on the same
  broken futures; a watchdog thread here pings every ``ping_interval`` and logs in again (with
  a fresh client) after Asterisk restarts or the connection drops.
- Event callbacks run on its reader thread, where an exception kills the reader and waiting
  for a response deadlocks it. Events are handed to a dispatcher thread instead, so listeners
  may call actions (e.g. PlayDTMF when an AGIExecStart event shows GET DATA).

- Its FutureResponse keeps every action that never got a response and calls the deprecated
  ``notifyAll``; responses go straight to a per-action callback here instead.
- Debian's Asterisk emits TestEvent messages with a stray CRLF at the end; the library then
  drops the message after it (often the response an action waits for). Packets are trimmed.

Events that arrive while the connection is down are lost; ``reconnects`` counts the gaps.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import socket
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from asterisk.ami import Action, AMIClient, Event, Response

log = logging.getLogger(__name__)


class AmiError(Exception):
    """An action failed, got no response in time, or AMI is not connected."""


@dataclass(frozen=True)
class AmiEvent:
    """One AMI event. Repeated header names keep only one value (a library limitation)."""

    name: str
    fields: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def get(self, key: str, default: str = "") -> str:
        value = self.fields.get(key, default)
        return value if isinstance(value, str) else str(value)

    def matches(self, **fields: str) -> bool:
        return all(self.get(k) == v for k, v in fields.items())


@dataclass(frozen=True)
class Originated:
    """A queued Local-channel call: ``uniqueid`` is the ;1 leg running the IVR context (the
    AGI sees it as ``agi_uniqueid``), ``other_uniqueid`` the ;2 leg in the caller context."""

    action_id: str
    uniqueid: str
    other_uniqueid: str


Listener = Callable[[AmiEvent], None]


@dataclass(eq=False)
class ListenerHandle:
    """What ``add_listener`` returns; pass it to ``remove_listener``."""

    callback: Listener
    names: frozenset[str] | None


class _Client(AMIClient):
    """The library's client with a bounded connect, no reader timeout and whole writes."""

    def __init__(self, host: str, port: int, connect_timeout: float) -> None:
        super().__init__(address=host, port=port, timeout=None)
        self._connect_timeout = connect_timeout
        self._callbacks: dict[str, Callable[[Response], None]] = {}
        self._callbacks_lock = threading.Lock()

    # Responses go straight to a callback instead of through the library's FutureResponse,
    # which never forgets an action that got no response and calls the deprecated notifyAll.
    def send_action(
        self, action: Action, callback: Callable[[Response], None] | None = None
    ) -> None:
        action_id = str(action.keys.setdefault("ActionID", self.next_action_id()))
        if callback is not None:
            with self._callbacks_lock:
                self._callbacks[action_id] = callback
        try:
            self._fire_on_action(action=action)
            self.send(action)
        except BaseException:
            self.forget(action_id)
            raise

    def forget(self, action_id: str) -> None:
        with self._callbacks_lock:
            self._callbacks.pop(action_id, None)

    def fire_recv_reponse(self, response: Response) -> None:  # sic: the library's name
        self._fire_on_response(response=response)
        if response.status.lower() == "goodbye":
            self.finished.set()
        with self._callbacks_lock:
            callback = self._callbacks.pop(str(response.keys.get("ActionID", "")), None)
        if callback is not None:
            callback(response)

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self._port), self._connect_timeout)
        sock.settimeout(None)  # see the module docstring: a timeout here kills the reader
        self._socket = sock
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self.listen, name="ami-reader", daemon=True)
        self._thread.start()

    def listen(self) -> None:
        try:
            super().listen()
        except Exception as exc:  # e.g. the socket closed before Asterisk's greeting
            log.debug("AMI reader ended: %r", exc)
        finally:
            self.finished.set()

    def fire_recv_pack(self, pack: str) -> None:
        # Debian's Asterisk is built with the test framework, and its TestEvent (sent while a
        # file plays) ends with one CRLF too many: the next message then starts with CRLF,
        # the library no longer sees "Response:" at its start, and the response is dropped.
        pack = pack.lstrip("\r\n")
        if pack:
            super().fire_recv_pack(pack)

    def send(self, pack: object) -> None:
        self._socket.sendall(bytearray(str(pack) + "\r\n", self.encoding))

    @property
    def alive(self) -> bool:
        return (
            self.finished is not None
            and not self.finished.is_set()
            and self._thread is not None
            and self._thread.is_alive()
        )

    def abort(self) -> None:
        if self.finished is not None:
            self.finished.set()
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
            self._socket.close()


class EventQueue:
    """Events collected from the moment it was made, so a test can trigger and then wait
    without missing an event that arrived first."""

    def __init__(self, client: AmiClient, names: Iterable[str] | None = None) -> None:
        self._client = client
        self._cond = threading.Condition()
        self._events: list[AmiEvent] = []
        self._handle = client.add_listener(self._put, *(names or ()))

    def _put(self, event: AmiEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def get(
        self,
        name: str | None = None,
        timeout: float = 5.0,
        where: Callable[[AmiEvent], bool] | None = None,
        **fields: str,
    ) -> AmiEvent:
        """The first collected event with this name and these field values, for which
        ``where`` (if given) is true; it is removed from the queue. Waits up to ``timeout``
        seconds, then raises AmiError."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, ev in enumerate(self._events):
                    if (
                        (name is None or ev.name == name)
                        and ev.matches(**fields)
                        and (where is None or where(ev))
                    ):
                        del self._events[i]
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AmiError(f"no {name or 'event'} {fields or ''} within {timeout} s")
                self._cond.wait(left)

    def collected(self, name: str | None = None) -> list[AmiEvent]:
        """The events collected and not yet taken by ``get`` (a copy)."""
        with self._cond:
            return [ev for ev in self._events if name is None or ev.name == name]

    def close(self) -> None:
        self._client.remove_listener(self._handle)

    def __enter__(self) -> EventQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AmiClient:
    """A self-healing AMI connection: actions with bounded waits, events to listeners."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5038,
        username: str = "",
        secret: str = "",
        *,
        action_timeout: float = 5.0,
        ping_interval: float = 2.0,
        connect_timeout: float = 3.0,
        reconnect_delay: float = 0.5,
        event_mask: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self.action_timeout = action_timeout
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.reconnect_delay = reconnect_delay
        self.event_mask = event_mask
        """AMI event classes this session wants (``Events`` action after every login, e.g.
        "agent" for queue events); None: whatever the user's ``read`` allows. A client that
        needs few events should set it: every event costs a parse here, and a PBX sends
        dozens per call (AGI, dialplan steps, RTCP)."""
        self.reconnects = 0
        self._client: _Client | None = None
        self._up = threading.Event()
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._send_lock = threading.Lock()
        self._listeners: list[ListenerHandle] = []
        self._listeners_lock = threading.Lock()
        self._events: queue.Queue[AmiEvent | None] = queue.Queue()
        self._channels: OrderedDict[str, str] = OrderedDict()
        self._channels_cond = threading.Condition()
        self._ids = itertools.count(1)
        self._watchdog: threading.Thread | None = None
        self._dispatcher: threading.Thread | None = None

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        client = self._client
        return self._up.is_set() and client is not None and client.alive

    def connect(self, timeout: float = 10.0) -> None:
        """Start the watchdog (it logs in and keeps logging in) and wait for the first login."""
        if self._watchdog is None:
            self._closing.clear()
            self._dispatcher = threading.Thread(
                target=self._dispatch_loop, name="ami-events", daemon=True
            )
            self._dispatcher.start()
            self._watchdog = threading.Thread(target=self._watch, name="ami-watchdog", daemon=True)
            self._watchdog.start()
        if not self.wait_connected(timeout):
            raise AmiError(f"could not log in to AMI at {self.host}:{self.port} in {timeout} s")

    def wait_connected(self, timeout: float) -> bool:
        """True once logged in (again), False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected:
                return True
            self._up.wait(min(0.1, max(0.0, deadline - time.monotonic())))
        return self.connected

    def _login(self) -> None:
        client = _Client(self.host, self.port, self.connect_timeout)
        client.add_event_listener(self._on_library_event)
        client.add_listener(on_disconnect=lambda *a, **k: self._wake.set())
        done = threading.Event()
        box: list[Response] = []

        def on_response(resp: Response) -> None:
            box.append(resp)
            done.set()

        try:
            client.login(username=self._username, secret=self._secret, callback=on_response)
        except OSError:
            client.abort()
            raise
        if not done.wait(self.action_timeout) or box[0].is_error():
            client.abort()
            msg = box[0].keys.get("Message", "") if box else "no response"
            raise AmiError(f"AMI login failed: {msg}")
        self._client = client
        self._up.set()
        if self.event_mask is not None:
            try:
                self.action("Events", EventMask=self.event_mask)
            except AmiError as exc:  # the session stays up; it only gets more events
                log.warning("AMI Events %s refused: %s", self.event_mask, exc)

    def _teardown(self) -> None:
        self._up.clear()
        client, self._client = self._client, None
        if client is not None:
            client.abort()

    def _watch(self) -> None:
        """Log in, ping, and log in again whenever the connection is gone."""
        first = True
        last_ping = time.monotonic()
        while not self._closing.is_set():
            if not self.connected:
                self._teardown()
                try:
                    self._login()
                except (OSError, AmiError) as exc:
                    log.debug("AMI login to %s:%s failed: %s", self.host, self.port, exc)
                    # Not self._wake: a dying connection sets it, and a refused login would
                    # then be retried in a tight loop while Asterisk shuts down.
                    self._closing.wait(self.reconnect_delay)
                    continue
                if not first:
                    self.reconnects += 1
                    log.info("AMI reconnected to %s:%s", self.host, self.port)
                first = False
                last_ping = time.monotonic()
            elif time.monotonic() - last_ping >= self.ping_interval:
                last_ping = time.monotonic()
                try:
                    self.action("Ping", timeout=min(self.action_timeout, 5.0))
                except AmiError as exc:
                    log.warning("AMI ping failed (%s); reconnecting", exc)
                    self._teardown()
                    continue
            self._wake.wait(min(self.ping_interval, 0.5))
            self._wake.clear()
        self._teardown()

    def close(self) -> None:
        """Log off, stop the watchdog and the dispatcher."""
        self._closing.set()
        client = self._client
        if client is not None and self.connected:
            try:
                with self._send_lock:
                    client.send_action(Action("Logoff"))
            except OSError:
                pass
        self._wake.set()
        if self._watchdog is not None:
            self._watchdog.join(5)
            self._watchdog = None
        self._teardown()
        self._events.put(None)
        if self._dispatcher is not None:
            self._dispatcher.join(5)
            self._dispatcher = None

    def __enter__(self) -> AmiClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ actions
    def action(
        self,
        name: str,
        *,
        variables: Mapping[str, object] | None = None,
        timeout: float | None = None,
        **keys: object,
    ) -> dict[str, str]:
        """Send one action and return its response's fields; an Error response raises."""
        client = self._client
        if client is None or not self.connected:
            raise AmiError(f"{name}: AMI is not connected")
        act = Action(name, {k: str(v) for k, v in keys.items()})
        act.variables = {k: str(v) for k, v in (variables or {}).items()}
        act.keys.setdefault("ActionID", f"ivr124-{next(self._ids)}")
        done = threading.Event()
        box: list[Response] = []

        def on_response(resp: Response) -> None:
            box.append(resp)
            done.set()

        try:
            with self._send_lock:
                client.send_action(act, callback=on_response)
        except OSError as exc:
            self._wake.set()
            raise AmiError(f"{name}: {exc}") from exc
        wait = self.action_timeout if timeout is None else timeout
        if not done.wait(wait):
            client.forget(act.keys["ActionID"])
            raise AmiError(f"{name}: no response within {wait} s")
        resp = box[0]
        fields = {k: str(v) for k, v in resp.keys.items()}
        if resp.is_error():
            raise AmiError(f"{name}: {fields.get('Message', 'error')}")
        return fields

    def originate_local(
        self,
        caller_context: str,
        ivr_context: str,
        exten: str,
        variables: Mapping[str, object] | None = None,
        *,
        caller_exten: str = "s",
        priority: int = 1,
        timeout_ms: int = 30_000,
        caller_id: str | None = None,
    ) -> Originated:
        """Start a call between two dialplan contexts over a Local channel (asynchronously).

        The ;2 leg runs ``caller_exten@caller_context`` (the "caller"; ``variables`` are set
        there) and once it answers, the ;1 leg runs ``exten@ivr_context`` (the IVR).
        """
        uid = f"ivr124-{uuid.uuid4().hex[:16]}"
        keys: dict[str, object] = {
            "Channel": f"Local/{caller_exten}@{caller_context}/n",
            "Context": ivr_context,
            "Exten": exten,
            "Priority": priority,
            "Timeout": timeout_ms,
            "Async": "true",
            "ChannelId": f"{uid}-1",
            "OtherChannelId": f"{uid}-2",
        }
        if caller_id:
            keys["CallerID"] = caller_id
        fields = self.action("Originate", variables=variables, **keys)
        return Originated(fields.get("ActionID", ""), f"{uid}-1", f"{uid}-2")

    def play_dtmf(self, channel: str, digit: str, duration_ms: int = 200) -> None:
        """Press one key on ``channel``: for a Local call the caller's ;2 leg, whence it
        crosses to the IVR's ;1 leg as a caller's key would. Returns after ``duration_ms``."""
        if len(digit) != 1:
            raise ValueError("one digit at a time")
        self.action("PlayDTMF", Channel=channel, Digit=digit, Duration=duration_ms)

    def hangup(self, channel: str) -> None:
        self.action("Hangup", Channel=channel)

    def action_list(
        self, name: str, complete: str, *, timeout: float | None = None, **keys: object
    ) -> list[AmiEvent]:
        """Send an action that answers with a list of events (QueueStatus, CoreShowChannels…)
        and return them, up to the ``complete`` event that ends the list (not included)."""
        action_id = f"ivr124-{next(self._ids)}"
        wait = self.action_timeout if timeout is None else timeout
        with self.events() as events:
            self.action(name, ActionID=action_id, timeout=wait, **keys)
            events.get(complete, timeout=wait, ActionID=action_id)
            return [e for e in events.collected() if e.get("ActionID") == action_id]

    # Queue members, for the agents' desk: interface is e.g. PJSIP/agent101.
    def queue_add(
        self, queue: str, interface: str, member_name: str = "", *, paused: bool = False
    ) -> None:
        """Log an agent in (AMI QueueAdd): a dynamic member, kept across restarts."""
        keys: dict[str, object] = {"Queue": queue, "Interface": interface}
        if member_name:
            keys["MemberName"] = member_name
        self.action("QueueAdd", Paused="true" if paused else "false", **keys)

    def queue_remove(self, queue: str, interface: str) -> None:
        """Log an agent out (AMI QueueRemove)."""
        self.action("QueueRemove", Queue=queue, Interface=interface)

    def queue_pause(
        self, queue: str | None, interface: str, paused: bool = True, reason: str = ""
    ) -> None:
        """Pause (or unpause) an agent in one queue, or in every queue when ``queue`` is None."""
        keys: dict[str, object] = {"Interface": interface, "Paused": str(paused).lower()}
        if queue:
            keys["Queue"] = queue
        if reason:
            keys["Reason"] = reason
        self.action("QueuePause", **keys)

    def channel_name(self, uniqueid: str, timeout: float = 5.0) -> str:
        """The channel name of a uniqueid, as seen in its Newchannel event."""
        deadline = time.monotonic() + timeout
        with self._channels_cond:
            while uniqueid not in self._channels:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AmiError(f"no channel with uniqueid {uniqueid} within {timeout} s")
                self._channels_cond.wait(left)
            return self._channels[uniqueid]

    # ------------------------------------------------------------------ events
    def add_listener(self, callback: Listener, *event_names: str) -> ListenerHandle:
        """Call ``callback(event)`` for these events (all events when none are named).

        Callbacks run one at a time on the dispatcher thread, in arrival order; they may
        call actions. An exception in one is logged and does not stop the others.
        """
        handle = ListenerHandle(callback, frozenset(event_names) or None)
        with self._listeners_lock:
            self._listeners.append(handle)
        return handle

    def remove_listener(self, handle: ListenerHandle) -> None:
        with self._listeners_lock:
            if handle in self._listeners:
                self._listeners.remove(handle)

    def events(self, *event_names: str) -> EventQueue:
        """Collect events from now on (use as a context manager); see EventQueue.get."""
        return EventQueue(self, event_names)

    def _on_library_event(self, event: Event, source: object = None, **_: object) -> None:
        """Runs on the library's reader thread: record, hand over, return at once."""
        try:
            ev = AmiEvent(event.name, {k: v for k, v in event.keys.items()})
            if ev.name == "Newchannel" and ev.get("Uniqueid"):
                with self._channels_cond:
                    self._channels[ev.get("Uniqueid")] = ev.get("Channel")
                    while len(self._channels) > 10_000:
                        self._channels.popitem(last=False)
                    self._channels_cond.notify_all()
            self._events.put(ev)
        except Exception:
            log.exception("bad AMI event")

    def _dispatch_loop(self) -> None:
        while True:
            ev = self._events.get()
            if ev is None:
                return
            with self._listeners_lock:
                handles = [h for h in self._listeners if h.names is None or ev.name in h.names]
            for h in handles:
                try:
                    h.callback(ev)
                except Exception:
                    log.exception("AMI listener failed on %s", ev.name)
