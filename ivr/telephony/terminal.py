"""The terminal phone: walk the real call flow at the keyboard, or from a list of keys.

It prints each prompt's Persian text, plays the audio when asked and a player exists, and writes
real tickets through the same session code as Twilio and Asterisk. Keys: one token per answer —
``1``, ``09121234567`` (a trailing ``#`` is fine), ``#`` (the finish key alone), ``_`` (silence),
``h`` (hang up). At the keyboard, Enter alone is silence and Ctrl-D hangs up; with a timeout, no
answer within it is silence too, as on a phone.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import termios
import uuid
import wave
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ivr.audio import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH
from ivr.flow import actions as act
from ivr.flow.events import Digits, Event, Hangup, RecordingFinished, Timeout
from ivr.prompts import audio_path, read_wav_info
from ivr.session import CallSession, Services
from ivr.settings import Settings
from ivr.speech import normalize_digits

SILENCE, HANG_UP, FINISH_ONLY = "_", "h", "#"
KEYS = frozenset("0123456789*#")
PROMPT = "> "


def keyboard_help(timeout: float | None) -> str:
    """How to answer at the keyboard, printed once when an interactive call starts."""
    lines = [
        "Answer each prompt with its keys and Enter: 1, or 09121234567# for a number.",
        "Enter alone is silence, # alone the finish key, h or Ctrl-D hangs up.",
    ]
    if timeout is not None:
        lines.append(f"No answer within {timeout:g} s counts as silence, as on a phone.")
    return "\n".join(lines)


class RecordingError(ValueError):
    """A file given as the caller's recording cannot be used (the message says why)."""


