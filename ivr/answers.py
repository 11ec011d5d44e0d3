"""An agent's written answer as audio, in the prompts' voice, for the caller who follows up.

Rendered when the answer is saved (not on the caller's turn: espeak-ng and sox take a few
hundred milliseconds), the same way ``ivr prompts build`` renders the catalogue: the configured
voice, then 8 kHz mono, trimmed and normalised (``ivr.audio.finish``). The file goes beside the
callers' recordings (``storage/recordings``), named ``answer-<tracking>-<random>.wav``, so the
transports play it as they play a recording; an uploaded WAV is converted to the same format.
Never committed: storage is git-ignored.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from ivr import audio
from ivr.settings import Settings
from ivr.voices import VoiceError, choose_voice

MAX_CHARS = 2000
"""Longer answers belong in a letter; the caller would hang up first."""


class AnswerAudioError(Exception):
    """The answer could not be made into audio (the message says why, in one line)."""


def answer_path(settings: Settings, tracking: str) -> Path:
    folder = settings.recordings_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"answer-{tracking}-{secrets.token_hex(4)}.wav"


def render_answer(text: str, tracking: str, settings: Settings) -> Path:
    """The answer's WAV, rendered with the prompts' voice; ``AnswerAudioError`` otherwise."""
    text = " ".join(text.split())
    if not text:
        raise AnswerAudioError("the answer is empty")
    if len(text) > MAX_CHARS:
        raise AnswerAudioError(f"an answer is at most {MAX_CHARS} characters")
    out = answer_path(settings, tracking)
    try:
        voice = choose_voice(settings.voice or None).voice
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".answer-") as tmp:
            raw, final = Path(tmp) / "raw.wav", Path(tmp) / "final.wav"
            voice.synthesize(text, raw)
            audio.finish(raw, final)
            os.replace(final, out)
    except (VoiceError, audio.AudioError, OSError) as error:
        raise AnswerAudioError(f"the answer could not be rendered: {error}") from error
    return out


def convert_upload(data: bytes, tracking: str, settings: Settings) -> Path:
    """An uploaded recording of the answer, converted to the prompts' format."""
    out = answer_path(settings, tracking)
    try:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".answer-") as tmp:
            src, final = Path(tmp) / "upload.wav", Path(tmp) / "final.wav"
            src.write_bytes(data)
            audio.convert(src, final)
            os.replace(final, out)
    except (audio.AudioError, OSError) as error:
        raise AnswerAudioError(f"the uploaded file is not usable audio: {error}") from error
    return out
