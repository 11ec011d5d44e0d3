"""Persian speech printed as words (and played or written as sound), to check it by eye and ear."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

app = typer.Typer(
    no_args_is_help=True,
    help="Print Persian speech as words; --play or --wav FILE to hear it as the IVR plays it.",
)

PlayOption = Annotated[
    bool, typer.Option("--play", help="Play the fragments in a row with sox's `play`")
]
WavOption = Annotated[
    Path | None,
    typer.Option("--wav", help="Write the fragments as one 8 kHz mono 16-bit WAV file"),
]


def _speak(kind: str, text: str, play: bool, wav: Path | None) -> None:
    """Print the words of ``text`` read as ``kind``, then write and/or play its audio."""
    from ivr.prompts import PromptError, join_fragments
    from ivr.speech import fragment_words, load_fragment_texts
    from ivr.spoken import fragments_for

    try:
        fragments = fragments_for(kind, text)
    except ValueError as error:
        fail(str(error))
    settings = get_settings()
    prompts_dir = settings.prompts_dir
    typer.echo(fragment_words(fragments, load_fragment_texts(prompts_dir / "fragments.toml")))
    if not (play or wav):
        return
    player = shutil.which("play")
    if play and player is None:
        fail("cannot play: sox's `play` is not installed (apt-get install sox); try --wav FILE")
    try:
        sound = join_fragments(prompts_dir, fragments, settings.generated_prompts_dir)
    except PromptError as error:
        fail(str(error))
    if wav is not None:
        try:
            wav.write_bytes(sound)
        except OSError as error:
            fail(f"cannot write {wav}: {error.strerror or error}")
    if play and player is not None:
        _play(player, sound)


def _play(player: str, sound: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".wav", prefix="ivr-speak-") as handle:
        handle.write(sound)
        handle.flush()
        result = subprocess.run([player, "-q", handle.name], capture_output=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        fail(f"cannot play: {lines[-1] if lines else f'play exited with {result.returncode}'}")


@app.command("number")
def speak_number(number: str, play: PlayOption = False, wav: WavOption = None) -> None:
    """A number in spoken Persian (Persian or ASCII digits, 0 to 999999999999)."""
    _speak("number", number, play, wav)


@app.command("digits")
def speak_digits(digits: str, play: PlayOption = False, wav: WavOption = None) -> None:
    """A phone or tracking number read digit by digit, in its written groups."""
    _speak("digits", digits, play, wav)


@app.command("date")
def speak_date(day: str, play: PlayOption = False, wav: WavOption = None) -> None:
    """A date, Jalali (1405/03/15) or ISO (2026-06-05), spoken as its Jalali date."""
    _speak("date", day, play, wav)
