"""Shared by the queue tests: callers sent to a queue through the production dialplan, the IVR's
side of it (a FastAGI server that records every AGI call and its resume marker), and what
Asterisk played to a channel, read from its verbose log."""

from __future__ import annotations

import contextlib
import queue as queues
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ivr.devtools.testpbx import TestPbx
from ivr.flow.resume import QueueReturn
from ivr.telephony.agi import AgiCall, FastAgiServer
from ivr.telephony.ami import AmiClient, AmiEvent
from ivr.telephony.asterisk import queue_return

TEST_QUEUE = "124-test"
"""dialplans/test-pbx/queues.conf: the production options, no static member."""


def agent_interface(name: str) -> str:
    """An agent who answers and stays on the line until the caller leaves (one per name)."""
    return f"Local/stay-{name}@test-agents/n"


_PLAYING = re.compile(
    r"<(?P<channel>[^>]+)> Playing '(?P<name>[^']+)\.(?P<format>\w+)'"
    r" \(language '(?P<lang>[^']*)'\)"
)


@dataclass(frozen=True)
class Played:
    name: str
    format: str
    language: str


def played(pbx: TestPbx, channel: str) -> list[Played]:
    """Every sound Asterisk started playing to ``channel``, in order (its "Playing" lines)."""
    out = []
    for line in pbx.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _PLAYING.search(line)
        if m and m["channel"] == channel:
            out.append(Played(m["name"], m["format"], m["lang"]))
    return out


def wait_played(
    pbx: TestPbx, channel: str, last: str, count: int = 1, timeout: float = 20.0
) -> list[Played]:
    """The sounds played to ``channel`` once ``last`` has been played ``count`` times."""
    deadline = time.monotonic() + timeout
    while True:
        sounds = played(pbx, channel)
        if sum(1 for s in sounds if s.name == last) >= count:
            return sounds
        if time.monotonic() > deadline:
            raise AssertionError(f"{channel} never heard {last} x{count}; heard {sounds}")
        time.sleep(0.1)


def music_started(pbx: TestPbx, channel: str) -> int:
    """How often music on hold started on ``channel`` (res_musiconhold's verbose line)."""
    text = pbx.log_path.read_text(encoding="utf-8", errors="replace")
    return len(
        re.findall(
            rf"Started music on hold, class 'default', on channel '{re.escape(channel)}'", text
        )
    )


@dataclass
class Ivr:
    """The IVR's side: a new call is sent to ``queue`` (as a caller pressing 0 would be); a
    call the dialplan hands back from the queue is recorded with its marker and ended."""

    server: FastAgiServer
    queue: str = TEST_QUEUE
    returns: queues.Queue[tuple[str, QueueReturn | None, str]] = field(default_factory=queues.Queue)

    def handle(self, call: AgiCall) -> None:
        marker = queue_return(call.script)
        if marker is None:
            call.set_variable("IVR_ACTION", "transfer")
            call.set_variable("IVR_QUEUE", self.queue)
            return
        self.returns.put((call.uniqueid, marker, call.script))
        call.set_variable("IVR_ACTION", "hangup")

    def next_return(self, timeout: float = 15.0) -> tuple[str, QueueReturn | None, str]:
        """(uniqueid, marker, AGI path) of the next call handed back from the queue."""
        try:
            return self.returns.get(timeout=timeout)
        except queues.Empty:
            raise AssertionError(f"no call came back to the IVR within {timeout} s") from None


@contextlib.contextmanager
def ivr_on(pbx: TestPbx, queue_name: str = TEST_QUEUE) -> Iterator[Ivr]:
    ivr = Ivr(FastAgiServer(lambda call: ivr.handle(call), port=pbx.agi_port), queue_name)
    ivr.server.serve_in_thread()
    try:
        yield ivr
    finally:
        ivr.server.shutdown(hang_up_calls=True)


@dataclass
class Caller:
    """A caller dialled into ivr-124: ``ivr_leg`` waits in the queue, ``phone`` presses keys."""

    ami: AmiClient
    ivr_uniqueid: str
    phone_uniqueid: str

    @property
    def ivr_leg(self) -> str:
        return self.ami.channel_name(self.ivr_uniqueid)

    @property
    def phone(self) -> str:
        return self.ami.channel_name(self.phone_uniqueid)

    def press(self, key: str) -> None:
        self.ami.play_dtmf(self.phone, key)

    def hang_up(self) -> None:
        with contextlib.suppress(Exception):
            self.ami.hangup(self.ami.channel_name(self.phone_uniqueid, timeout=0.5))


def call_into_queue(
    ami: AmiClient, events, caller_id: str = "09121234567", *, joins: bool = True
) -> tuple[Caller, AmiEvent | None]:
    """Dial 124 (the IVR sends the caller to the queue); wait for the queue join if ``joins``.

    ``events`` must collect QueueCallerJoin. The caller stays on the line for two hours.
    """
    o = ami.originate_local(
        "test-caller", "ivr-124", "124", {"TEST_WAIT": "7200"}, caller_id=caller_id
    )
    caller = Caller(ami, o.uniqueid, o.other_uniqueid)
    joined = events.get("QueueCallerJoin", timeout=15, Uniqueid=o.uniqueid) if joins else None
    return caller, joined


def log_size(pbx: TestPbx) -> int:
    return pbx.log_path.stat().st_size if Path(pbx.log_path).exists() else 0
