"""The AGI layer against a real Asterisk: calls arrive as Local channels originated over AMI.

Every test drives a real call through the production ``ivr-124`` context; keys are pressed
with AMI PlayDTMF on the caller's leg and hangups come from AMI Hangup on it, so what the IVR
sees is what it would see from a caller.
"""

from __future__ import annotations

import math
import os
import signal
import struct
import threading
import time
import wave
from pathlib import Path

import pytest

from ivr.telephony.agi import AgiCall, CallerHungUp, PromptMissing


def starts(prefix: str):
    """An EventQueue.get filter: the AGI command begins with ``prefix``."""
    return lambda ev: ev.get("Command").startswith(prefix)


def write_tone(path: Path, seconds: float, freq: float = 440.0) -> None:
    """An 8 kHz mono 16-bit wav: the format Asterisk plays from sounds/fa/."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / 8000)))
        for i in range(int(8000 * seconds))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)


def test_call_reaches_the_handler_with_its_environment(agi, ami, dial):
    seen: dict[str, object] = {}

    def handler(call: AgiCall) -> None:
        seen["env"] = dict(call.env)
        seen["language"] = call.get_variable("CHANNEL(language)")
        seen["thread"] = threading.current_thread()

    agi.serve(handler)
    with ami.events("Hangup") as events:
        d = dial(exten="s")  # s goes to 124: the IVR always sees 124
        _call, error = agi.finished()
        assert error is None
        env = seen["env"]
        assert env["agi_network"] == "yes"
        assert env["agi_network_script"] == "ivr124"
        assert env["agi_extension"] == "124"
        assert env["agi_context"] == "ivr-124"
        assert env["agi_uniqueid"] == d.originated.uniqueid
        assert env["agi_channel"].startswith("Local/s@test-caller-")
        assert env["agi_channel"].endswith(";1")
        assert seen["language"] == "fa"
        assert seen["thread"] is not threading.main_thread()
        # The call ended with IVR_ACTION=hangup: the dialplan hangs up, the channel goes away.
        events.get("Hangup", timeout=5, Uniqueid=d.originated.uniqueid)


def test_stream_plays_stock_and_installed_sounds(agi, pbx, dial):
    # Where `ivr prompts install --asterisk` puts prompts: sounds/fa/ivr124/ in the root. (Not
    # digits/1: the queue sounds install a Persian fa/digits/1.wav, rightly played instead.)
    tone = f"test-tone-{os.getpid()}"
    tone_path = pbx.sounds_dir / "fa" / "ivr124" / f"{tone}.wav"
    write_tone(tone_path, seconds=1.0)
    timings: dict[str, float] = {}
    keys: dict[str, str] = {}
    missing: list[str] = []

    def handler(call: AgiCall) -> None:
        for name in ("vm-goodbye", f"ivr124/{tone}"):
            start = time.monotonic()
            keys[name] = call.stream([name], "")
            timings[name] = time.monotonic() - start
        missing.extend(call.missing_prompts)

    agi.serve(handler)
    try:
        dial()
        _call, error = agi.finished()
    finally:
        tone_path.unlink()
    assert error is None, error
    assert missing == []
    assert keys == {"vm-goodbye": "", f"ivr124/{tone}": ""}
    # vm-goodbye.gsm (stock, never overridden in fa/) lasts about 0.9 s and our tone 1 s: they
    # were played, not skipped.
    assert 0.6 < timings["vm-goodbye"] < 3.0
    assert 0.8 < timings[f"ivr124/{tone}"] < 3.0


def test_get_data_receives_keys_pressed_while_it_waits(agi, ami, dial):
    results = []

    def handler(call: AgiCall) -> None:
        results.append(call.get_data("beep", 5000, 6))

    agi.serve(handler)
    with ami.events("AGIExecStart") as events:
        d = dial()
        events.get("AGIExecStart", timeout=10, Command="GET DATA beep 5000 6")
        d.press("123#")
        _call, error = agi.finished()
    assert error is None, error
    assert results == [("123", False)]


def test_get_data_timeout_and_interrupted_fragments(agi, ami, dial):
    results: dict[str, tuple[str, bool]] = {}

    def handler(call: AgiCall) -> None:
        results["silent"] = call.get_data("beep", 800, 4)
        # A prompt of two fragments: the first key interrupts the long first fragment,
        # becomes the first digit, and the entry goes on without hearing the rest.
        results["gather"] = call.gather(["demo-congrats", "beep"], 3000, 4)
        results["lone-hash"] = call.get_data(None, 3000, 4)

    agi.serve(handler)
    with ami.events("AGIExecStart") as events:
        d = dial()
        events.get("AGIExecStart", timeout=10, Command='STREAM FILE demo-congrats "0123456789*#" 0')
        d.press("4")
        events.get("AGIExecStart", timeout=5, Command="WAIT FOR DIGIT 3000")
        d.press("2#")
        events.get("AGIExecStart", timeout=5, Command="WAIT FOR DIGIT 3000")
        d.press("#")
        _call, error = agi.finished()
    assert error is None, error
    assert results["silent"] == ("", True)
    assert results["gather"] == ("42", False)
    assert results["lone-hash"] == ("#", False)


@pytest.mark.parametrize(
    ("command", "action"),
    [
        ("STREAM FILE", lambda call: call.stream(["demo-congrats"], "")),
        ("GET DATA", lambda call: call.get_data("demo-congrats", 10000, 4)),
        ("WAIT FOR DIGIT", lambda call: call.wait_for_digit(20000)),
        ("RECORD FILE", None),
    ],
)
def test_caller_hangup_raises_and_frees_the_channel(agi, ami, dial, pbx, command, action):
    after: list[str] = []
    if action is None:

        def action(call: AgiCall) -> object:
            return call.record(str(pbx.recordings_dir / f"hangup-{call.uniqueid}"), beep=False)

    def handler(call: AgiCall) -> None:
        action(call)
        after.append("the handler went on after the caller left")

    agi.serve(handler)
    with ami.events("AGIExecStart", "Hangup") as events:
        d = dial(caller="talk")
        events.get("AGIExecStart", timeout=10, where=starts(command))
        time.sleep(1.5)  # well inside the command, with some of the caller's voice recorded
        d.hang_up()
        call, error = agi.finished()
        assert isinstance(error, CallerHungUp), error
        assert error.command == command
        assert call is not None and call.hung_up
        assert after == []
        if command == "RECORD FILE":
            # What the caller said before hanging up is on disk and its length is known.
            assert error.recorded_samples is not None and error.recorded_samples > 0
        # The socket was closed: Asterisk lets the IVR's channel go at once.
        events.get("Hangup", timeout=5, Uniqueid=d.originated.uniqueid)
    assert agi.server.active_calls == 0


def test_missing_sound_file_is_not_a_hangup(agi, ami, dial):
    seen: dict[str, object] = {}

    def handler(call: AgiCall) -> None:
        seen["stream"] = call.stream(["ivr124/no-such-prompt", "beep"], "")
        seen["get_data"] = call.get_data("ivr124/no-such-prompt", 3000, 2)
        seen["status"] = call.command("CHANNEL STATUS").result  # 6: up
        seen["missing"] = list(call.missing_prompts)
        call.set_variable("IVR_ACTION", "hangup")

    agi.serve(handler)
    with ami.events("AGIExecStart") as events:
        d = dial()
        # After the missing GET DATA prompt the keys are still collected.
        events.get("AGIExecStart", timeout=10, Command="WAIT FOR DIGIT 3000")
        d.press("7")
        events.get("AGIExecStart", timeout=5, Command="WAIT FOR DIGIT 3000")
        d.press("#")
        call, error = agi.finished()
    assert error is None, error
    assert seen["stream"] == ""
    assert seen["get_data"] == ("7", False)
    assert seen["status"] == "6"
    assert seen["missing"] == ["ivr124/no-such-prompt", "ivr124/no-such-prompt"]
    assert not call.hung_up


def test_missing_sound_file_raises_prompt_missing_in_strict_mode(agi, dial):
    agi.serve(lambda call: call.stream(["ivr124/no-such-prompt"], ""), strict_prompts=True)
    dial()
    _call, error = agi.finished()
    assert isinstance(error, PromptMissing)
    assert not isinstance(error, CallerHungUp)
    assert error.name == "ivr124/no-such-prompt"


def _read_wav(path: Path) -> tuple[wave._wave_params, int]:
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        frames = w.readframes(params.nframes)
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return params, max((abs(s) for s in samples), default=0)


def test_record_file_writes_a_wav_the_host_can_read(agi, ami, dial, pbx):
    results: dict[str, object] = {}

    def handler(call: AgiCall) -> None:
        base = pbx.shared_dirs[0] / call.uniqueid  # a host directory shared with the chroot
        results["timeout"] = call.record(str(base) + "-timeout", timeout_ms=2000, beep=False)
        results["dtmf"] = call.record(str(base) + "-dtmf", timeout_ms=20000, beep=True)
        results["base"] = base

    agi.serve(handler)
    with ami.events("AGIExecStart") as events:
        d = dial(caller="talk")  # the caller talks all the time
        events.get("AGIExecStart", timeout=10, where=starts("RECORD FILE"))
        events.get("AGIExecStart", timeout=10, where=starts("RECORD FILE"))  # the second
        time.sleep(1.5)  # after the beep, into the recording
        d.press("#")
        _call, error = agi.finished()
    assert error is None, error
    timed = results["timeout"]
    assert timed.ended_by == "timeout" and timed.digit == ""
    assert 1.0 < timed.seconds < 3.0  # about the 2 s timeout; a loaded machine loses frames
    by_key = results["dtmf"]
    assert by_key.ended_by == "dtmf" and by_key.digit == "#"
    assert 0.5 < by_key.seconds < 3.0

    # Asterisk wrote into the shared directory; the host reads the same path.
    params, peak = _read_wav(Path(str(results["base"]) + "-timeout.wav"))
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert abs(params.nframes - timed.samples) < 800
    assert peak > 500  # the caller's voice, not silence
    assert Path(str(results["base"]) + "-dtmf.wav").exists()


def test_record_file_stops_on_silence(agi, dial, pbx):
    results = []

    def handler(call: AgiCall) -> None:
        path = str(pbx.recordings_dir / f"{call.uniqueid}-quiet")
        results.append(call.record(path, timeout_ms=15000, beep=False, silence_s=1))

    agi.serve(handler)
    dial(caller="quiet")
    _call, error = agi.finished()
    assert error is None, error
    assert results[0].ended_by == "silence"


def test_pyst2_agi_needs_the_main_thread_ours_does_not(agi, dial):
    """pyst2's AGI() installs a SIGHUP handler: ValueError in any other thread."""
    import io

    from asterisk.agi import AGI

    errors: list[BaseException] = []

    def make_pyst2_agi() -> None:
        try:
            AGI(stdin=io.BytesIO(b"agi_channel: x\n\n"), stdout=io.StringIO(), stderr=io.StringIO())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=make_pyst2_agi)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], ValueError)

    before = signal.getsignal(signal.SIGHUP)
    threads = []
    agi.serve(lambda call: threads.append(threading.current_thread()))
    dial()
    _call, error = agi.finished()
    assert error is None, error
    assert threads[0] is not threading.main_thread()
    assert signal.getsignal(signal.SIGHUP) is before


def test_hangup_ends_the_call_for_the_caller_too(agi, ami, dial):
    after: list[str] = []

    def handler(call: AgiCall) -> None:
        call.hangup()
        try:
            call.stream(["beep"], "")
        except CallerHungUp:
            after.append("dead channel")

    agi.serve(handler)
    with ami.events("Hangup") as events:
        d = dial()
        _call, error = agi.finished()
        assert error is None, error
        assert after == ["dead channel"]
        events.get("Hangup", timeout=5, Uniqueid=d.originated.other_uniqueid)
