"""The whole hotline through a real Asterisk: `ivr serve` as a subprocess is the FastAGI server the
test PBX's production dialplan (context ``ivr-124``) calls, exactly as on a real PBX.

Callers are Local channels originated over AMI (the ``;2`` leg is the caller; keys are AMI
PlayDTMF on it, pressed when an ``AGIExecStart`` event shows the IVR waiting: GET DATA, STREAM
FILE with escape digits, RECORD FILE) and SIP calls from sipp with RFC 4733 keys and RTP
speech. What a caller heard is read from the same events (the sound files streamed); what came
of a call from the controller's own database and the ``ivr`` CLI.

The controller records its callers in a storage directory under the PBX's work directory, which
is mounted into Asterisk's root at the same path, so RECORD FILE writes where the IVR reads.
The prompts are the real ones (espeak-ng, several seconds each): callers interrupt them with
keys wherever the menus allow, so the module takes about 90 s, most of it the recording's
instructions (which a key cannot skip) and the 5 s silences the retry test needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from ivr.devtools.sipp import read_pcm, sipp_command, write_rtp_pcap
from ivr.devtools.testpbx import TestPbx, free_port
from ivr.prompts import audio_path, install_asterisk
from ivr.services import build_services
from ivr.settings import Settings
from ivr.telephony.ami import AmiClient, AmiError, AmiEvent, Originated
from ivr.tickets.db import upgrade
from ivr.tickets.service import TicketDraft

if TYPE_CHECKING:
    from conftest import SecondProvince

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SCENARIO = Path(__file__).parent / "sipp" / "new_request.xml"
CALLER = "09121234567"
"""A valid mobile caller ID: the IVR offers it as the callback number."""
OTHER_CALLER = "09351112233"


# --- the controller ------------------------------------------------------------------------------


def _ivr() -> list[str]:
    beside = Path(sys.executable).with_name("ivr")
    return [str(beside)] if beside.is_file() else [sys.executable, "-m", "ivr.cli"]


@dataclass
class Controller:
    """``ivr serve --no-scheduler`` on the PBX's FastAGI port, with its own storage and AMI."""

    storage: Path
    env: dict[str, str]
    agi_port: int
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.storage.parent / f"{self.storage.name}-serve.log"

    @property
    def db_path(self) -> Path:
        return self.storage / "ivr.db"

    @property
    def recordings(self) -> Path:
        return self.storage / "recordings"

    def start(self, timeout: float = 30.0) -> None:
        web_port = free_port()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *_ivr(),
                    "serve",
                    "--no-scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(web_port),
                ],
                env=self.env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).is_success:
                    return  # the FastAGI server was started before the web app
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"`ivr serve` did not start:\n{self.output()}")

    def kill(self) -> None:
        """What a crash looks like to Asterisk: the process and its sockets vanish at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        except FileNotFoundError:
            return ""

    def ivr(self, *args: str) -> str:
        """The ``ivr`` CLI on the controller's storage; its stdout."""
        done = subprocess.run(
            [*_ivr(), *args], env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, f"ivr {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def sql(self, query: str, *params: object) -> list[sqlite3.Row]:
        connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        connection.row_factory = sqlite3.Row
        try:
            return connection.execute(query, params).fetchall()
        finally:
            connection.close()

    def call_row(self, uniqueid: str, until: Callable[[sqlite3.Row], bool] | None = None,
                 timeout: float = 5.0) -> sqlite3.Row:  # fmt: skip
        """The call's record, once ``until`` holds for it (the writes trail the call a little)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.sql("SELECT * FROM call WHERE external_id = ?", uniqueid)
            if rows and (until is None or until(rows[0])):
                return rows[0]
            if time.monotonic() > deadline:
                found = dict(rows[0]) if rows else None
                raise AssertionError(
                    f"call {uniqueid}: not as expected within {timeout} s: {found}"
                )
            time.sleep(0.05)

    def agi_connections(self) -> int:
        """Established FastAGI connections, from the kernel's table (/proc/net/tcp)."""
        hex_port = f"{self.agi_port:04X}"
        count = 0
        with open("/proc/net/tcp", encoding="ascii") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1].endswith(f":{hex_port}") and fields[3] == "01":  # ESTABLISHED
                    count += 1
        return count

    def wait_idle(self, timeout: float = 5.0) -> None:
        """No call's AGI socket is left open (every handler thread returned and closed it)."""
        deadline = time.monotonic() + timeout
        while self.agi_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.agi_connections() == 0, "a FastAGI connection stayed open"


