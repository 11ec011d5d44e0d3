"""The e-mail outbox: what waits, what went out, what failed; and sending a failed one again."""

from __future__ import annotations

from typing import Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Escalation mails: list them, retry a failed one.")

MAX_LIMIT = 10_000


@app.command("list")
def outbox_list(
    state: Annotated[
        str | None, typer.Option("--state", help="pending, sent or failed; default: all")
    ] = None,
    limit: Annotated[int, typer.Option(help=f"How many, 1 to {MAX_LIMIT:,}")] = 50,
) -> None:
    """The newest mails first, with their state, attempts and last error."""
    from ivr.clock import jalali
    from ivr.notify import OUTBOX_STATES, list_outbox, mail_state
    from ivr.tickets.db import open_database

    if state is not None and state not in OUTBOX_STATES:
        fail(f"--state must be one of {', '.join(OUTBOX_STATES)}")
    if not 1 <= limit <= MAX_LIMIT:
        fail(f"--limit must be between 1 and {MAX_LIMIT:,}")
    rows = list_outbox(open_database(get_settings().db_url), state, limit=limit)
    if not rows:
        typer.echo("no mails" + (f" {state}" if state else ""))
        return
    for row in rows:
        when = jalali(row.sent_at) if row.sent_at else f"not before {jalali(row.not_before)}"
        line = (
            f"{row.id:>5}  {mail_state(row):<8} {row.step:<13} {row.recipient:<32} {when}  "
            f"attempts {row.attempts}"
        )
        typer.echo(line + (f"  last error: {row.last_error}" if row.last_error else ""))


@app.command("retry")
def outbox_retry(
    mail_id: Annotated[int, typer.Argument(help="The mail's id (outbox list)")],
) -> None:
    """Send a failed mail again: its attempts start from 0 (it goes out in office hours)."""
    from ivr.notify import retry_mail
    from ivr.tickets.db import open_database

    try:
        row = retry_mail(open_database(get_settings().db_url), mail_id)
    except (LookupError, ValueError) as error:
        fail(str(error).strip("'\""))
    typer.echo(f"mail {row.id} to {row.recipient} queued again")
