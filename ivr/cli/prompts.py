"""The prompt catalogue's audio: render it, install it for Asterisk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="The prompt catalogue's audio.")


@app.command("build")
def prompts_build(
    voice: Annotated[
        str | None,
        typer.Option(help="mbrola-ir1 or espeak-fa (default: IVR_VOICE, else the best installed)"),
    ] = None,
) -> None:
    """Render missing or changed prompts (studio recordings in prompts/fa/ always win)."""
    from ivr.prompts import PromptError, build
    from ivr.voices import VoiceError, choose_voice

    settings = get_settings()
    try:
        choice = choose_voice(voice or settings.voice)
    except VoiceError as error:
        fail(str(error))
    if choice.notice:
        typer.echo(choice.notice, err=True)
    try:
        report = build(
            settings.prompts_dir, voice=choice.voice, generated_dir=settings.generated_prompts_dir
        )
    except PromptError as error:
        fail(str(error))
    from ivr.hold_music import HoldMusicError, build_hold_music

    try:
        build_hold_music(settings.generated_prompts_dir)  # the queue's music on Twilio
    except HoldMusicError as error:
        fail(str(error))
    typer.echo(
        f"voice {choice.voice.name}: rendered {len(report.rendered)}, "
        f"unchanged {len(report.unchanged)}, studio {len(report.studio)}, "
        f"removed {len(report.removed)} (in {settings.generated_prompts_dir})"
    )


@app.command("install")
def prompts_install(
    asterisk: Annotated[Path, typer.Option(help="Asterisk's sounds directory")],
) -> None:
    """Write every prompt as 8 kHz mono 16-bit WAV under DIR/fa/ivr124/."""
    from ivr.prompts import install_asterisk

    if not asterisk.is_dir():
        # Not created for you: a mistyped path would hide the prompts where Asterisk never looks.
        what = "is not a folder" if asterisk.exists() else "does not exist"
        fail(f"{asterisk} {what} (Asterisk's sounds folder, e.g. /usr/share/asterisk/sounds)")
    settings = get_settings()
    count = install_asterisk(
        settings.prompts_dir, asterisk, generated_dir=settings.generated_prompts_dir
    )
    typer.echo(f"installed {count} prompts under {asterisk / 'fa' / 'ivr124'}")