@pytest.fixture(scope="module")
def controller(pbx: TestPbx, second_province: SecondProvince) -> Iterator[Controller]:
    """Serves Qom (its own province) and, for calls to 086124, a second province from a
    provinces folder of its own, with that province's place prompts installed too."""
    prompts = second_province.prompts_dir
    install_asterisk(prompts, pbx.sounds_dir)  # `ivr prompts install --asterisk DIR`
    storage = pbx.workdir / "ivr-flow"  # inside the work dir: mounted in the root, same path
    storage.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(
        IVR_STORAGE_DIR=str(storage),
        IVR_PROMPTS_DIR=str(prompts),
        IVR_GENERATED_PROMPTS_DIR=str(prompts / "generated"),
        IVR_PROVINCES_DIR=str(second_province.provinces_dir),
        IVR_DATABASE_URL="",
        IVR_AGI_HOST="127.0.0.1",
        IVR_AGI_PORT=str(pbx.agi_port),
        IVR_AMI_PORT=str(pbx.ami_port),
        IVR_AMI_USERNAME=pbx.ami_user,
        IVR_AMI_SECRET=pbx.ami_secret,
        IVR_AGENTS_ALWAYS_OPEN="true",  # the path must not depend on the hour the suite runs at
        PYTHONUNBUFFERED="1",
    )
    running = Controller(storage, env, pbx.agi_port)
    upgrade(f"sqlite:///{running.db_path}")
    running.start()
    try:
        yield running
    finally:
        died = running.process is not None and running.process.poll() is not None
        running.stop()
        if died:
            raise RuntimeError(f"`ivr serve` died during the tests:\n{running.output()}")


@pytest.fixture
def logs(controller: Controller, pbx: TestPbx) -> Iterator[None]:
    """The controller's and Asterisk's logs, printed after the test: pytest shows them when
    it failed."""
    yield
    print(f"--- ivr serve ---\n{controller.output()}")
    with contextlib.suppress(OSError):
        print(f"--- asterisk ---\n{pbx.log_path.read_text(errors='replace')[-4000:]}")


# --- callers -------------------------------------------------------------------------------------


def _played(command: str) -> str | None:
    """The sound a STREAM FILE / GET DATA plays, as its ivr124 stem (None for other sounds)."""
    words = command.split()
    if command.startswith(("STREAM FILE ", "GET DATA ")) and len(words) > 2:
        name = words[2]
        return name.removeprefix("ivr124/") if name.startswith("ivr124/") else None
    return None


def _waits_for_keys(command: str) -> bool:
    """Whether a key pressed now reaches the IVR (a STREAM FILE without escape digits drops it)."""
    if command.startswith(("GET DATA ", "RECORD FILE ", "WAIT FOR DIGIT ")):
        return True
    return command.startswith("STREAM FILE ") and '"0123456789*#"' in command


