"""One hotline process: the web app, the FastAGI server, the AMI listener and the scheduler.

Start-up checks first and binds both listening sockets before anything runs, so a schema this
version does not know or a port someone else holds stops the process with one line instead of
leaving half a server behind. uvicorn then owns the main thread; the rest run beside it and are
stopped in order when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading

import anyio.to_thread
import uvicorn

from ivr import heap
from ivr.scheduler import SchedulerStatus, run_scheduler
from ivr.services import build_services, warm_up
from ivr.settings import Settings
from ivr.telephony.asterisk import agi_server
from ivr.web.app import create_app
from ivr.web.playback import SigningKeyMissing, check_signing_key
from ivr.web.twilio_recordings import ProxyUnusable, check_proxy
from ivr.web.workers import OTHER_WORKERS

log = logging.getLogger(__name__)
LISTEN_BACKLOG = 2048


class StartupError(Exception):
    """The hotline cannot start (the message says why, in one line)."""


def run_hotline(settings: Settings, host: str, port: int, *, scheduler: bool) -> None:
    # Refuses a schema it does not know; an unreachable database is no reason to refuse
    # callers: their tickets are spooled until it is back.
    services = build_services(settings, outage_ok=True)
    try:
        check_signing_key(settings)
        check_proxy(settings)
    except (SigningKeyMissing, ProxyUnusable) as error:
        raise StartupError(str(error)) from None
    web_socket = bind_web(host, port)
    try:
        agi = agi_server(services, settings)  # Asterisk's calls, beside Twilio's webhooks
    except OSError as error:
        web_socket.close()
        where = f"{settings.agi_host}:{settings.agi_port}"
        raise StartupError(f"FastAGI cannot listen on {where}: {error.strerror}") from None
    agi.serve_in_thread()
    agi_host, agi_port = agi.address
    log.info("FastAGI listening on %s:%d", agi_host, agi_port)
    ami = None
    if settings.ami_username:  # queue waits, abandons and agents into the call records
        from ivr.telephony.queue_events import start_queue_events

        ami, _recorder = start_queue_events(services.calls.engine, settings)
    stop = threading.Event()
    status = SchedulerStatus(settings, enabled=scheduler)
    if scheduler:
        # A daemon thread: it follows or leads beside uvicorn and never keeps the process alive.
        status.thread = threading.Thread(
            target=run_scheduler, args=(settings, stop, status), name="ivr-scheduler", daemon=True
        )
        status.thread.start()

    # uvicorn re-raises SIGTERM once it has shut down gracefully; the default action would end
    # the process before the FastAGI calls, AMI and the scheduler are stopped and the lock given
    # back. Turning it into SystemExit runs the `finally` below (exit status 143).
    def _terminated(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminated)
    shown_host, shown_port = web_socket.getsockname()[:2]
    log.info("web app listening on %s", web_url(shown_host, shown_port))
    try:
        warm_up(services, settings.province)  # once both ports are ours: a taken one is one line
        # The app is told the real bind address (the /try page is open only on loopback).
        app = create_app(settings.model_copy(update={"web_host": host}), services, scheduler=status)
        log.debug("%d objects made at start frozen out of garbage collection", heap.settle())
        config = uvicorn.Config(
            app,
            log_config=None,  # our logging format (ivr.cli.serve); uvicorn's loggers propagate
            log_level=logging.getLogger().getEffectiveLevel(),
            access_log=True,  # one line per request: uvicorn.access
        )
        server = uvicorn.Server(config)
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(_serve(server, web_socket))
    finally:
        agi.shutdown()
        if ami is not None:
            ami.close()
        stop.set()
        if status.thread is not None:
            status.thread.join(timeout=30)
        web_socket.close()
        log.info("hotline stopped")


async def _serve(server: uvicorn.Server, web_socket: socket.socket) -> None:
    """uvicorn on its socket, with no more worker threads than database connections: calls'
    webhooks have their own (``ivr.web.workers``), the other synchronous routes anyio's."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = OTHER_WORKERS
    await server.serve(sockets=[web_socket])


def bind_web(host: str, port: int) -> socket.socket:
    """The web app's listening socket, bound now so a taken port is one clear error."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as error:
        raise StartupError(f"the web app cannot listen on {host}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once (TIME_WAIT)
    try:
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        raise StartupError(f"the web app cannot listen on {host}:{port}: {reason}") from None
    return sock


def web_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
