"""Tickets for administrators and scripts: list, show."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Look at tickets.")


@app.command("list")
def tickets_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    limit: int = 20,
) -> None:
    """The newest tickets."""
    from ivr.services import build_services
    from ivr.tickets.render import ticket_json, ticket_table

    views = build_services(get_settings()).tickets.latest(limit)
    if as_json:
        typer.echo(json.dumps([ticket_json(v) for v in views], ensure_ascii=False, indent=2))
    else:
        typer.echo(ticket_table(views))


@app.command("show")
def tickets_show(
    tracking: str, as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False
) -> None:
    """One ticket with its history."""
    from ivr.services import build_services
    from ivr.speech import normalize_digits
    from ivr.tickets.render import ticket_detail, ticket_json

    view = build_services(get_settings()).tickets.get(normalize_digits(tracking).strip())
    if view is None:
        typer.echo(f"no ticket {tracking}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(ticket_json(view), ensure_ascii=False, indent=2))
    else:
        typer.echo(ticket_detail(view))