class AgiLog:
    """Every AGIExecStart the PBX reports, per channel uniqueid, from the moment it was made."""

    def __init__(self, ami: AmiClient) -> None:
        self._ami = ami
        self._cond = threading.Condition()
        self._commands: dict[str, list[str]] = {}
        self._channels: dict[str, str] = {}
        self._handle = ami.add_listener(self._put, "AGIExecStart")

    def _put(self, event: AmiEvent) -> None:
        with self._cond:
            self._commands.setdefault(event.get("Uniqueid"), []).append(event.get("Command"))
            self._channels[event.get("Uniqueid")] = event.get("Channel")
            self._cond.notify_all()

    def commands(self, uniqueid: str) -> list[str]:
        with self._cond:
            return list(self._commands.get(uniqueid, []))

    def wait(self, uniqueid: str, start: int, match: Callable[[str], bool], timeout: float) -> int:
        """Index of the first command at or after ``start`` that ``match``es; waits for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = self._commands.get(uniqueid, [])
                for i in range(start, len(seen)):
                    if match(seen[i]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the IVR did not get there in {timeout} s; it ran {seen}")
                self._cond.wait(left)

    def uniqueids(self, channel_prefix: str) -> list[str]:
        with self._cond:
            return [u for u, ch in self._channels.items() if ch.startswith(channel_prefix)]

    def close(self) -> None:
        self._ami.remove_listener(self._handle)


@pytest.fixture(scope="module")
def agi_log(ami: AmiClient) -> Iterator[AgiLog]:
    log = AgiLog(ami)
    yield log
    log.close()


@dataclass
class Caller:
    """One Local call into ivr-124; it answers the IVR as a person would, step by step."""

    ami: AmiClient
    log: AgiLog
    originated: Originated
    cursor: int = 0

    @property
    def uniqueid(self) -> str:
        """The IVR's leg: the AGI's uniqueid and the call record's external_id."""
        return self.originated.uniqueid

    @property
    def channel(self) -> str:
        return self.ami.channel_name(self.originated.other_uniqueid)

    def hears(self, stem: str, timeout: float = 20.0) -> str:
        """Wait until the IVR starts playing prompt ``stem``; returns the AGI command."""
        return self._until(lambda c: _played(c) == stem, timeout)

    def until_recording(self, timeout: float = 20.0) -> str:
        return self._until(lambda c: c.startswith("RECORD FILE "), timeout)

    def _until(self, match: Callable[[str], bool], timeout: float) -> str:
        index = self.log.wait(self.uniqueid, self.cursor, match, timeout)
        self.cursor = index + 1
        return self.log.commands(self.uniqueid)[index]

    def answer(self, stem: str, keys: str, timeout: float = 20.0) -> None:
        """When prompt ``stem`` starts, press ``keys`` (the first one interrupts it)."""
        command = self.hears(stem, timeout)
        assert _waits_for_keys(command), f"keys pressed during {command!r} would be lost"
        self.press(keys)

    def press(self, keys: str) -> None:
        channel = self.channel
        for key in keys:
            self.ami.play_dtmf(channel, key, duration_ms=120)

    def hang_up(self) -> None:
        self.ami.hangup(self.channel)

    def heard(self) -> list[str]:
        """Every ivr124 prompt streamed to this caller, in order."""
        return [s for c in self.log.commands(self.uniqueid) if (s := _played(c)) is not None]


@pytest.fixture
def call(
    ami: AmiClient, agi_log: AgiLog, controller: Controller, logs: None
) -> Iterator[Callable[..., Caller]]:
    """``call(caller_id=..., exten='s'|'talk'|'quiet', to='124')``: a caller dials ``to``
    (the extension the call enters ivr-124 at)."""
    made: list[Caller] = []

    def dial(caller_id: str = CALLER, exten: str = "s", to: str = "124") -> Caller:
        originated = ami.originate_local(
            "test-caller", "ivr-124", to, {}, caller_exten=exten, caller_id=caller_id
        )
        made.append(Caller(ami, agi_log, originated))
        return made[-1]

    yield dial
    for caller in made:  # nobody is left on the line for the next test
        with contextlib.suppress(AmiError):
            ami.hangup(ami.channel_name(caller.originated.other_uniqueid, timeout=0.1))


def _wav(path: Path) -> tuple[int, int, int, float]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        return rate, w.getnchannels(), w.getsampwidth(), w.getnframes() / rate


def _ticket_of(controller: Controller, uniqueid: str) -> dict[str, Any]:
    """The ticket a call filed, as ``ivr tickets show --json`` prints it."""
    row = controller.call_row(uniqueid, lambda r: r["outcome"] is not None)
    assert row["outcome"] == "ticket", dict(row)
    tracking = controller.sql("SELECT tracking FROM ticket WHERE id = ?", row["ticket_id"])[0][0]
    return json.loads(controller.ivr("tickets", "show", tracking, "--json"))


# --- the tests -----------------------------------------------------------------------------------


