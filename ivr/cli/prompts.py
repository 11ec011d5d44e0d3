"""The prompt catalogue's audio: render it, install it for Asterisk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="The prompt catalogue's audio.")


@app.command("build")
def prompts_build() -> None:
    """Render missing or changed prompts into IVR_GENERATED_PROMPTS_DIR (studio recordings in
    IVR_PROMPTS_DIR/fa/ always win)."""
    from ivr.prompts import build

    settings = get_settings()
    report = build(settings.prompts_dir, generated_dir=settings.generated_prompts_dir)
    typer.echo(
        f"rendered {len(report.rendered)}, unchanged {len(report.unchanged)}, "
        f"studio {len(report.studio)}, removed {len(report.removed)} "
        f"(in {settings.generated_prompts_dir})"
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
        typer.echo(f"ivr prompts install: {asterisk} {what} (Asterisk's sounds folder, e.g. "
                   "/usr/share/asterisk/sounds)", err=True)  # fmt: skip
        raise typer.Exit(1)
    settings = get_settings()
    count = install_asterisk(
        settings.prompts_dir, asterisk, generated_dir=settings.generated_prompts_dir
    )
    typer.echo(f"installed {count} prompts under {asterisk / 'fa' / 'ivr124'}")
