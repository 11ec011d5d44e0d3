"""The connection a call worker keeps while it has turns to do: a pool checkout saved per use.

A call's turn borrows a connection two to four times (its load, its save, a ticket's lookup
and insert). SQLAlchemy's checkout and return of a pooled connection cost about 16 µs of CPU a
use, more than SQLite's own share of the turn (a call's load: 19 µs through the pool, 3 µs on
the driver alone). A thread that asks to (``keep_connections``:
the call workers of ``ivr.web.workers``) keeps the first connection it borrows from a pool and
uses it again until it calls ``release``, which a worker does when it has had no turn for a
second. So a kept connection is never idle for long (it needs no ping: ``ivr.tickets.db``'s
pool pings only after seconds), and an idle server keeps none.

Every other thread (an AGI call's, the desk's, the scheduler's) borrows from the pool as
before, and so does a keeping thread whose connection is in use further up its stack or was
opened with other execution options: a thread keeps one connection per pool, at most.

When any connection of any pool is invalidated (SQLAlchemy's disconnect handling: the server
went away), every thread drops its kept connection at its next use, as the pool drops its own.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import Pool

log = logging.getLogger(__name__)

_thread = threading.local()
"""Per thread: ``keeps`` (it asked to), ``held`` (its kept connection of each pool)."""
_generation = 0
"""Moves on when a connection is invalidated anywhere: kept ones made before are dropped."""


class _Kept:
    __slots__ = ("busy", "connection", "generation", "options")

    def __init__(self, connection: Connection, options: object) -> None:
        self.connection = connection
        self.options = options
        """The execution options it was opened with (autocommit or not)."""
        self.generation = _generation
        self.busy = False


def keep_connections() -> None:
    """From now on this thread keeps a connection of each pool it uses, until ``release``."""
    _thread.keeps = True


def release() -> None:
    """Give this thread's kept connections back to their pools."""
    held: dict[Pool, _Kept] | None = getattr(_thread, "held", None)
    while held:
        _pool, kept = held.popitem()
        _close(kept.connection)


def watch(engine: Engine) -> None:
    """Drop every kept connection when one of ``engine``'s connections is invalidated."""
    event.listen(engine, "invalidate", _invalidated)


def _invalidated(_dbapi_connection: Any, _record: Any, _error: BaseException | None) -> None:
    global _generation
    _generation += 1


@contextmanager
def connection(engine: Engine) -> Iterator[Connection]:
    """``engine.connect()``; on a keeping thread, the connection it keeps (made at first use)."""
    kept = _take(engine)
    if kept is None:
        with engine.connect() as borrowed:
            yield borrowed
        return
    try:
        yield kept.connection
    finally:
        kept.busy = False
        _settle(engine.pool, kept)


def _take(engine: Engine) -> _Kept | None:
    if not getattr(_thread, "keeps", False):
        return None
    held: dict[Pool, _Kept] = _thread.__dict__.setdefault("held", {})
    options = engine.get_execution_options()
    kept = held.get(engine.pool)
    if kept is not None and (kept.busy or kept.options != options):
        return None  # in use further up the stack, or not the same options: borrow one
    if kept is not None and (kept.generation != _generation or kept.connection.invalidated):
        del held[engine.pool]
        _close(kept.connection)
        kept = None
    if kept is None:
        kept = held[engine.pool] = _Kept(engine.connect(), options)
    kept.busy = True
    return kept


def _settle(pool: Pool, kept: _Kept) -> None:
    """After a use: what the pool does to a connection given back. An invalidated one is
    dropped; a transaction left open (a failure half-way) is rolled back, or the connection
    dropped, so the next use starts clean and SQLite's writer lock is free."""
    connection = kept.connection
    try:
        if not connection.invalidated and not _left_open(connection):
            return
        if not connection.invalidated:
            connection.rollback()
            connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            return
    except Exception:
        log.warning("a kept database connection could not be reset: dropped", exc_info=True)
    _thread.held.pop(pool, None)
    _close(connection)


def _left_open(connection: Connection) -> bool:
    """A transaction open on the connection, SQLAlchemy's or the driver's own (statements
    run on the DBAPI cursor, ``ivr.tickets.prepared``, begin one SQLAlchemy does not see)."""
    if connection.in_transaction():
        return True
    raw = connection.connection.dbapi_connection
    in_transaction = getattr(raw, "in_transaction", None)  # sqlite3
    if isinstance(in_transaction, bool):
        return in_transaction
    info = getattr(raw, "info", None)  # psycopg: 0 is IDLE, outside any transaction
    return info is not None and info.transaction_status != 0


def _close(connection: Connection) -> None:
    with contextlib.suppress(Exception):  # a connection already broken is dropped anyway
        connection.close()
