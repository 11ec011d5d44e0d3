"""The long-running commands (the whole hotline, or the scheduler alone) and the settings they
run with."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from ivr.settings import Settings, get_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Our format for everything (uvicorn's access log included), at ``IVR_LOG_LEVEL``."""
    level = getattr(logging, settings.log_level.upper())
    logging.basicConfig(level=level, format=LOG_FORMAT, force=True)
    # APScheduler says "Running job …" at every run; our own job lines are DEBUG already.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))


def serve(
    host: Annotated[str | None, typer.Option(help="Web bind address")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Web port")] = None,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler", help="Do not run the scheduler here (run `ivr scheduler` elsewhere)"
        ),
    ] = False,
) -> None:
    """Start the hotline: web app (Twilio webhooks, prompt audio, /healthz), FastAGI server for
    Asterisk and, unless told not to, the scheduler."""
    from ivr.server import run_hotline

    settings = get_settings()
    configure_logging(settings)
    run_hotline(
        settings,
        host or settings.web_host,
        port or settings.web_port,
        scheduler=settings.scheduler_enabled and not no_scheduler,
    )


def scheduler() -> None:
    """Run only the scheduler (overdue watch, nightly report) in the foreground until stopped.

    On several nodes sharing PostgreSQL one leads and the others wait to take over.
    """
    import signal
    import threading

    from ivr.scheduler import run_scheduler
    from ivr.tickets.db import open_database

    settings = get_settings()
    configure_logging(settings)
    open_database(settings.db_url).dispose()  # the schema check `ivr serve` makes too
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        logging.getLogger("ivr.scheduler").info("%s received", name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run_scheduler(settings, stop)


def settings(
    banner: Annotated[
        bool, typer.Option("--banner", help="Where to point Twilio, Asterisk and a browser")
    ] = False,
) -> None:
    """The settings in force (IVR_* variables and defaults), secrets hidden."""
    current = get_settings()
    typer.echo(banner_text(current) if banner else settings_text(current))


def settings_text(settings: Settings) -> str:
    from ivr.settings import ENV_PREFIX, SECRET_FIELDS

    lines = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if name in SECRET_FIELDS:
            shown = "(set)" if value else ""
        elif name in ("database_url", "smtp_url") and value:
            from sqlalchemy.engine import make_url

            shown = make_url(value).render_as_string(hide_password=True)
        else:
            shown = str(value).lower() if isinstance(value, bool) else str(value)
        lines.append(f"{ENV_PREFIX}{name.upper()}={shown}")
    return "\n".join(lines)


def banner_text(settings: Settings) -> str:
    """What ``make run`` prints before ``ivr serve``: the addresses it will really use."""
    from ivr import DIALPLANS_DIR
    from ivr.server import web_url

    web = web_url(settings.web_host, settings.web_port)
    agi = f"{settings.agi_host}:{settings.agi_port}"
    public = settings.public_url.rstrip("/") or "<your public URL>"
    command = sys.argv[0] if sys.argv and Path(sys.argv[0]).name == "ivr" else "ivr"
    lines = [
        f"ivr124 is starting on {web} (FastAGI on {agi}).",
        f"  Health:   {web}/healthz",
        f"  Twilio:   point the number's Voice webhook (POST) at {public}/twilio/voice",
        f"            and its status callback at {public}/twilio/status.",
    ]
    if not settings.twilio_auth_token:
        lines.append("            Set IVR_TWILIO_AUTH_TOKEN: until then Twilio's requests get 403.")
    if not settings.public_url:
        lines.append("            Behind a proxy, set IVR_PUBLIC_URL to the address Twilio uses.")
    lines += [
        f"  Asterisk: include {DIALPLANS_DIR / 'extensions.conf'};",
        f"            its calls reach FastAGI on {agi}.",
        f"  Desk:     {web}/desk/ for agents and supervisors; no account exists at first:",
        f"            {command} users add admin --role admin   (asks the password twice)",
        f"  Terminal phone, in another shell:  {command} call",
        f"  Storage:  {settings.storage_dir}",
    ]
    return "\n".join(lines)
