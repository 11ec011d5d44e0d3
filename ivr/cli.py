"""The `ivr` command: serve the hotline, walk the menus in a terminal, manage prompts, tickets."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from ivr.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="ivr124: the 124 hotline.")
speak_app = typer.Typer(no_args_is_help=True, help="Print Persian speech as words, to check it.")
prompts_app = typer.Typer(no_args_is_help=True, help="The prompt catalogue's audio.")
db_app = typer.Typer(no_args_is_help=True, help="The shared database.")
tickets_app = typer.Typer(no_args_is_help=True, help="Look at tickets.")
app.add_typer(speak_app, name="speak")
app.add_typer(prompts_app, name="prompts")
app.add_typer(db_app, name="db")
app.add_typer(tickets_app, name="tickets")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Web bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Web port")] = None,
) -> None:
    """Start the web app (Twilio webhooks, prompt audio)."""
    import uvicorn

    from ivr.web.app import create_app

    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=host or settings.web_host,
        port=port or settings.web_port,
        log_level="warning",
    )


@app.command()
def call(
    keys: Annotated[
        str | None, typer.Option(help='Answers, e.g. "1 4 2 1 # 1"; _ is silence')
    ] = None,
    recording: Annotated[
        Path | None, typer.Option(help="WAV file used as the spoken description")
    ] = None,
    caller: Annotated[str, typer.Option(help="Caller ID")] = "09121234567",
    audio: Annotated[bool, typer.Option(help="Play the prompts' audio")] = False,
) -> None:
    """Call 124 from the terminal: the real flow, real tickets."""
    from ivr.prompts import load_catalog
    from ivr.services import build_services
    from ivr.telephony.terminal import TerminalPhone

    settings = get_settings()
    texts = {pid: prompt.text for pid, prompt in load_catalog(settings.prompts_dir).items()}
    phone = TerminalPhone(
        build_services(settings),
        settings,
        texts,
        keys=keys.split() if keys is not None else None,
        recording=recording,
        caller=caller or None,
        audio=audio,
    )
    phone.run()


@speak_app.command("number")
def speak_number(n: int) -> None:
    """A number in spoken Persian."""
    from ivr.speech import fragment_words, load_fragment_texts, number_fragments

    typer.echo(fragment_words(number_fragments(n), load_fragment_texts()))


@speak_app.command("digits")
def speak_digits(digits: str) -> None:
    """A phone or tracking number read digit by digit."""
    from ivr.speech import (
        digits_fragments,
        fragment_words,
        load_fragment_texts,
        normalize_digits,
        phone_groups,
    )

    plain = normalize_digits(digits)
    typer.echo(fragment_words(digits_fragments(plain, phone_groups(plain)), load_fragment_texts()))


@speak_app.command("date")
def speak_date(day: str) -> None:
    """A date (YYYY-MM-DD, Gregorian) spoken as its Jalali date."""
    from ivr.speech import date_fragments, fragment_words, load_fragment_texts, normalize_digits

    parsed = date.fromisoformat(normalize_digits(day))
    typer.echo(fragment_words(date_fragments(parsed), load_fragment_texts()))


@prompts_app.command("build")
def prompts_build() -> None:
    """Render missing or changed prompts (studio recordings in prompts/fa/ always win)."""
    from ivr.prompts import build

    report = build(get_settings().prompts_dir)
    typer.echo(
        f"rendered {len(report.rendered)}, unchanged {len(report.unchanged)}, "
        f"studio {len(report.studio)}, removed {len(report.removed)}"
    )


@prompts_app.command("install")
def prompts_install(
    asterisk: Annotated[Path, typer.Option(help="Asterisk's sounds directory")],
) -> None:
    """Write every prompt as 8 kHz mono 16-bit WAV under DIR/fa/ivr124/."""
    from ivr.prompts import install_asterisk

    count = install_asterisk(get_settings().prompts_dir, asterisk)
    typer.echo(f"installed {count} prompts under {asterisk / 'fa' / 'ivr124'}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema."""
    from ivr.tickets.db import upgrade

    settings = get_settings()
    if settings.db_url.startswith("sqlite"):
        settings.storage_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)
    typer.echo("database is up to date")


@tickets_app.command("list")
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


@tickets_app.command("show")
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


if __name__ == "__main__":
    app()