def phone_recording(path: Path, folder: Path) -> tuple[Path, str | None]:
    """``path`` as the 8 kHz mono 16-bit WAV a phone call records, and a note if converted.

    A WAV already in that format is used as it is; anything sox can read is converted into
    ``folder``. Checked before the call starts, so the caller is never left at the beep.
    """
    if not path.is_file():
        raise RecordingError(f"{path}: no such file")
    try:
        info = read_wav_info(path)
    except (wave.Error, EOFError):
        info = None
    if info is not None and (info.rate, info.channels, info.sample_width) == (
        SAMPLE_RATE,
        CHANNELS,
        SAMPLE_WIDTH,
    ):
        return path, None
    sox = shutil.which("sox")
    if sox is None:
        raise RecordingError(
            f"{path} is not 8 kHz mono 16-bit WAV and sox (Debian package sox) is not installed "
            "to convert it"
        )
    target = folder / f"{path.stem}-8k.wav"
    done = subprocess.run(
        [sox, str(path), "-r", str(SAMPLE_RATE), "-c", str(CHANNELS), "-b", "16",
         "-e", "signed-integer", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        reason = " ".join(done.stderr.split()) or f"sox exited {done.returncode}"
        raise RecordingError(
            f"{path} is not audio sox can read ({reason}); give a WAV file "
            "(8 kHz mono 16-bit is used as it is, other WAV formats are converted)"
        )
    was = (
        f"{info.rate} Hz, {info.channels} channel(s), {8 * info.sample_width}-bit"
        if info is not None
        else "not PCM WAV"
    )
    return target, f"{path} ({was}) converted to 8 kHz mono 16-bit for the call"


class Keyboard:
    """Answers typed at the keyboard (or piped in), one line each, with an optional timeout.

    Read straight from the file descriptor, so ``select`` sees exactly what is waiting. On a
    terminal one read is one answer: a line, or the keys Ctrl-D sent without a newline. A
    half-typed answer at the timeout is thrown away, as a phone forgets keys after its timeout.
    """

    def __init__(self, stdin: TextIO, stdout: TextIO) -> None:
        self.fd = stdin.fileno()
        self.stdout = stdout
        self.tty = os.isatty(self.fd)
        self._pending = b""

    def answer(self, prompt: str, timeout: float | None) -> str | None:
        """The answer without its newline; None when nothing came within ``timeout`` seconds;
        EOFError at Ctrl-D on an empty line (or the end of piped input)."""
        self.stdout.write(prompt)
        self.stdout.flush()
        while b"\n" not in self._pending:
            if timeout is not None and not select.select([self.fd], [], [], timeout)[0]:
                if self.tty:
                    termios.tcflush(self.fd, termios.TCIFLUSH)
                self._pending = b""
                self.stdout.write("\n")
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk and not self._pending:
                raise EOFError
            if not chunk or (self.tty and not chunk.endswith(b"\n")):
                self.stdout.write("\n")  # Ctrl-D after keys sends them without a newline
                chunk += b"\n"
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        text = line.decode("utf-8", "replace").strip()
        if not self.tty:  # nothing echoed it: show the answer once, as a terminal would
            self.stdout.write(f"{text}\n")
        return text


@dataclass
class CallResult:
    external_id: str
    tracking: str | None
    ended_by: str
    """hangup, transfer, or keys-exhausted."""
    transcript: list[str] = field(default_factory=list)


@dataclass
class TerminalPhone:
    services: Services
    settings: Settings
    texts: dict[str, str]
    """Prompt id → Persian text (the catalogue)."""
    keys: Iterable[str] | None = None
    """None: ask at the keyboard."""
    recording: Path | None = None
    caller: str | None = "09121234567"
    called: str = "124"
    """The number dialled: it chooses the province (a number no province claims: IVR_PROVINCE)."""
    audio: bool = False
    timeout: float | None = None
    """At the keyboard: seconds to wait for an answer before it counts as silence; None: wait."""
    say: Callable[[str], None] = print
    ask: Callable[[str, float | None], str | None] | None = None
    """At the keyboard: reads one answer (None: the timeout passed); default
    :meth:`Keyboard.answer` on stdin."""

    def run(self) -> CallResult:
        queue = deque(self.keys) if self.keys is not None else None
        if queue is None:
            self.say(keyboard_help(self.timeout))
        external_id = f"terminal-{uuid.uuid4().hex[:12]}"
        result = CallResult(external_id, None, "hangup")
        session, actions = CallSession.start(
            self.services,
            channel="terminal",
            external_id=external_id,
            caller=self.caller,
            called=self.called,
            default_province=self.settings.province,
        )
        while True:
            event = self._perform(actions, queue, result, session)
            if event is None:
                break
            actions = session.feed(event)
        result.tracking = session.tracking_created
        if result.tracking:
            self._line(f"کد رهگیری: {result.tracking}", result)
        return result

    def _perform(
        self,
        actions: tuple[act.Action, ...],
        queue: deque[str] | None,
        result: CallResult,
        session: CallSession,
    ) -> Event | None:
        """Carry out one turn's actions; return the caller's answer as an event, None if over."""
        for action in actions:
            match action:
                case act.Play(prompts):
                    self._speak(prompts, result)
                case act.Gather():
                    self._speak(action.prompts, result)
                    return self._answer(action, queue, result, session)
                case act.Record():
                    self._line("[بوق — ضبط پیام]", result)
                    return self._record(session)
                case act.Transfer(queue_name):
                    self._line(f"[انتقال به صف {queue_name}]", result)
                    result.ended_by = "transfer"
                    return None
                case act.HangUp():
                    result.ended_by = "hangup"
                    return None
        return None

    def _answer(
        self, gather: act.Gather, queue: deque[str] | None, result: CallResult, session: CallSession
    ) -> Event | None:
        if queue is None:
            token = self._typed(result)
        elif queue:
            token = queue.popleft()
            self._line(f"> {token or SILENCE}", result)
        else:
            session.feed(Hangup())
            result.ended_by = "keys-exhausted"
            return None
        if token == HANG_UP:
            session.feed(Hangup())
            result.ended_by = "hangup"
            return None
        if token in ("", SILENCE):
            return Timeout()
        return Digits("" if token == FINISH_ONLY else token.rstrip("#"))

    def _typed(self, result: CallResult) -> str:
        """An answer from the keyboard. The terminal has echoed it already, so it goes to the
        transcript without being printed again; only what the terminal did not show is said."""
        while True:
            try:
                if self.ask is None:
                    self.ask = Keyboard(sys.stdin, sys.stdout).answer
                typed = self.ask(PROMPT, self.timeout)
            except EOFError:
                self.say(HANG_UP)  # Ctrl-D leaves the line empty: say what it meant
                typed = HANG_UP
            if typed is None:
                self.say(f"{SILENCE} (no answer within {self.timeout:g} s)")
                typed = SILENCE
            token = normalize_digits(typed.strip())
            if token in (HANG_UP, SILENCE, "") or set(token) <= KEYS:
                result.transcript.append(f"> {token or SILENCE}")
                return token
            self.say("keys are 0-9, * and #; Enter alone is silence, h hangs up")

    def _record(self, session: CallSession) -> Event:
        """Use the given WAV file, or a generated tone, as what the caller said."""
        folder = self.settings.recordings_dir
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{session.external_id}-{uuid.uuid4().hex[:6]}.wav"
        if self.recording is not None:
            shutil.copyfile(self.recording, target)
        else:
            subprocess.run(
                [
                    "sox",
                    "-n",
                    "-r",
                    "8000",
                    "-c",
                    "1",
                    "-b",
                    "16",
                    str(target),
                    "synth",
                    "3",
                    "sine",
                    "440",
                    "gain",
                    "-6",
                ],
                check=True,
            )
        return RecordingFinished(str(target), read_wav_info(target).duration)

    def _speak(self, prompts: tuple[act.Audio, ...], result: CallResult) -> None:
        words = []
        for audio in prompts:
            if isinstance(audio, act.Recorded):
                words.append("[پیام ضبط‌شده شما]")
            elif self.texts.get(audio, ""):
                words.append(self.texts[audio])
        if words:
            self._line(" ".join(words), result)
        if self.audio:
            self._play(prompts)

    def _play(self, prompts: tuple[act.Audio, ...]) -> None:
        player = shutil.which("play") or shutil.which("aplay")
        if player is None:
            return
        files = [
            Path(a.path)
            if isinstance(a, act.Recorded)
            else audio_path(self.settings.prompts_dir, a, self.settings.generated_prompts_dir)
            for a in prompts
        ]
        existing = [str(f) for f in files if f is not None and f.is_file()]
        if existing:
            subprocess.run([player, "-q", *existing], check=False, capture_output=True)

    def _line(self, text: str, result: CallResult) -> None:
        result.transcript.append(text)
        self.say(text)
