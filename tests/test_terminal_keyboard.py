"""``ivr call`` at a keyboard: a real terminal (a pseudo-terminal, echo on, as a person's) typing
into the real command. It says how to answer, each key appears once (the terminal's echo, not
ours as well), silence after ``--timeout`` seconds is a timeout as on a phone, Ctrl-D hangs up.
And the errors a user can make with the command's files are one line each.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from ivr.prompts import load_catalog

IVR = str(Path(sys.executable).with_name("ivr"))
"""The project's own ``ivr`` (test modules cannot import conftest: each folder has one)."""
PROMPTS = load_catalog(Path(__file__).resolve().parents[1] / "prompts")
CTRL_D = b"\x04"


class Terminal:
    """``ivr ARGS`` on a pseudo-terminal; ``expect`` waits for text on its screen."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([IVR, *args], stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self.screen = ""
        self.seen = 0

    def read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):  # the process ended: the other side is closed
                self.screen += os.read(self.master, 65536).decode("utf-8", "replace")

    def expect(self, text: str, timeout: float = 30) -> str:
        """Everything shown since the last expect, up to and including ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.screen[self.seen :]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never shown; screen:\n{self.screen[self.seen :]}")
            self.read(0.1)
        end = self.screen.index(text, self.seen) + len(text)
        shown, self.seen = self.screen[self.seen : end], end
        return shown

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self.master)


@pytest.fixture
def terminal(ivr_env: dict[str, str]):
    opened: list[Terminal] = []

    def start(*args: str) -> Terminal:
        term = Terminal(ivr_env, *args)
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


def test_the_keyboard_phone_as_a_person_uses_it(terminal) -> None:
    term = terminal("call", "--timeout", "1.5")
    shown = term.expect("\r\n> ")
    assert "Enter alone is silence, # alone the finish key, h or Ctrl-D hangs up." in shown
    assert "No answer within 1.5 s counts as silence, as on a phone." in shown
    assert PROMPTS["main.menu"].text in shown

    term.type(b"1\n")
    shown = term.expect(PROMPTS["category.menu"].text)
    assert shown.startswith("1\r\n"), shown  # the terminal's echo, once
    assert shown.count("1") == shown.count("1", 0, 3), "the key was shown a second time"
    term.expect("\r\n> ")

    term.type(b"x\n")  # not a key on a phone: asked again, nothing sent to the flow
    shown = term.expect("\r\n> ")
    assert "keys are 0-9, * and #" in shown
    assert PROMPTS["retry.no_input"].text not in shown

    started = time.monotonic()  # say nothing: after the timeout, the flow's no-input retry
    shown = term.expect(PROMPTS["retry.no_input"].text, timeout=10)
    assert time.monotonic() - started >= 1.4
    assert "_ (no answer within 1.5 s)" in shown

    term.expect("\r\n> ")
    term.type(CTRL_D)
    term.expect("h")
    assert term.proc.wait(timeout=30) == 0


def test_without_a_timeout_the_phone_waits(terminal) -> None:
    term = terminal("call")
    shown = term.expect("\r\n> ")
    assert "No answer within" not in shown
    time.sleep(2)
    term.read(0.5)
    assert term.screen[term.seen :] == "", "it answered for the caller"
    term.type(b"\n")  # Enter alone: silence
    term.expect(PROMPTS["retry.no_input"].text)
    term.expect("\r\n> ")
    term.type(b"h\n")
    assert term.proc.wait(timeout=30) == 0