def test_new_requests_to_the_end_over_a_local_channel_and_over_sip_at_once(
    call, controller: Controller, pbx: TestPbx, agi_log: AgiLog, tmp_path: Path
):
    """Two callers at the same time, each with a real recording made by Asterisk: one on a
    Local channel pressing keys when the IVR asks, one SIP call from sipp (RFC 4733 keys, RTP
    speech) keeping to its own timing."""
    speech = audio_path(PROJECT_ROOT / "prompts", "describe.instructions")
    assert speech is not None
    write_rtp_pcap(tmp_path / "speech.pcap", read_pcm(speech, 3.5))
    before = set(agi_log.uniqueids("PJSIP/sipp-"))
    sipp = subprocess.Popen(
        sipp_command(SCENARIO, pbx.sip_port, timeout_s=60),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        caller = call(exten="talk")  # the caller's side plays speech all the time
        caller.answer("greeting", "1")  # new request
        caller.answer("category-menu", "1")  # industry
        caller.answer("place-intro", "1")  # the first town
        caller.hears("describe-instructions")
        caller.until_recording()
        time.sleep(3.0)  # the beep, then the caller talks
        caller.press("#")
        caller.answer("describe-review", "2")  # confirm the recording
        caller.answer("callback-your_number", "1")  # call me back on this number
        caller.answer("nid-enter", "#")  # no national ID
        caller.answer("summary-intro", "1")  # register
        caller.hears("registered-done")
        caller.hears("registered-repeat")  # the tracking number, said twice
        caller.hang_up()
        output, _ = sipp.communicate(timeout=60)
    finally:
        if sipp.poll() is None:
            sipp.kill()
            sipp.wait()
    errors = "".join(p.read_text() for p in tmp_path.glob("*_errors.log"))
    assert sipp.returncode == 0, f"sipp failed ({sipp.returncode}):\n{output[-2000:]}{errors}"

    (sip_uniqueid,) = set(agi_log.uniqueids("PJSIP/sipp-")) - before
    for uniqueid, number in ((caller.uniqueid, CALLER), (sip_uniqueid, "09120000124")):
        ticket = _ticket_of(controller, uniqueid)
        assert ticket["channel"] == "asterisk"
        assert (ticket["category"], ticket["place"]) == ("industry", "shokouhieh")
        assert ticket["caller_number"] == ticket["callback_number"] == number
        recording = Path(ticket["recording_path"])
        assert recording.parent == controller.recordings and recording.is_file()
        rate, channels, width, seconds = _wav(recording)  # written by Asterisk, read by the IVR
        assert (rate, channels, width) == (8000, 1, 2)
        assert seconds > 2.0
    controller.wait_idle()


def test_a_follow_up_from_another_number_needs_the_last_four_digits(call, controller: Controller):
    services = build_services(Settings(storage_dir=controller.storage, database_url=""))
    draft = TicketDraft("asterisk", "qom", "trade", None, None, None, "09127654321", None)
    tracking = services.tickets.create(draft).tracking
    assert tracking is not None
    mistyped = tracking[:-1] + str((int(tracking[-1]) + 1) % 10)  # wrong check digit

    caller = call(caller_id=OTHER_CALLER)
    caller.answer("greeting", "2")  # follow-up
    caller.answer("followup-enter", mistyped + "#")
    caller.answer("followup-invalid", tracking + "#")  # refused, asked again
    caller.answer("followup-verify", "4321#")  # not the callback number: prove it
    caller.hears("followup-registered_on")
    caller.hears("status-registered")  # the report is about this ticket
    caller.hang_up()

    row = controller.call_row(caller.uniqueid, lambda r: r["outcome"] is not None)
    assert row["outcome"] == "followup"
    steps = controller.sql(
        "SELECT node, outcome FROM call_step WHERE call_id = ? ORDER BY id", row["id"]
    )
    assert ("followup.enter", "invalid") in [tuple(s) for s in steps]
    assert ("followup.verify", "ok") in [tuple(s) for s in steps]
    controller.wait_idle()


def test_a_follow_up_plays_the_agents_answer_after_the_status(call, controller: Controller):
    """The desk's written answer, rendered with the prompts' voice into the recordings folder
    the PBX shares, is streamed by Asterisk after «پاسخ کارشناس:» — and really played: the
    stream lasts about as long as the file (a file Asterisk cannot open returns at once)."""
    from ivr.answers import render_answer

    settings = Settings(storage_dir=controller.storage, database_url="")
    services = build_services(settings)
    draft = TicketDraft("asterisk", "qom", "trade", None, None, None, CALLER, None)
    tracking = services.tickets.create(draft).tracking
    assert tracking is not None
    answer = render_answer("درخواست شما بررسی شد و مجوز صادر می‌شود.", tracking, settings)
    services.tickets.answer(tracking, "درخواست شما بررسی شد.", "sara", audio_path=str(answer))
    with wave.open(str(answer)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert seconds > 1.5

    caller = call()  # from the callback number: no last-4 check
    caller.answer("greeting", "2")
    caller.answer("followup-enter", tracking + "#")
    caller.hears("status-answered")
    caller.hears("followup-answer")
    command = caller._until(lambda c: c.startswith("STREAM FILE ") and answer.stem in c, 20)
    assert str(answer.with_suffix("")) in command
    started = time.monotonic()
    caller.hears("followup-menu", timeout=seconds + 20)
    assert time.monotonic() - started > 0.7 * seconds
    caller.hang_up()
    controller.wait_idle()


def test_wrong_keys_and_silence_are_retried_then_the_caller_reaches_an_agent(
    call, ami: AmiClient, controller: Controller
):
    with ami.events("QueueCallerJoin", "AgentConnect") as events:
        caller = call()
        caller.answer("greeting", "7")  # no such choice
        caller.answer("retry-invalid", "2")  # asked again; now a valid one: follow-up
        caller.hears("followup-enter")  # ... and say nothing for 5 s
        caller.answer("retry-no_input", "12#")  # not a tracking number (failure 2)
        caller.answer("followup-invalid", "#")  # nothing (failure 3)
        caller.hears("retry-too_many")
        caller.hears("agent-transfer")
        joined = events.get("QueueCallerJoin", timeout=15, Uniqueid=caller.uniqueid)
        assert joined["Queue"] == "124-agents"
        events.get("AgentConnect", timeout=10, Uniqueid=caller.uniqueid)
        caller.hang_up()
    heard = caller.heard()
    assert (
        heard.index("retry-invalid")
        < heard.index("retry-no_input")
        < heard.index("followup-invalid")
    )
    row = controller.call_row(caller.uniqueid, lambda r: r["queue_outcome"] is not None)
    assert row["outcome"] == "transferred" and row["ended_by"] == "transferred"
    checked, last = controller.sql(
        "SELECT node, event, key, outcome FROM call_step WHERE call_id = ? ORDER BY id DESC",
        row["id"],
    )[:2]
    # The third failure, # alone, is "empty" (not silence) and the transfer's cause; then the
    # agents were checked (always open in tests) and the caller queued.
    assert tuple(last) == ("followup.enter", "digits", "0 digits", "transfer_after_failures")
    assert tuple(checked) == ("agent.check", "agents_checked", None, "agents_available")


@pytest.mark.parametrize(
    ("to", "province", "place"),
    [
        ("086124", "markazi", "kheirabad"),  # the second province's number
        ("+9886124", "markazi", "kheirabad"),  # the same, as an E.164 trunk delivers it
        ("025124", "qom", "shokouhieh"),  # Qom's own file claims it
        ("124", "qom", "shokouhieh"),  # claimed by nobody: the controller's IVR_PROVINCE
    ],
)
def test_the_dialled_number_chooses_the_province(
    call, controller: Controller, agi_log: AgiLog, to: str, province: str, place: str
):
    """The dialplan keeps the dialled number through its jump to 124 and hands it to the AGI;
    the caller hears that province's places, and the call record says which it was."""
    caller = call(to=to)
    caller.answer("greeting", "1")  # new request
    caller.answer("category-menu", "1")  # industry
    intro = caller.hears("place-intro")
    assert _waits_for_keys(intro)
    town = caller.hears(f"place-{province}-{place}")
    assert town.startswith(("STREAM FILE ", "GET DATA "))
    caller.hang_up()
    row = controller.call_row(caller.uniqueid, lambda r: r["outcome"] is not None)
    assert (row["called"], row["province"]) == (to, province)
    assert row["channel_id"].startswith("Local/") and row["channel_id"].endswith(";1")
    assert (row["outcome"], row["ended_by"]) == ("abandoned", "caller")
    other = "qom" if province != "qom" else "markazi"
    assert not [s for s in caller.heard() if s.startswith(f"place-{other}-")]
    controller.wait_idle()


@pytest.mark.parametrize("during", ["prompt", "recording", "digits"])
def test_a_caller_who_hangs_up_leaves_no_ticket_and_no_open_call(
    call, ami: AmiClient, controller: Controller, during: str
):
    tickets_before = controller.sql("SELECT count(*) FROM ticket")[0][0]
    with ami.events("Hangup") as events:
        caller = call(exten="talk")
        if during == "prompt":
            caller.hears("greeting")
        elif during == "recording":
            caller.answer("greeting", "1")
            caller.answer("category-menu", "3")  # trade: no place menu
            caller.until_recording(timeout=20)
        else:
            caller.answer("greeting", "2")
            caller.answer("followup-enter", "1000")  # four digits of ten
        time.sleep(1.0)
        caller.hang_up()
        # The IVR's leg ends only once the controller closed the AGI socket.
        events.get("Hangup", timeout=5, Uniqueid=caller.uniqueid)
    controller.wait_idle()
    row = controller.call_row(caller.uniqueid, lambda r: r["outcome"] is not None)
    assert row["outcome"] == "abandoned"
    assert row["ticket_id"] is None
    assert controller.sql("SELECT count(*) FROM ticket")[0][0] == tickets_before
    # A recording nobody will ever file is not kept.
    assert list(controller.recordings.glob(f"asterisk-{caller.uniqueid}-*")) == []


def test_agents_queue_events_are_written_into_the_call_records(
    call, ami: AmiClient, controller: Controller
):
    with ami.events("QueueCallerJoin", "AgentConnect", "QueueCallerAbandon") as events:
        first = call()
        first.answer("greeting", "0")  # an agent, please
        events.get("QueueCallerJoin", timeout=15, Uniqueid=first.uniqueid)
        connected = events.get("AgentConnect", timeout=10, Uniqueid=first.uniqueid)
        assert connected["MemberName"] == "Test Agent"
        # The only agent is busy now (ringinuse = no): the second caller waits, then gives up.
        second = call(caller_id=OTHER_CALLER)
        second.answer("greeting", "7")  # a wrong key first ...
        second.answer("retry-invalid", "0")  # ... then an agent
        events.get("QueueCallerJoin", timeout=15, Uniqueid=second.uniqueid)
        time.sleep(2.0)
        second.hang_up()
        abandon = events.get("QueueCallerAbandon", timeout=5, Uniqueid=second.uniqueid)
        assert abandon["Queue"] == "124-agents"
        assert events.collected("AgentConnect") == []
        first.hang_up()

    # AgentComplete, when the first caller hangs up, gives the conversation's length: it
    # lasted through the second caller's 2 s wait.
    served = controller.call_row(first.uniqueid, lambda r: r["queue_talk_s"] is not None)
    assert served["queue_outcome"] == "connected"
    assert 2.0 <= served["queue_talk_s"] < 60.0
    assert served["outcome"] == "transferred"
    assert served["queue"] == "124-agents" and served["agent"] == "Test Agent"
    assert served["queue_joined_at"] and served["queue_left_at"]
    assert 0.0 <= served["queue_wait_s"] < 2.0
    left = controller.call_row(second.uniqueid, lambda r: r["queue_outcome"] == "abandoned")
    assert left["outcome"] == "transferred"
    assert left["agent"] is None
    assert 1.5 <= left["queue_wait_s"] < 5.0


def test_a_caller_in_the_menus_when_the_controller_dies_reaches_an_agent(
    call, ami: AmiClient, controller: Controller
):
    caller = call()
    try:
        with ami.events("QueueCallerJoin", "Hangup") as events:
            caller.hears("greeting")
            controller.kill()
            joined = events.get(timeout=10, Uniqueid=caller.uniqueid)
            assert joined.name == "QueueCallerJoin", "the caller was hung up"
    finally:
        controller.start()


def test_calls_go_to_the_agents_while_the_controller_restarts(
    call, ami: AmiClient, controller: Controller, pbx: TestPbx
):
    controller.kill()
    with ami.events("QueueCallerJoin") as events:
        during = call()
        # AGI() cannot connect: the dialplan's fallback queues the caller at once.
        events.get("QueueCallerJoin", timeout=10, Uniqueid=during.uniqueid)
        during.hang_up()
    assert during.heard() == []
    assert pbx.running  # Asterisk never stopped

    controller.start()  # the same FastAGI port
    after = call()
    after.answer("greeting", "2")
    after.hears("followup-enter")
    after.hang_up()
    row = controller.call_row(after.uniqueid, lambda r: r["outcome"] is not None)
    assert row["outcome"] == "abandoned"
    assert (
        controller.sql("SELECT count(*) FROM call WHERE external_id = ?", during.uniqueid)[0][0]
        == 0
    )
    controller.wait_idle()
