"""Browser transport: the /try page's JSON in, flow events out; flow actions out as JSON.

The same engine and call session as Twilio, Asterisk and the terminal phone; only the wire
differs. Nothing here decides where a call goes, and nothing here knows HTTP: the routes are in
``ivr.web.try_``. What the page is told, one object per action, in order::

    {"type": "play", "prompts": [P, ...]}                  say these; keys are ignored meanwhile
    {"type": "gather", "prompts": [P, ...], "max_digits": 1, "finish_on_key": null,
     "timeout_s": 5, "allow_empty": false}                 say these (a key interrupts), then
                                                          collect keys as a phone would
    {"type": "record", "max_s": 120, "finish_on_key": "#", "beep": true}
    {"type": "transfer", "queue": "124-agents"}
    {"type": "hangup"}

    P = {"id": "main.menu", "url": "/prompts/fa/main-menu.wav", "text": "برای ثبت …"}
        or {"id": null, "recording": true, "url": "…", "text": ""} for the caller's own voice

What the page says back (``event_from_json``): ``{"type": "digits", "digits": "1"}`` (without
the finish key; ``""`` for the finish key alone), ``{"type": "timeout"}``, ``{"type":
"hangup"}``, ``{"type": "recording"}`` for a recording with no audio — and the audio itself
(``save_recording``), converted to the prompts' WAV format (8 kHz mono 16-bit) with ffmpeg.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.audio import CHANNELS, SAMPLE_RATE
from ivr.flow import actions as act
from ivr.flow import menus
from ivr.flow.events import Digits, Event, Hangup, RecordingFinished, Timeout
from ivr.prompts import read_wav_info
from ivr.session import CallSession, Services
from ivr.speech import normalize_digits
from ivr.tickets.models import Channel

log = logging.getLogger(__name__)

CHANNEL = Channel.WEB.value
DEFAULT_CALLER = "09121234567"
"""The caller ID of a call started without one: a valid mobile, as most callers have."""
CALL_ID = re.compile(r"^web-[0-9a-f]{32}$")
"""A browser call's id: unguessable, since whoever holds it can drive the call."""
RECORDING_NAME = re.compile(r"^(web-[0-9a-f]{32})-[0-9a-f]{8}\.wav$")
KEYS = frozenset("0123456789*#")
MAX_KEYS = 32
MAX_CALLER_LENGTH = 32
CONVERT_TIMEOUT_S = 30

# What each container starts with, and the ffmpeg demuxer that reads it. Naming the demuxer
# keeps ffmpeg from probing an upload as any of the hundreds of formats it knows.
_CONTAINERS: tuple[tuple[Callable[[bytes], bool], str], ...] = (
    (lambda head: head[:4] == b"RIFF" and head[8:12] == b"WAVE", "wav"),
    (lambda head: head[:4] == b"\x1a\x45\xdf\xa3", "matroska"),  # WebM (Chrome, Firefox)
    (lambda head: head[:4] == b"OggS", "ogg"),  # Firefox
    (lambda head: head[4:8] == b"ftyp", "mov"),  # MP4/M4A (Safari on iPhones)
)


class BadEvent(ValueError):
    """The page sent something that is not one of the events above."""


def new_call_id() -> str:
    return f"web-{secrets.token_hex(16)}"


def is_call_id(text: str) -> bool:
    return bool(CALL_ID.match(text))


# --- actions out -------------------------------------------------------------------------


