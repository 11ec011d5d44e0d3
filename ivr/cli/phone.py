"""The terminal phone: ``ivr call``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivr.settings import get_settings


def call(
    keys: Annotated[
        str | None, typer.Option(help='Answers, e.g. "1 4 2 1 # 1"; _ is silence')
    ] = None,
    recording: Annotated[
        Path | None, typer.Option(help="WAV file used as the spoken description")
    ] = None,
    caller: Annotated[str, typer.Option(help="Caller ID")] = "09121234567",
    audio: Annotated[bool, typer.Option(help="Play the prompts' audio")] = False,
) -> None:
    """Call 124 from the terminal: the real flow, real tickets."""
    from ivr.prompts import load_catalog
    from ivr.services import build_services
    from ivr.telephony.terminal import TerminalPhone

    settings = get_settings()
    texts = {pid: prompt.text for pid, prompt in load_catalog(settings.prompts_dir).items()}
    phone = TerminalPhone(
        build_services(settings),
        settings,
        texts,
        keys=keys.split() if keys is not None else None,
        recording=recording,
        caller=caller or None,
        audio=audio,
    )
    phone.run()
