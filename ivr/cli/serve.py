"""The long-running commands: the whole hotline, or the scheduler alone."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ivr.settings import get_settings


def serve(
    host: Annotated[str | None, typer.Option(help="Web bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Web port")] = None,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler", help="Do not run the scheduler here (run `ivr scheduler` elsewhere)"
        ),
    ] = False,
) -> None:
    """Start the hotline: web app (Twilio webhooks, prompt audio), FastAGI server for Asterisk
    and, unless told not to, the scheduler."""
    from ivr.server import run_hotline

    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per run is ours
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

    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        logging.getLogger("ivr.scheduler").info("%s received", name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run_scheduler(settings, stop)