def render(
    actions: tuple[act.Action, ...],
    url_of: Callable[[act.Audio], str],
    text_of: Callable[[str], str],
) -> list[dict[str, Any]]:
    """Flow actions as the page's JSON objects (see the module's docstring)."""

    def prompts(audios: tuple[act.Audio, ...]) -> list[dict[str, Any]]:
        return [
            {"id": None, "recording": True, "url": url_of(a), "text": ""}
            if isinstance(a, act.Recorded)
            else {"id": a, "url": url_of(a), "text": text_of(a)}
            for a in audios
        ]

    rendered: list[dict[str, Any]] = []
    for action in actions:
        match action:
            case act.Play(audios):
                rendered.append({"type": "play", "prompts": prompts(audios)})
            case act.Gather():
                rendered.append(
                    {
                        "type": "gather",
                        "prompts": prompts(action.prompts),
                        "max_digits": action.max_digits,
                        "finish_on_key": action.finish_on_key,
                        "timeout_s": action.timeout_s,
                        "allow_empty": action.allow_empty,
                    }
                )
            case act.Record():
                rendered.append(
                    {
                        "type": "record",
                        "max_s": action.max_s,
                        "finish_on_key": action.finish_on_key,
                        "beep": action.beep,
                    }
                )
            case act.Transfer(queue):
                rendered.append({"type": "transfer", "queue": queue})
            case act.HangUp():
                rendered.append({"type": "hangup"})
    return rendered


def ends_call(actions: tuple[act.Action, ...]) -> bool:
    """Whether the page has nothing more to say after these actions (no gather, no record)."""
    return not any(isinstance(a, act.Gather | act.Record) for a in actions)


def unavailable(queue: str) -> tuple[act.Action, ...]:
    """The database is unreachable: say so in Persian and hand the caller to a person."""
    return (act.Play(("system.unavailable",)), act.Transfer(queue))


# --- events in ---------------------------------------------------------------------------


def event_from_json(data: Mapping[str, Any]) -> Event:
    """The page's event as a flow event; ``BadEvent`` for anything else."""
    kind = data.get("type")
    if kind == "digits":
        digits = data.get("digits")
        if not isinstance(digits, str):
            raise BadEvent("digits must be a string")
        digits = normalize_digits(digits)
        if len(digits) > MAX_KEYS or not set(digits) <= KEYS:
            raise BadEvent(f"digits are up to {MAX_KEYS} of 0-9 * #")
        return Digits(digits)
    if kind == "timeout":
        return Timeout()
    if kind == "hangup":
        return Hangup()
    if kind == "recording":
        return RecordingFinished(None, 0.0)  # the caller ended the recording with nothing
    raise BadEvent("type must be digits, timeout, hangup or recording")


def caller_from_json(data: Mapping[str, Any]) -> str | None:
    """The caller ID the visitor typed (Persian digits welcome); None for an anonymous call."""
    caller = data.get("caller")
    if caller is None:
        return None
    if not isinstance(caller, str) or len(caller) > MAX_CALLER_LENGTH:
        raise BadEvent(f"caller must be a string of up to {MAX_CALLER_LENGTH} characters")
    return normalize_digits(caller).strip() or None


def container_of(head: bytes) -> str | None:
    """The ffmpeg demuxer for an upload's first bytes, or None for anything not audio we take."""
    return next((name for matches, name in _CONTAINERS if matches(head)), None)


def save_recording(audio: bytes, target: Path, max_s: int) -> RecordingFinished:
    """Write what the caller said as ``target`` (8 kHz mono 16-bit WAV, at most ``max_s``).

    Anything that cannot be read as audio is "nothing recorded", which the flow answers with
    its too-short prompt, as it does on a phone.
    """
    container = container_of(audio[:16])
    if container is None:
        log.warning("recording for %s is not WAV, WebM, Ogg or MP4: ignored", target.name)
        return RecordingFinished(None, 0.0)
    target.parent.mkdir(parents=True, exist_ok=True)
    upload = target.with_name(f".{target.stem}.upload")
    try:
        upload.write_bytes(audio)
        _convert(upload, container, target, max_s)
        duration = read_wav_info(target).duration
    except Exception as exc:  # a broken upload is the caller's, not a server error
        log.warning("could not convert the recording for %s: %s", target.name, exc)
        target.unlink(missing_ok=True)
        return RecordingFinished(None, 0.0)
    finally:
        upload.unlink(missing_ok=True)
    return RecordingFinished(str(target), duration)


