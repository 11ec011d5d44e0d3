"""Audio as the telephone network wants it: 8 kHz mono 16-bit PCM, tight and evenly loud.

A synthetic voice writes a file with its own rate, leading and trailing silence and level. Played
one after another (a number is several files), those silences become gaps and the level jumps
between files. ``finish`` makes every generated prompt the same: resampled to 8 kHz, silence
trimmed to ``MARGIN_SECONDS`` at each end, speech normalised to ``TARGET_RMS_DB`` with its peaks
kept under ``PEAK_CEILING_DB`` (no clipping, even for the MBROLA voice that peaks at full scale).
Everything is done by sox; ``levels`` measures files the same way the tests check them.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_RATE = 8000  # Asterisk refuses .wav at any other rate ("frequency mismatch")
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: 16-bit signed PCM

MARGIN_SECONDS = 0.04
"""Silence left before and after the speech of a generated prompt: two fragments in a row are
0.08 s apart, which sounds joined but not clipped."""
PAUSE_SECONDS = 0.25
"""The silence prompt (``pause``) between groups of digits: short, but a clear break."""
TARGET_RMS_DB = -20.0
"""The level of the speech itself (pauses left out), in dB of full scale."""
PEAK_CEILING_DB = -1.0
"""No sample above this: headroom for the telephone codecs after normalisation."""
SILENCE_THRESHOLD_DB = -50.0
"""Below this (relative to full scale, after a first peak normalisation) is silence."""

_FORMAT = ["-r", str(SAMPLE_RATE), "-c", str(CHANNELS), "-b", "16", "-e", "signed-integer"]
_FLOAT = ["-r", str(SAMPLE_RATE), "-c", str(CHANNELS), "-b", "32", "-e", "floating-point"]
_TRIM = [
    *("silence", "1", "0.005", f"{SILENCE_THRESHOLD_DB}d"),
    "reverse",
    *("silence", "1", "0.005", f"{SILENCE_THRESHOLD_DB}d"),
    "reverse",
    *("pad", str(MARGIN_SECONDS), str(MARGIN_SECONDS)),
]
_SPEECH_ONLY = [
    *("silence", "1", "0.01", f"{SILENCE_THRESHOLD_DB}d"),
    *("-1", "0.02", f"{SILENCE_THRESHOLD_DB}d"),
]

PIPELINE = (
    f"sox v3: {' '.join(_FLOAT)} gain -n -3 {' '.join(_TRIM)}; "
    f"speech rms {TARGET_RMS_DB} peak {PEAK_CEILING_DB}; {' '.join(_FORMAT)}"
)
"""Everything ``finish`` does, as text: part of each prompt's checksum, so changing how audio is
made re-renders it."""


class AudioError(Exception):
    """sox is missing, failed, or a file is not audio it can read."""


@dataclass(frozen=True)
class Levels:
    """What sox ``stats`` says about a file, in dB of full scale (``-inf`` for silence)."""

    peak_db: float
    rms_db: float
    speech_rms_db: float  # the RMS with every pause longer than 20 ms left out
    seconds: float


def sox() -> str:
    """The sox command, or an error that says which Debian package provides it."""
    path = shutil.which("sox")
    if path is None:
        raise AudioError("sox is not installed (or not on PATH); apt-get install sox")
    return path


def run_sox(args: Sequence[str]) -> str:
    """Run sox with ``args`` and return what it wrote on stderr (where ``stats`` reports)."""
    result = subprocess.run([sox(), *args], capture_output=True, check=False)
    stderr = result.stderr.decode("utf-8", "replace")
    if result.returncode != 0:
        raise AudioError(f"sox failed ({result.returncode}): {stderr.strip()}")
    return stderr


def _stats(path: Path, effects: Sequence[str] = ()) -> dict[str, float]:
    text = run_sox([str(path), "-n", *effects, "stats"])
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(Pk lev dB|RMS lev dB|Length s)\s+(\S+)", line)
        if match:
            values[match[1]] = float(match[2])  # float() reads "-inf"
    return values


def levels(path: Path) -> Levels:
    """Peak, RMS and speech-only RMS of ``path`` (any format sox reads)."""
    whole = _stats(path)
    speech = _stats(path, _SPEECH_ONLY)
    return Levels(
        peak_db=whole.get("Pk lev dB", float("-inf")),
        rms_db=whole.get("RMS lev dB", float("-inf")),
        speech_rms_db=speech.get("RMS lev dB", float("-inf")),
        seconds=whole.get("Length s", 0.0),
    )


def edge_silences(path: Path, threshold_db: float = SILENCE_THRESHOLD_DB) -> tuple[float, float]:
    """Seconds of silence before the first and after the last sound above ``threshold_db``."""
    total = _stats(path).get("Length s", 0.0)
    trim = ["silence", "1", "0.001", f"{threshold_db}d"]
    after_lead = _stats(path, trim).get("Length s", 0.0)
    after_tail = _stats(path, ["reverse", *trim]).get("Length s", 0.0)
    return total - after_lead, total - after_tail


def finish(raw: Path, out: Path) -> None:
    """Turn a voice's file into a prompt: 8 kHz mono 16-bit, trimmed, normalised, no clipping.

    Two passes: the trimmed speech is measured in floating point (so the resampler's overshoot
    is seen, not clipped), then one gain brings its speech to ``TARGET_RMS_DB``, or less if its
    peak would otherwise pass ``PEAK_CEILING_DB``.
    """
    # Nothing above the silence threshold: the peak normalisation would turn noise into speech.
    if _stats(raw).get("Pk lev dB", float("-inf")) < SILENCE_THRESHOLD_DB:
        raise AudioError(f"{raw.name}: the voice wrote only silence")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".finish-") as tmp:
        trimmed = Path(tmp) / "trimmed.wav"
        run_sox([str(raw), *_FLOAT, str(trimmed), "gain", "-n", "-3", *_TRIM])
        measured = levels(trimmed)
        gain = min(TARGET_RMS_DB - measured.speech_rms_db, PEAK_CEILING_DB - measured.peak_db)
        run_sox([str(trimmed), *_FORMAT, str(out), "gain", f"{gain:.2f}"])


def silence(out: Path, seconds: float = PAUSE_SECONDS) -> None:
    """A file of digital silence, for the pause between groups of digits."""
    run_sox(["-D", "-n", *_FORMAT, str(out), "trim", "0", str(seconds)])  # -D: no dither noise


def is_telephone_format(path: Path) -> bool:
    """Whether ``path`` is already 8 kHz mono 16-bit PCM (what Asterisk plays as it is)."""
    try:
        with wave.open(str(path), "rb") as w:
            shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
    except (wave.Error, EOFError, OSError):  # μ-law, float, extensible… not PCM wave can read
        return False
    return shape == (SAMPLE_RATE, CHANNELS, SAMPLE_WIDTH)


def convert(src: Path, out: Path) -> None:
    """Any file sox reads (a studio recording at 44.1 kHz, say) as 8 kHz mono 16-bit."""
    run_sox([str(src), *_FORMAT, str(out)])


def join(paths: Sequence[Path]) -> bytes:
    """The files one after another as one 8 kHz mono 16-bit WAV, as the IVR plays them.

    Files already in the telephone format are copied sample for sample; any other (a studio
    recording) is converted first.
    """
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as joined:
        joined.setnchannels(CHANNELS)
        joined.setsampwidth(SAMPLE_WIDTH)
        joined.setframerate(SAMPLE_RATE)
        with tempfile.TemporaryDirectory(prefix="ivr-join-") as tmp:
            for index, path in enumerate(paths):
                source = Path(path)
                if not is_telephone_format(source):
                    converted = Path(tmp) / f"{index}.wav"
                    convert(source, converted)
                    source = converted
                with wave.open(str(source), "rb") as part:
                    joined.writeframes(part.readframes(part.getnframes()))
    return buffer.getvalue()
