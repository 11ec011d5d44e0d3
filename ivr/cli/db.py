"""The shared database's schema."""

from __future__ import annotations

import typer

from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="The shared database.")


@app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema."""
    from ivr.tickets.db import upgrade

    settings = get_settings()
    if settings.db_url.startswith("sqlite"):
        settings.storage_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)
    typer.echo("database is up to date")
