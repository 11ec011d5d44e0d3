"""Tickets for administrators and scripts: list, show, change status, refer.

Status changes and referrals go through ``TicketService`` and its one transition table
(``ivr.tickets.statuses``), exactly as an agent's desk will: a refused move, an unknown agency
or an unknown ticket is one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

if TYPE_CHECKING:
    from ivr.tickets.service import TicketService

app = typer.Typer(no_args_is_help=True, help="Look at tickets and change them.")

MAX_LIMIT = 10_000
"""More tickets than this at once is a job for the reports, not a terminal."""
STATUSES = "registered, in_review, referred, waiting_for_caller, answered, closed"

JsonOption = Annotated[bool, typer.Option("--json", help="JSON output")]
NoteOption = Annotated[str | None, typer.Option("--note", help="Why: kept in the history")]
ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who makes the change (a user name); default: the login name"),
]


def _service() -> TicketService:
    from ivr.services import build_services

    return build_services(get_settings()).tickets


def _actor(by: str | None) -> str:
    """The ``--by`` name, else the operating-system user running the command."""
    import getpass

    name = (by if by is not None else getpass.getuser()).strip()
    if not name:
        fail("--by needs a name")
    if len(name) > 64:
        fail("--by is longer than 64 characters")
    return name


def _tracking(text: str) -> str:
    from ivr.speech import normalize_digits
    from ivr.tickets.tracking import is_valid_tracking

    number = normalize_digits(text).strip()
    if not is_valid_tracking(number):
        fail(f"{text} is not a tracking number (10 digits with a check digit)")
    return number


@app.command("list")
def tickets_list(
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option(help=f"How many, 1 to {MAX_LIMIT:,}")] = 20,
) -> None:
    """The newest tickets."""
    from ivr.tickets.render import ticket_json, ticket_table

    if not 1 <= limit <= MAX_LIMIT:
        fail(f"--limit must be between 1 and {MAX_LIMIT:,}")
    views = _service().latest(limit)
    if as_json:
        typer.echo(json.dumps([ticket_json(v) for v in views], ensure_ascii=False, indent=2))
    else:
        typer.echo(ticket_table(views))


@app.command("show")
def tickets_show(
    tracking: str,
    as_json: JsonOption = False,
    with_personal_data: Annotated[
        bool, typer.Option("--with-personal-data", help="Include the caller's national ID")
    ] = False,
) -> None:
    """One ticket with its history."""
    from ivr.tickets.render import ticket_detail, ticket_json

    view = _service().get(_tracking(tracking))
    if view is None:
        fail(f"no ticket {tracking}")
    if as_json:
        data = ticket_json(view, personal_data=with_personal_data)
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        typer.echo(ticket_detail(view, personal_data=with_personal_data))


@app.command("status")
def tickets_status(
    tracking: str,
    status: Annotated[str, typer.Argument(help=STATUSES)],
    note: NoteOption = None,
    by: ByOption = None,
) -> None:
    """Move a ticket to STATUS, if the transition table allows it."""
    from ivr.tickets.service import TicketNotFound

    number, actor = _tracking(tracking), _actor(by)
    try:
        view = _service().set_status(number, status.strip(), actor, note)
    except TicketNotFound:
        fail(f"no ticket {tracking}")
    except ValueError as error:  # TransitionRefused, UnknownStatus
        fail(str(error))
    typer.echo(f"ticket {view.tracking}: {view.status} (by {actor})")


@app.command("refer")
def tickets_refer(
    tracking: str,
    agency: Annotated[str, typer.Argument(help="An agency code of ivr/agencies.toml")],
    note: NoteOption = None,
    by: ByOption = None,
) -> None:
    """Refer a ticket to AGENCY: its status becomes referred."""
    from ivr.agencies import agency_name
    from ivr.tickets.service import TicketNotFound

    number, actor = _tracking(tracking), _actor(by)
    try:
        view = _service().refer(number, agency.strip(), actor, note)
    except TicketNotFound:
        fail(f"no ticket {tracking}")
    except ValueError as error:  # UnknownAgency, TransitionRefused
        fail(str(error))
    assert view.agency is not None
    typer.echo(
        f"ticket {view.tracking}: {view.status} to {view.agency} ({agency_name(view.agency)}) "
        f"(by {actor})"
    )
