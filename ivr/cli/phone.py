"""The terminal phone: ``ivr call``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings


def call(
    keys: Annotated[
        str | None, typer.Option(help='Answers, e.g. "1 4 2 1 # 1"; _ is silence, h hangs up')
    ] = None,
    recording: Annotated[
        Path | None,
        typer.Option(help="WAV file used as the spoken description (converted if need be)"),
    ] = None,
    caller: Annotated[str, typer.Option(help="Caller ID")] = "09121234567",
    audio: Annotated[bool, typer.Option(help="Play the prompts' audio")] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            min=0.5, max=600, help="At the keyboard: seconds without an answer that are silence"
        ),
    ] = None,
) -> None:
    """Call 124 from the terminal: the real flow, real tickets. Without --keys, answer at the
    keyboard: Enter alone is silence, # ends an entry, h or Ctrl-D hangs up."""
    from ivr.prompts import load_catalog
    from ivr.services import build_services
    from ivr.telephony.terminal import RecordingError, TerminalPhone, phone_recording

    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="ivr-call-") as scratch:
        if recording is not None:  # checked before the call starts: never a failure at the beep
            try:
                recording, note = phone_recording(recording, Path(scratch))
            except RecordingError as error:
                fail(f"--recording {error}")
            if note:
                typer.echo(note, err=True)
        texts = {pid: prompt.text for pid, prompt in load_catalog(settings.prompts_dir).items()}
        phone = TerminalPhone(
            build_services(settings),
            settings,
            texts,
            keys=keys.split() if keys is not None else None,
            recording=recording,
            caller=caller or None,
            audio=audio,
            timeout=timeout,
        )
        phone.run()
