"""The `ivr` command: one module per group of commands, put together here."""

from __future__ import annotations

import typer

from ivr.cli import calendar, callbacks, db, phone, prompts, serve, speak, tickets

app = typer.Typer(no_args_is_help=True, help="ivr124: the 124 hotline.")
app.command()(serve.serve)
app.command()(serve.scheduler)
app.command()(phone.call)
app.add_typer(speak.app, name="speak")
app.add_typer(prompts.app, name="prompts")
app.add_typer(db.app, name="db")
app.add_typer(tickets.app, name="tickets")
app.add_typer(calendar.app, name="calendar")
app.add_typer(callbacks.app, name="callbacks")