def test_piped_answers_are_shown_once(ivr_env: dict[str, str]) -> None:
    done = subprocess.run(
        [IVR, "call"],
        input="2\n12\n",
        env=ivr_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    answers = [line for line in done.stdout.splitlines() if line.startswith("> ")]
    assert [a.split()[1] for a in answers] == ["2", "12", "h"]


# -- the command's own files ------------------------------------------------------------------


def test_a_missing_recording_stops_before_the_call(
    storage: Path, tmp_path: Path, ivr_env: dict[str, str]
) -> None:
    missing = tmp_path / "nowhere.wav"
    done = subprocess.run(
        [IVR, "call", "--keys", "1 4 2 1 # 1", "--recording", str(missing)],
        env=ivr_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout == "", "the call never started"
    assert done.stderr.strip() == f"ivr call: --recording {missing}: no such file"


def test_a_recording_in_another_format_is_converted(
    storage: Path, tmp_path: Path, ivr_env: dict[str, str]
) -> None:
    cd_quality = tmp_path / "voice-44k-stereo.wav"
    subprocess.run(
        ["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(cd_quality), "synth", "3", "sine",
         "300", "gain", "-6"],
        check=True,
    )  # fmt: skip
    done = subprocess.run(
        [IVR, "call", "--keys", "1 4 2 1 # 1", "--recording", str(cd_quality)],
        env=ivr_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (
        f"{cd_quality} (44100 Hz, 2 channel(s), 16-bit) converted to 8 kHz mono 16-bit for the call"
    )
    assert re.search(r"کد رهگیری: \d{10}", done.stdout)
    (stored,) = (storage / "recordings").glob("*.wav")
    with wave.open(str(stored)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert abs(w.getnframes() / 8000 - 3.0) < 0.05


def test_a_recording_that_is_not_audio_is_refused(
    storage: Path, tmp_path: Path, ivr_env: dict[str, str]
) -> None:
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not a recording\n")
    done = subprocess.run(
        [IVR, "call", "--keys", "1 4 2 1 # 1", "--recording", str(fake)],
        env=ivr_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"ivr call: --recording {fake} is not audio sox can read (")
    assert line.endswith("8 kHz mono 16-bit is used as it is, other WAV formats are converted)")


def test_an_8khz_recording_is_used_as_it_is(
    storage: Path, recording_wav: Path, ivr_env: dict[str, str]
) -> None:
    ready = recording_wav
    done = subprocess.run(
        [IVR, "call", "--keys", "1 4 2 1 # 1", "--recording", str(ready)],
        env=ivr_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and done.stderr == ""
    (stored,) = (storage / "recordings").glob("*.wav")
    assert stored.read_bytes() == ready.read_bytes()


def refused_install(into: Path, env: dict[str, str]) -> str:
    """``ivr prompts install --asterisk INTO`` that must refuse: status 1, no traceback; stderr."""
    done = subprocess.run(
        [IVR, "prompts", "install", "--asterisk", str(into)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    return done.stderr.strip()


def test_prompts_install_into_a_missing_folder(
    storage: Path, tmp_path: Path, ivr_env: dict[str, str]
) -> None:
    missing = tmp_path / "asterisk" / "sounds"
    assert refused_install(missing, ivr_env) == (
        f"ivr prompts install: {missing} does not exist (Asterisk's sounds folder, e.g. "
        "/usr/share/asterisk/sounds)"
    )
    assert not missing.exists(), "not created behind the operator's back"
    too_long = tmp_path / ("a" * 300)  # ENAMETOOLONG: an OSError of its own, not a traceback
    assert refused_install(too_long, ivr_env) == f"ivr: File name too long: {str(too_long)[:200]}"


def test_prompts_install_without_rendered_audio(
    storage: Path, tmp_path: Path, ivr_env: dict[str, str]
) -> None:
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    env = {**ivr_env, "IVR_GENERATED_PROMPTS_DIR": str(tmp_path / "never-built")}
    (line,) = refused_install(sounds, env).splitlines()
    assert line.startswith("ivr: ") and "have no audio (run `ivr prompts build`)" in line


def test_a_bad_option_is_one_line(ivr_env: dict[str, str]) -> None:
    done = subprocess.run(
        [IVR, "call", "--timeout", "-3"],
        env=ivr_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("ivr call: Invalid value for '--timeout'")
