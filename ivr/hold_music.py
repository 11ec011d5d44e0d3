"""The music a caller hears in the agents' queue on Twilio, made here rather than fetched.

A few soft chords (C, A minor, F, G, twice: 24 s) synthesised with sox at ``ivr prompts build``
time, so no recording with a licence of its own is shipped and nothing is downloaded. The file
lives beside the rendered prompts (``settings.generated_prompts_dir``), outside their ``fa/``
folder, which the prompt build keeps to catalogue ids only.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

HOLD_MUSIC_FILE = "hold-music.wav"
CHORDS: tuple[tuple[float, ...], ...] = (
    (261.63, 329.63, 392.00),  # C major
    (220.00, 261.63, 329.63),  # A minor
    (174.61, 220.00, 261.63),  # F major
    (196.00, 246.94, 293.66),  # G major
)
CHORD_S = 3.0
REPEATS = 2
RATE = 8000
"""Telephone quality: Twilio plays it at 8 kHz anyway."""


class HoldMusicError(RuntimeError):
    """sox is missing or failed: the one line says which."""


def hold_music_path(generated_dir: Path) -> Path:
    return Path(generated_dir) / "music" / HOLD_MUSIC_FILE


def build_hold_music(generated_dir: Path) -> Path:
    """Write the hold music unless it is there already; returns its path."""
    out = hold_music_path(generated_dir)
    if out.is_file() and out.stat().st_size > 0:
        return out
    sox = shutil.which("sox")
    if sox is None:
        raise HoldMusicError("sox is not installed: apt-get install sox")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        parts = []
        for index, chord in enumerate(CHORDS):
            part = Path(tmp) / f"chord{index}.wav"
            tones = [arg for freq in chord for arg in ("sine", f"{freq:.2f}")]
            _sox([sox, "-n", "-r", str(RATE), "-b", "16", "-c", "1", str(part), "synth",
                  str(CHORD_S), *tones, "channels", "1", "fade", "q", "0.5", str(CHORD_S),
                  "0.8", "vol", "0.25"])  # fmt: skip
            parts.append(str(part))
        joined = Path(tmp) / HOLD_MUSIC_FILE
        _sox([sox, *(parts * REPEATS), str(joined)])
        joined.replace(out)
    return out


def _sox(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise HoldMusicError(f"sox could not make the hold music: {done.stderr.strip()}")


MAX_MUSIC_S = 600
"""The longest stretch served at once (Twilio's longest queue wait between two announcements)."""


def hold_music_cut(path: Path, seconds: float) -> bytes:
    """The hold music looped or cut to ``seconds`` (1 to MAX_MUSIC_S), as one WAV file.

    So the pause between two announcements in the Twilio queue can be any length, not a
    multiple of the 24 s the music lasts. Raises OSError or ``wave.Error`` for a bad file.
    """
    import io
    import wave

    seconds = min(max(seconds, 1.0), MAX_MUSIC_S)
    with wave.open(str(path), "rb") as source:
        params = source.getparams()
        frames = source.readframes(source.getnframes())
    frame_size = params.sampwidth * params.nchannels
    wanted = int(seconds * params.framerate) * frame_size
    if not frames:
        raise wave.Error(f"{path}: no audio")
    body = (frames * (wanted // len(frames) + 1))[:wanted]
    out = io.BytesIO()
    with wave.open(out, "wb") as target:
        target.setparams(params)
        target.writeframes(body)
    return out.getvalue()