def _convert(source: Path, container: str, target: Path, max_s: int) -> None:
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        command = [
            ffmpeg,
            *("-nostdin", "-hide_banner", "-loglevel", "error", "-threads", "1"),
            *("-protocol_whitelist", "file", "-f", container, "-i", str(source)),
            *("-t", str(max_s), "-vn", "-map_metadata", "-1"),
            *("-ac", str(CHANNELS), "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le"),
            *("-f", "wav", "-y", str(target)),
        ]
    elif container == "wav" and (sox := shutil.which("sox")):
        rate, channels = str(SAMPLE_RATE), str(CHANNELS)
        command = [sox, "-t", "wav", str(source), "-r", rate, "-c", channels, "-b", "16"]
        command += ["-e", "signed-integer", str(target), "trim", "0", str(max_s)]
    else:
        raise RuntimeError(
            "ffmpeg is not installed, so only WAV recordings can be read: apt-get install ffmpeg"
        )
    done = subprocess.run(command, capture_output=True, timeout=CONVERT_TIMEOUT_S, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()[-500:]
        raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): {message}")


# --- calls -------------------------------------------------------------------------------


@dataclass
class Turn:
    """One answer to the page: what to do next, and the ticket this turn created, if any."""

    call_id: str
    actions: tuple[act.Action, ...]
    tracking: str | None = None
    ended: bool = False


@dataclass
class BrowserCalls:
    """Browser calls: start one, feed it the page's events. Their state lives in the database
    (as Twilio's does), so any node can take a call's next event."""

    services: Services
    province: str
    agent_queue: str
    recordings_dir: Path

    def start(self, caller: str | None) -> Turn:
        call_id = new_call_id()
        try:
            session, actions = CallSession.start(
                self.services,
                channel=CHANNEL,
                external_id=call_id,
                caller=caller,
                called="124",
                default_province=self.province,
            )
        except Exception:
            log.exception("could not start browser call %s", call_id)
            return Turn(call_id, unavailable(self.agent_queue), ended=True)
        return self._turn(session, actions)

    def feed(self, call_id: str, event: Event) -> Turn | None:
        """The call's next turn; None when no such browser call exists."""
        return self._advance(call_id, lambda _session: event)

    def record(self, call_id: str, audio: bytes) -> Turn | None:
        """The caller's recording: converted only while the call is at a recording step, and
        kept only if the flow took it (a too-short one is deleted), so stray or rejected
        uploads cost no disk."""
        saved: list[Path] = []

        def recorded(session: CallSession) -> Event:
            node = menus.menus_for(session.state.province).get(session.state.node)
            if session.state.ended or not isinstance(node, menus.Recorder):
                return RecordingFinished(None, 0.0)
            target = self.recordings_dir / f"{call_id}-{uuid.uuid4().hex[:8]}.wav"
            saved.append(target)
            return save_recording(audio, target, menus.RECORD_MAX_S)

        return self._advance(call_id, recorded, keep=saved)

    def _advance(
        self,
        call_id: str,
        event_for: Callable[[CallSession], Event],
        keep: list[Path] | None = None,
    ) -> Turn | None:
        if not is_call_id(call_id):
            return None
        try:
            session = CallSession.resume(self.services, call_id)
            if session is None:
                return None
            actions = session.feed(event_for(session))
        except Exception:
            log.exception("could not advance browser call %s", call_id)
            return Turn(call_id, unavailable(self.agent_queue), ended=True)
        for path in keep or ():
            if session.state.recording_path != str(path):
                path.unlink(missing_ok=True)  # the flow did not take it: nothing points to it
        return self._turn(session, actions)

    def recording_of(self, call_id: str, name: str) -> Path | None:
        """A recording this call made, for playing back to the same call only."""
        found = RECORDING_NAME.match(name)
        if not found or found.group(1) != call_id:
            return None
        path = self.recordings_dir / name
        return path if path.is_file() else None

    @staticmethod
    def _turn(session: CallSession, actions: tuple[act.Action, ...]) -> Turn:
        ended = session.state.ended or ends_call(actions)
        return Turn(session.external_id, actions, session.tracking_created, ended)
