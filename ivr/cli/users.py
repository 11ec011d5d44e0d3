"""The people who use the system: ``ivr users add | list | disable | password | pin``.

Passwords and PINs are asked twice without echo, or read from stdin (``--password-stdin``,
``--pin-stdin``: one line, for scripts); they are stored only as argon2id hashes.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

if TYPE_CHECKING:
    from ivr.users.store import UserStore

app = typer.Typer(no_args_is_help=True, help="Agents, supervisors and admins.")


def _store() -> UserStore:
    from ivr.provinces import all_provinces
    from ivr.tickets.db import open_database
    from ivr.users.store import UserStore

    provinces = frozenset(p.code for p in all_provinces())
    return UserStore(open_database(get_settings().db_url), provinces)


def _secret(what: str, from_stdin: bool) -> str:
    """A password or PIN: one line of stdin, or typed twice at a prompt (not echoed)."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            fail(f"no {what} on standard input")
        return line
    if not sys.stdin.isatty():
        fail(f"no terminal to ask for the {what}: use --{what}-stdin")
    return typer.prompt(what.capitalize(), hide_input=True, confirmation_prompt=True)


def _run(change: object) -> None:
    from ivr.users.store import UserError

    try:
        return change()  # type: ignore[operator]
    except UserError as error:
        fail(str(error))


@app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="agent, supervisor, national or admin")],
    province: Annotated[
        str | None, typer.Option(help="A province code (agents, supervisors)")
    ] = None,
    extension: Annotated[str | None, typer.Option(help="Asterisk endpoint, e.g. PJSIP/201")] = None,
    phone: Annotated[str | None, typer.Option(help="The agent's own phone, e.g. 0912…")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Add a user; the password is asked twice (or read from stdin)."""
    from ivr.users.store import UserError, check_password

    store = _store()
    if store.get(name) is not None:
        fail(f"there is already a user {name!r}")
    password = _secret("password", password_stdin)
    try:
        check_password(password)
        user = store.add(
            name, role, password=password, province=province, extension=extension, phone=phone
        )
    except UserError as error:
        fail(str(error))
    where = f" in {user.province}" if user.province else ""
    typer.echo(f"added {user.role} {user.name}{where}")


@app.command("list")
def users_list() -> None:
    """Every user with role, province, extension, phone and whether a PIN is set."""
    rows = _store().list()
    if not rows:
        typer.echo("no users (ivr users add NAME --role agent --province qom …)")
        return
    for u in rows:
        state = "" if u.active else "  (disabled)"
        pin = "pin" if u.pin_hash else "-"
        typer.echo(
            f"{u.name:<20} {u.role:<10} {u.province or '-':<10} {u.extension or '-':<14} "
            f"{u.phone or '-':<12} {pin}{state}"
        )


@app.command("disable")
def users_disable(name: str) -> None:
    """Take every right away (the row stays: calls and tickets may name the user)."""
    store = _store()
    _run(lambda: store.disable(name))
    typer.echo(f"disabled {name}")


@app.command("password")
def users_password(
    name: str, password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False
) -> None:
    """Set a new password."""
    store = _store()
    if store.get(name) is None:
        fail(f"no user {name!r}")
    password = _secret("password", password_stdin)
    _run(lambda: store.set_password(name, password))
    typer.echo(f"password of {name} changed")


@app.command("pin")
def users_pin(name: str, pin_stdin: Annotated[bool, typer.Option("--pin-stdin")] = False) -> None:
    """Set the PIN (4–8 digits) the agents' Twilio line asks for."""
    store = _store()
    if store.get(name) is None:
        fail(f"no user {name!r}")
    pin = _secret("pin", pin_stdin)
    _run(lambda: store.set_pin(name, pin))
    typer.echo(f"PIN of {name} set")
