"""The `ivr` command: one module per group of commands, put together here.

``main`` is the console script. It checks every setting before any command runs and turns the
errors a user can cause — a bad setting, a bad option, a database that is unreachable or has an
unknown schema, a prompt catalogue that cannot be used, a file that cannot be read — into one
line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from ivr.cli import (
    calendar,
    callbacks,
    db,
    flow,
    outbox,
    phone,
    prompts,
    queue,
    report,
    serve,
    speak,
    supervisors,
    tickets,
    users,
)
from ivr.cli.usage import Refused

app = typer.Typer(
    no_args_is_help=True, help="ivr124: the 124 hotline.", pretty_exceptions_show_locals=False
)


@app.callback()
def _check_settings() -> None:
    """Every command starts with valid settings (an unknown IVR_* name is only warned about)."""
    from ivr.settings import get_settings, unknown_variables

    get_settings()
    for name in unknown_variables():
        typer.echo(f"ivr: warning: {name} is not a setting of ivr124 (ignored)", err=True)


app.command()(serve.serve)
app.command()(serve.scheduler)
app.command()(serve.settings)
app.command()(phone.call)
app.add_typer(speak.app, name="speak")
app.add_typer(prompts.app, name="prompts")
app.add_typer(db.app, name="db")
app.add_typer(tickets.app, name="tickets")
app.add_typer(calendar.app, name="calendar")
app.add_typer(supervisors.app, name="supervisors")
app.add_typer(outbox.app, name="outbox")
app.add_typer(flow.app, name="flow")
app.add_typer(queue.app, name="queue")
app.add_typer(callbacks.app, name="callbacks")
app.add_typer(users.app, name="users")
app.command()(report.report)

USAGE_ERROR = 2
FAILURE = 1


def main(argv: list[str] | None = None) -> None:
    """Run ``ivr`` with ``argv`` (default: the command line); exits with the command's status."""
    sys.exit(run(argv))


def run(argv: list[str] | None = None) -> int:
    """The command's exit status; every error a user can cause is one line on stderr."""
    try:
        status = app(args=argv, prog_name="ivr", standalone_mode=False)
    except typer.TyperException as error:  # a bad option or argument (typer's own click)
        if type(error).__name__ == "NoArgsIsHelpError":
            return USAGE_ERROR  # the help has been printed
        ctx = getattr(error, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else "ivr: "
        return _fail(f"{where}{_one_line(error.format_message())}", error.exit_code)
    except Refused as error:
        return _fail(f"{_command_path(argv)}: {_one_line(str(error))}", FAILURE)
    except typer.Abort:
        return _fail("ivr: aborted", FAILURE)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        message = user_error(error)
        if message is None:
            raise  # a bug: its traceback is what a developer needs
        return _fail(f"ivr: {message}", FAILURE)
    return status if isinstance(status, int) else 0


def _command_path(argv: list[str] | None) -> str:
    """The command as typed (``ivr tickets show``): the leading words of ``argv`` that name
    a group or a command."""
    words, command = ["ivr"], typer.main.get_command(app)
    for word in sys.argv[1:] if argv is None else argv:
        commands = getattr(command, "commands", None)
        if not commands or word not in commands:
            break
        words.append(word)
        command = commands[word]
    return " ".join(words)


def user_error(error: BaseException) -> str | None:
    """The one line for an error a user or the environment caused; None for a bug."""
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError

    from ivr.prompts import PromptError
    from ivr.server import StartupError
    from ivr.settings import describe_error
    from ivr.tickets.db import SchemaError

    if isinstance(error, ValidationError) and error.title == "Settings":
        return describe_error(error)
    if isinstance(error, SchemaError | PromptError | StartupError):
        return _one_line(str(error))
    if isinstance(error, OperationalError):
        reason = _one_line(str(error.orig)) if error.orig is not None else "no answer"
        return f"database error: {reason}"
    if isinstance(error, OSError) and error.filename is not None:  # a path, or the disk
        return _one_line(f"{error.strerror}: {str(error.filename)[:200]}")
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(message: str, status: int) -> int:
    typer.echo(message, err=True)
    return status
