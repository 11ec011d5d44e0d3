"""What a caller waiting for an agent hears on the real Asterisk, in Persian: the position, the
expected wait, the callback offer and music between them — read from the sounds Asterisk played
to the caller's channel (its verbose log: "Playing 'queue-thereare.wav' (language 'fa')"; an
English fallback would be a .gsm file of the stock set).

Callers dial 124 through the production dialplan and the IVR sends them to the queue (as a
caller pressing 0); agents are Local channels that answer and stay, added with AMI QueueAdd.
Hold times are app_queue's own estimate: the wait of the last answered call (the first after a
QueueReset is taken as is), minus how long this caller has waited, rounded to minutes. To make
a caller "wait" 25 minutes in a test, this module runs its own PBX under libfaketime and moves
its wall clock forward while a caller waits (Asterisk's audio timing, on the monotonic clock,
is untouched).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator

import pytest
from needs import need_pbx
from queue_helpers import (
    TEST_QUEUE,
    Caller,
    agent_interface,
    call_into_queue,
    ivr_on,
    music_started,
    played,
    wait_played,
)

from ivr.devtools.testpbx import (
    DEFAULT_ROOT,
    TestPbx,
    free_port,
    free_tcp_udp_port,
)
from ivr.prompts import install_asterisk
from ivr.telephony.ami import AmiClient


@pytest.fixture(scope="module")
def clock_pbx(tmp_path_factory: pytest.TempPathFactory, prompts_built) -> Iterator[TestPbx]:
    need_pbx()
    rtp_base = random.randrange(30000, 39000, 100)
    pbx = TestPbx(
        DEFAULT_ROOT,
        tmp_path_factory.mktemp("clock-pbx"),
        ami_port=free_port(),
        sip_port=free_tcp_udp_port(),
        agi_port=free_port(),
        rtp_ports=(rtp_base, rtp_base + 99),
        movable_clock=True,
    )
    pbx.ensure_root()
    install_asterisk(prompts_built, pbx.sounds_dir)  # `ivr prompts install --asterisk DIR`
    pbx.start()
    try:
        yield pbx
    finally:
        pbx.stop()


@pytest.fixture(scope="module")
def clock_ami(clock_pbx: TestPbx) -> Iterator[AmiClient]:
    client = AmiClient("127.0.0.1", clock_pbx.ami_port, clock_pbx.ami_user, clock_pbx.ami_secret)
    client.connect(timeout=10)
    try:
        yield client
    finally:
        client.close()


class Line:
    """The test's queue: callers and agents it added, all gone again at the end."""

    def __init__(self, pbx: TestPbx, ami: AmiClient) -> None:
        self.pbx, self.ami = pbx, ami
        self.callers: list[Caller] = []
        self.agents: list[str] = []
        self.events = ami.events("QueueCallerJoin", "AgentConnect", "QueueMemberAdded")

    def agent(self, name: str) -> None:
        interface = agent_interface(name)
        self.ami.queue_add(TEST_QUEUE, interface, name)
        self.agents.append(interface)

    def caller(self, number: str = "09121234567") -> tuple[Caller, int]:
        caller, joined = call_into_queue(self.ami, self.events, number)
        assert joined is not None
        self.callers.append(caller)
        return caller, int(joined["Position"])

    def connected(self, caller: Caller, timeout: float = 15) -> None:
        self.events.get("AgentConnect", timeout=timeout, Uniqueid=caller.ivr_uniqueid)

    def close(self) -> None:
        for c in self.callers:
            c.hang_up()
        for interface in self.agents:
            with contextlib.suppress(Exception):
                self.ami.queue_remove(TEST_QUEUE, interface)
        self.events.close()


@pytest.fixture
def line(clock_pbx: TestPbx, clock_ami: AmiClient) -> Iterator[Line]:
    clock_ami.action("QueueReset", Queue=TEST_QUEUE)  # holdtime 0, no answered calls
    with ivr_on(clock_pbx):
        busy = Line(clock_pbx, clock_ami)
        try:
            yield busy
        finally:
            busy.close()


