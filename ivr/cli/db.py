"""The shared database's schema."""

from __future__ import annotations

import typer

from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="The shared database.")


@app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema, and say which it did."""
    from ivr.tickets.db import upgrade

    url = get_settings().db_url
    typer.echo(upgrade(url).describe(url))


@app.command("status")
def db_status() -> None:
    """The database's schema revision against this version's newest; exit 1 unless current."""
    from ivr.tickets.db import make_engine, schema_state, shown_url

    url = get_settings().db_url
    engine = make_engine(url)
    try:
        state = schema_state(engine)
    finally:
        engine.dispose()
    typer.echo(f"{shown_url(url)}: {state.status} (database {state.current or '-'}, "
               f"newest {state.head})")  # fmt: skip
    if state.status != "current":
        raise typer.Exit(1)
