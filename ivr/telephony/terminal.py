"""The terminal phone: walk the real call flow at the keyboard, or from a list of keys.

It prints each prompt's Persian text, plays the audio when asked and a player exists, and writes
real tickets through the same session code as Twilio and Asterisk. Keys: one token per answer —
``1``, ``09121234567`` (a trailing ``#`` is fine), ``#`` (the finish key alone), ``_`` (silence),
``h`` (hang up).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ivr.flow import actions as act
from ivr.flow.events import Digits, Event, Hangup, RecordingFinished, Timeout
from ivr.prompts import audio_path, read_wav_info
from ivr.session import CallSession, Services
from ivr.settings import Settings

SILENCE, HANG_UP, FINISH_ONLY = "_", "h", "#"


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
    say: Callable[[str], None] = print
    ask: Callable[[str], str] = input

    def run(self) -> CallResult:
        queue = deque(self.keys) if self.keys is not None else None
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
            try:
                token = self.ask("کلید> ").strip()
            except EOFError:
                token = HANG_UP
        elif queue:
            token = queue.popleft()
        else:
            session.feed(Hangup())
            result.ended_by = "keys-exhausted"
            return None
        self._line(f"> {token or SILENCE}", result)
        if token == HANG_UP:
            session.feed(Hangup())
            result.ended_by = "hangup"
            return None
        if token in ("", SILENCE):
            return Timeout()
        return Digits("" if token == FINISH_ONLY else token.rstrip("#"))

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
            else audio_path(self.settings.prompts_dir, a)
            for a in prompts
        ]
        existing = [str(f) for f in files if f is not None and f.is_file()]
        if existing:
            subprocess.run([player, "-q", *existing], check=False, capture_output=True)

    def _line(self, text: str, result: CallResult) -> None:
        result.transcript.append(text)
        self.say(text)
