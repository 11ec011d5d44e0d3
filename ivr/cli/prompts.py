"""The prompt catalogue's audio: render it, install it for Asterisk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="The prompt catalogue's audio.")


@app.command("build")
def prompts_build() -> None:
    """Render missing or changed prompts (studio recordings in prompts/fa/ always win)."""
    from ivr.prompts import build

    report = build(get_settings().prompts_dir)
    typer.echo(
        f"rendered {len(report.rendered)}, unchanged {len(report.unchanged)}, "
        f"studio {len(report.studio)}, removed {len(report.removed)}"
    )


@app.command("install")
def prompts_install(
    asterisk: Annotated[Path, typer.Option(help="Asterisk's sounds directory")],
) -> None:
    """Write every prompt as 8 kHz mono 16-bit WAV under DIR/fa/ivr124/."""
    from ivr.prompts import install_asterisk

    count = install_asterisk(get_settings().prompts_dir, asterisk)
    typer.echo(f"installed {count} prompts under {asterisk / 'fa' / 'ivr124'}")