def names(sounds) -> list[str]:
    return [s.name for s in sounds]


def test_positions_are_announced_in_persian(line: Line, clock_pbx: TestPbx):
    line.agent("a1")
    first, _ = line.caller()
    line.connected(first)  # the only agent is now busy: everyone after this waits
    heard = {}
    for expected in range(1, 13):
        caller, position = line.caller(f"0912000{expected:04d}")
        assert position == expected
        heard[position] = caller
    for position, caller in heard.items():
        sounds = wait_played(clock_pbx, caller.ivr_leg, "queue-thankyou")
        entry = names(sounds)[names(sounds).index("queue-thankyou") - 4 :]
        if position == 1:
            assert names(sounds)[:2] == ["queue-youarenext", "queue-thankyou"]
            continue
        # «شما در صف، نفر شماره‌ی» <n> «هستید.» «از شکیبایی شما سپاسگزاریم.»
        assert names(sounds)[:4] == [
            "queue-thereare",
            f"digits/{position}",
            "queue-callswaiting",
            "queue-thankyou",
        ], (position, entry)
        # Persian recordings (wav from the catalogue), not the stock English gsm files.
        assert {(s.format, s.language) for s in sounds[:4]} == {("slin", "fa")}
    # Music on hold between announcements, from the stock default class.
    assert music_started(clock_pbx, heard[12].ivr_leg) >= 1


@pytest.mark.parametrize(
    ("minutes", "number", "unit"),
    [
        (1, ["digits/1"], "queue-minute"),
        (3, ["digits/3"], "queue-minutes"),
        (25, ["digits/20-o", "digits/5"], "queue-minutes"),
    ],
)
def test_expected_wait_is_announced_in_persian(
    line: Line, clock_pbx: TestPbx, minutes: int, number: list[str], unit: str
):
    line.agent(f"busy{minutes}")
    first, _ = line.caller()
    line.connected(first)
    waiting, _ = line.caller("09120000001")
    # The waiting caller "waits" `minutes` minutes, then a second agent logs in and answers:
    # the first answered wait after the reset becomes the queue's hold time as it is.
    clock_pbx.move_clock(minutes * 60)
    time.sleep(1.5)  # libfaketime re-reads the offset every second
    line.agent(f"late{minutes}")
    line.connected(waiting)
    # Both agents busy now: the next callers wait, the second one behind the first.
    line.caller("09120000002")
    second, position = line.caller("09120000003")
    assert position == 2
    sounds = wait_played(clock_pbx, second.ivr_leg, "queue-thankyou")
    # «شما در صف، نفر شماره‌ی دو هستید. زمان تقریبی انتظار <minutes> دقیقه. …»
    assert names(sounds)[: 6 + len(number)] == [
        "queue-thereare",
        "digits/2",
        "queue-callswaiting",
        "queue-holdtime",
        *number,
        unit,
        "queue-thankyou",
    ]
    assert {(s.format, s.language) for s in sounds} == {("slin", "fa")}


def test_the_callback_offer_comes_with_the_second_announcement(line: Line, clock_pbx: TestPbx):
    line.agent("offer")
    first, _ = line.caller()
    line.connected(first)
    waiting, _ = line.caller("09120000009")
    wait_played(clock_pbx, waiting.ivr_leg, "queue-thankyou")
    assert "queue-periodic-announce" not in names(played(clock_pbx, waiting.ivr_leg))
    clock_pbx.move_clock(31)  # 30 s later: the position again, and the offer
    wait_played(clock_pbx, waiting.ivr_leg, "queue-periodic-announce")
    sounds = wait_played(clock_pbx, waiting.ivr_leg, "queue-thankyou", count=2)
    # The two timers fall due in the same second; app_queue checks them a second apart, so
    # the offer may come just before or just after the second position announcement.
    assert sorted(names(sounds)) == sorted(
        ["queue-youarenext", "queue-thankyou"] * 2 + ["queue-periodic-announce"]
    )
    assert {(s.format, s.language) for s in sounds} == {("slin", "fa")}
