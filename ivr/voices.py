"""The synthetic voices prompts can be rendered with, and which one a machine uses.

Two offline voices, both driven through espeak-ng (which turns Persian text into phonemes):
``mbrola-ir1``, Debian's MBROLA Persian diphone voice (clearly the more intelligible over a
telephone line; its database may not be sold without its author's permission), and
``espeak-fa``, espeak-ng's own formant voice (robotic, but installed everywhere). The setting
``IVR_VOICE`` names one; unset, the MBROLA voice is used where it is installed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MBROLA_IR1 = "mbrola-ir1"
ESPEAK_FA = "espeak-fa"
VOICE_NAMES = (MBROLA_IR1, ESPEAK_FA)
"""Every value ``IVR_VOICE`` accepts, the preferred first."""

MBROLA_DATABASES = (Path("/usr/share/mbrola"), Path("/usr/share/mbrola/voices"))
"""Where espeak-ng looks for MBROLA databases (``<dir>/ir1/ir1`` or ``<dir>/ir1``)."""

INSTALL_HINT = "run .ci/mbrola.sh as root (Debian packages mbrola, mbrola-ir1)"


class VoiceError(Exception):
    """A voice cannot be used: unknown name, not installed, or the synthesiser failed."""


class Voice(Protocol):
    """A synthesiser: writes a wav of any PCM format for ``text``; the pipeline converts it."""

    @property
    def name(self) -> str:
        """The ``IVR_VOICE`` name, recorded in the manifest beside each file it made."""
        ...

    @property
    def settings(self) -> str:
        """Everything that changes the sound, so a change re-renders every prompt."""
        ...

    def synthesize(self, text: str, out: Path) -> None: ...


@dataclass(frozen=True)
class EspeakVoice:
    """A voice spoken by espeak-ng: its own ``fa`` voice, or an MBROLA database (``mb-ir1``)."""

    espeak_voice: str = "fa"
    speed: int | None = None  # words per minute; the voice's default when None
    pitch: int | None = None  # 0-99; the voice's default when None

    @property
    def name(self) -> str:
        return MBROLA_IR1 if self.espeak_voice == "mb-ir1" else f"espeak-{self.espeak_voice}"

    @property
    def settings(self) -> str:
        return f"espeak-ng -v {self.espeak_voice} -s {self.speed} -p {self.pitch}"

    @property
    def mbrola_database(self) -> str | None:
        """The MBROLA database this voice needs (``ir1``), or None for espeak-ng's own voices."""
        prefix, _, database = self.espeak_voice.partition("mb-")
        return database if not prefix and database else None

    def synthesize(self, text: str, out: Path) -> None:
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            raise VoiceError("espeak-ng is not installed; apt-get install espeak-ng")
        cmd = [espeak, "-v", self.espeak_voice, "-b", "1", "--stdin", "-w", str(out)]
        if self.speed is not None:
            cmd += ["-s", str(self.speed)]
        if self.pitch is not None:
            cmd += ["-p", str(self.pitch)]
        # Text goes through stdin as UTF-8 bytes: no shell, no option parsing of a leading "-".
        result = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
        if result.returncode != 0:
            stderr = result.stderr.decode("utf-8", "replace").strip()
            raise VoiceError(f"espeak-ng -v {self.espeak_voice} failed: {stderr}")


VOICES: dict[str, EspeakVoice] = {
    MBROLA_IR1: EspeakVoice("mb-ir1"),
    ESPEAK_FA: EspeakVoice("fa"),
}


def is_installed(voice: EspeakVoice) -> bool:
    """Whether espeak-ng (and, for an MBROLA voice, mbrola and its database) are present."""
    if shutil.which("espeak-ng") is None:
        return False
    database = voice.mbrola_database
    if database is None:
        return True
    if shutil.which("mbrola") is None:
        return False
    return any(
        (base / database / database).is_file() or (base / database).is_file()
        for base in MBROLA_DATABASES
    )


@dataclass(frozen=True)
class VoiceChoice:
    """The voice to render with, and a line to tell the user when it is a fallback."""

    voice: EspeakVoice
    notice: str | None = None


def choose_voice(name: str | None = None) -> VoiceChoice:
    """The voice called ``name``, or with no name the best one installed.

    A named voice that is not installed is an error (someone asked for it on purpose); with no
    name the MBROLA voice is preferred and espeak-fa is the fallback, said in ``notice``.
    """
    if name:
        if name not in VOICES:
            raise VoiceError(f"unknown voice {name!r}: choose one of {', '.join(VOICE_NAMES)}")
        voice = VOICES[name]
        if not is_installed(voice):
            hint = INSTALL_HINT if voice.mbrola_database else "apt-get install espeak-ng"
            raise VoiceError(f"the voice {name} is not installed: {hint}")
        return VoiceChoice(voice)
    preferred = VOICES[MBROLA_IR1]
    if is_installed(preferred):
        return VoiceChoice(preferred)
    return VoiceChoice(
        VOICES[ESPEAK_FA],
        f"voice: {ESPEAK_FA} ({MBROLA_IR1} is not installed; for a clearer voice {INSTALL_HINT})",
    )
