"""The worker threads that carry out calls' webhooks, apart from the rest of the web app's.

A Twilio turn reads and writes the database, so it cannot run on the event loop. Handing it to
a thread through ``loop.run_in_executor`` costs about half of what anyio's ``run_sync`` (the
way FastAPI runs synchronous routes) costs per call, and a pool of its own means a busy desk
can never hold the threads a caller on the line needs, nor the other way round. Both pools
together are no larger than the database pool (``POOL_SIZE``): a thread that could only queue
for a connection is better left as a queued request.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from ivr.tickets.db import POOL_SIZE

CALL_WORKERS = 12
"""Threads for calls' turns (``ivr.web.twilio``); the queue's and agents' routes are anyio's."""
OTHER_WORKERS = POOL_SIZE - CALL_WORKERS
"""Threads for every other synchronous route (the desk, health, the try page): anyio's."""

_calls = ThreadPoolExecutor(max_workers=CALL_WORKERS, thread_name_prefix="call")

P = ParamSpec("P")
R = TypeVar("R")


async def on_call_worker(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``function(*args, **kwargs)`` on a call worker thread, awaited."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_calls, functools.partial(function, *args, **kwargs))
