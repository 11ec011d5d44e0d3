"""How a command refuses bad input: one line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and stop the command with status 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
