"""One hotline process: the web app, the FastAGI server, the AMI listener and the scheduler.

uvicorn owns the main thread; the rest run beside it and are stopped in order when it returns.
"""

from __future__ import annotations

import logging
import signal
import threading

import uvicorn

from ivr.scheduler import run_scheduler
from ivr.services import build_services
from ivr.settings import Settings
from ivr.telephony.asterisk import agi_server
from ivr.web.app import create_app


def run_hotline(settings: Settings, host: str, port: int, *, scheduler: bool) -> None:
    services = build_services(settings)
    agi = agi_server(services, settings)  # Asterisk's calls, beside Twilio's webhooks
    agi.serve_in_thread()
    ami = None
    if settings.ami_username:  # queue waits, abandons and agents into the call records
        from ivr.telephony.queue_events import start_queue_events

        ami, _recorder = start_queue_events(services.calls.engine, settings)
    stop = threading.Event()
    scheduler_thread = None
    if scheduler:
        # A daemon thread: it follows or leads beside uvicorn and never keeps the process alive.
        scheduler_thread = threading.Thread(
            target=run_scheduler, args=(settings, stop), name="ivr-scheduler", daemon=True
        )
        scheduler_thread.start()

    # uvicorn re-raises SIGTERM once it has shut down gracefully; the default action would end
    # the process before the FastAGI calls, AMI and the scheduler are stopped and the lock given
    # back. Turning it into SystemExit runs the `finally` below (exit status 143).
    def _terminated(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminated)
    try:
        app = create_app(settings.model_copy(update={"web_host": host}), services)  # the real bind
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        agi.shutdown()
        if ami is not None:
            ami.close()
        stop.set()
        if scheduler_thread is not None:
            scheduler_thread.join(timeout=30)
        logging.getLogger(__name__).info("hotline stopped")
