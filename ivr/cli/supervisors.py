"""Who escalation mails go to: a province's supervisors (level 1) and national ones (level 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(no_args_is_help=True, help="The supervisors escalation mails go to.")


def _engine() -> Engine:
    from ivr.tickets.db import open_database

    return open_database(get_settings().db_url)


@app.command("add")
def supervisors_add(
    name: str,
    email: str,
    province: Annotated[
        str | None, typer.Option("--province", help="A province code; none: national")
    ] = None,
) -> None:
    """Add a supervisor of --province (level 1), or a national one (level 2) without it."""
    from ivr.supervisors import add_supervisor

    try:
        number = add_supervisor(_engine(), name, email, province)
    except ValueError as error:  # SupervisorError, UnknownProvince
        fail(str(error))
    where = f"province {province.strip().lower()}" if province else "national"
    typer.echo(f"added supervisor {number}: {name.strip()} <{email.strip()}> ({where})")


@app.command("list")
def supervisors_list(
    include_removed: Annotated[bool, typer.Option("--all", help="Removed ones too")] = False,
) -> None:
    """The supervisors, national first."""
    from ivr.supervisors import list_supervisors

    rows = list_supervisors(_engine(), include_removed=include_removed)
    if not rows:
        typer.echo("no supervisors: escalations reach nobody (ivr supervisors add …)")
        return
    for s in rows:
        state = "" if s.active else "  (removed)"
        typer.echo(f"{s.id:>4}  {s.province or 'national':<10} {s.email:<40} {s.name}{state}")


@app.command("remove")
def supervisors_remove(
    who: Annotated[str, typer.Argument(help="The supervisor's id or e-mail address")],
) -> None:
    """Stop mailing a supervisor (the row stays, inactive, for the history's sake)."""
    from ivr.supervisors import remove_supervisor

    try:
        removed = remove_supervisor(_engine(), who)
    except ValueError as error:
        fail(str(error))
    for s in removed:
        typer.echo(f"removed supervisor {s.id}: {s.name} <{s.email}> ({s.province or 'national'})")
