"""A real Asterisk (the test PBX) for the whole session, on ports nobody else uses.

* ``pbx`` — a started ``TestPbx`` (the root is built first if missing: about 20 s, once).
* ``ami`` — one ``AmiClient`` logged in to it for the session (it must survive the restart test).
* ``agi`` — a ``FastAgiServer`` on the PBX's FastAGI port for one test: ``agi.serve(handler)``,
  then ``agi.finished()`` returns ``(call, error)`` once the handler returned and the socket
  was closed.
* ``dial`` — originate a Local call from a ``test-caller`` extension into ``ivr-124``.

Skipped only where a chroot cannot be made (not root); CI runs as root.
"""

from __future__ import annotations

import contextlib
import queue
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from needs import need_pbx

from ivr.devtools.testpbx import (
    DEFAULT_ROOT,
    TestPbx,
    free_port,
    free_tcp_udp_port,
)
from ivr.telephony.agi import AgiCall, FastAgiServer
from ivr.telephony.ami import AmiClient, Originated


@pytest.fixture(scope="session")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestPbx]:
    need_pbx()
    rtp_base = random.randrange(20000, 29000, 100)
    pbx = TestPbx(
        DEFAULT_ROOT,
        tmp_path_factory.mktemp("pbx"),
        # Like the IVR's storage/recordings: outside the work dir, same path inside the root.
        shared_dirs=[tmp_path_factory.mktemp("recordings")],
        ami_port=free_port(),
        sip_port=free_tcp_udp_port(),
        agi_port=free_port(),
        rtp_ports=(rtp_base, rtp_base + 99),
    )
    pbx.ensure_root()
    pbx.start()
    try:
        yield pbx
    finally:
        pbx.stop()


@pytest.fixture(scope="session")
def ami(pbx: TestPbx) -> Iterator[AmiClient]:
    client = AmiClient("127.0.0.1", pbx.ami_port, pbx.ami_user, pbx.ami_secret, ping_interval=1.0)
    client.connect(timeout=10)
    try:
        yield client
    finally:
        client.close()


class AgiHarness:
    """The FastAGI server of one test, with the outcome of each call it handled."""

    def __init__(self, port: int) -> None:
        self._handler: Callable[[AgiCall], None] = lambda call: None
        self._done: queue.Queue[tuple[AgiCall | None, BaseException | None]] = queue.Queue()
        self.server = FastAgiServer(
            self._handle,
            port=port,
            on_finished=lambda call, error: self._done.put((call, error)),
        )

    def _handle(self, call: AgiCall) -> None:
        """Run the test's handler; one that returns without deciding ends the call like the IVR
        does (the dialplan sends a caller nobody decided about to the agents' queue)."""
        self._handler(call)
        if not call.hung_up and call.get_variable("IVR_ACTION") in (None, ""):
            call.set_variable("IVR_ACTION", "hangup")

    def serve(self, handler: Callable[[AgiCall], None], strict_prompts: bool = False) -> None:
        self._handler = handler
        self.server.strict_prompts = strict_prompts
        self.server.serve_in_thread()

    def finished(self, timeout: float = 15.0) -> tuple[AgiCall | None, BaseException | None]:
        """The next call that ended: the handler returned (or raised) and the socket closed."""
        try:
            return self._done.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no FastAGI call ended within {timeout} s") from None


@pytest.fixture
def agi(pbx: TestPbx) -> Iterator[AgiHarness]:
    harness = AgiHarness(pbx.agi_port)
    try:
        yield harness
    finally:
        harness.server.shutdown(hang_up_calls=True)


@dataclass
class Dialled:
    """A call from a test-caller extension into ivr-124 (see dialplans/test-pbx)."""

    originated: Originated
    ami: AmiClient

    @property
    def caller_channel(self) -> str:
        """The ;2 leg: where keys are pressed and where the caller hangs up."""
        return self.ami.channel_name(self.originated.other_uniqueid)

    def press(self, keys: str) -> None:
        channel = self.caller_channel
        for key in keys:
            self.ami.play_dtmf(channel, key)

    def hang_up(self) -> None:
        self.ami.hangup(self.caller_channel)


@pytest.fixture
def dial(ami: AmiClient) -> Iterator[Callable[..., Dialled]]:
    calls: list[Dialled] = []

    def _dial(caller: str = "s", exten: str = "124", **variables: str) -> Dialled:
        o = ami.originate_local("test-caller", "ivr-124", exten, variables, caller_exten=caller)
        calls.append(Dialled(o, ami))
        return calls[-1]

    yield _dial
    for call in calls:  # leave no caller waiting for the next test
        with contextlib.suppress(Exception):
            ami.hangup(ami.channel_name(call.originated.other_uniqueid, timeout=0.1))
