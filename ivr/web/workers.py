"""The worker threads that carry out calls' webhooks, apart from the rest of the web app's.

A Twilio turn reads and writes the database, so it cannot run on the event loop. A pool of its
own means a busy desk can never hold the threads a caller on the line needs, nor the other way
round. Both pools together are no larger than the database pool (``POOL_SIZE``): a thread that
could only queue for a connection is better left as a queued request.

The hand-over is a queue the threads read and ``call_soon_threadsafe`` back: the least a thread
hop can do. ``loop.run_in_executor`` wraps each job in two futures, a semaphore and a lock on
each side, which cost 40 µs of CPU a turn more at 20 concurrent turns (a tenth of a turn; anyio's
``run_sync``, the way FastAPI runs synchronous routes, costs more still).

A thread keeps its database connection from one turn to the next while turns keep coming
(``ivr.tickets.kept``): a pool checkout saved for each of a turn's two to four statements. Each
thread still uses one connection at a time, so the pool bound above holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any, ParamSpec, TypeVar

from ivr.tickets import kept
from ivr.tickets.db import POOL_SIZE

CALL_WORKERS = 12
"""Threads for calls' turns (``ivr.web.twilio``); the queue's and agents' routes are anyio's."""
KEEP_IDLE_S = 1.0
"""A call worker with no turn for this long gives its kept database connection back: well
inside the pool's idle time before a ping (``ivr.tickets.db.PING_IDLE_S``), so a kept
connection is one a pooled connection would have been lent as it is."""
OTHER_WORKERS = POOL_SIZE - CALL_WORKERS
"""Threads for every other synchronous route (the desk, health, the try page): anyio's."""

P = ParamSpec("P")
R = TypeVar("R")
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]

_jobs: SimpleQueue[_Job] = SimpleQueue()
_threads: list[threading.Thread] = []
_starting = threading.Lock()


async def on_call_worker(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``function(*args, **kwargs)`` on a call worker thread, awaited. A request cancelled
    meanwhile (the client went away) leaves the function to finish; its result is dropped."""
    if len(_threads) < CALL_WORKERS:
        _start_worker()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()
    _jobs.put((loop, future, functools.partial(function, *args, **kwargs)))
    return await future


def _start_worker() -> None:
    """One more thread, up to ``CALL_WORKERS``: started with the first turns, not at import."""
    with _starting:
        if len(_threads) >= CALL_WORKERS:
            return
        # A daemon: the server drains its requests before it exits, so none is mid-turn then.
        thread = threading.Thread(target=_work, name=f"call_{len(_threads)}", daemon=True)
        thread.start()
        _threads.append(thread)


def _forget_threads() -> None:
    """A forked child has none of its parent's threads: it starts its own."""
    global _jobs, _starting
    _jobs, _starting = SimpleQueue(), threading.Lock()
    _threads.clear()


os.register_at_fork(after_in_child=_forget_threads)


def _work() -> None:
    kept.keep_connections()
    while True:
        try:
            loop, future, job = _jobs.get(timeout=KEEP_IDLE_S)
        except Empty:  # no turn for a while: the kept database connections go back
            kept.release()
            loop, future, job = _jobs.get()
        try:
            result = job()
        except BaseException as error:  # handed to the awaiting request, whatever it is
            _deliver(loop, future, None, error)
        else:
            _deliver(loop, future, result, None)


def _deliver(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    error: BaseException | None,
) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
