"""A call worker keeps one connection while it has turns to do (``ivr.tickets.kept``): the
same connection from use to use, none kept by other threads or by an idle worker, a clean one
after a failure half-way, and a new one everywhere once the server dropped one — on SQLite and
on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from test_pg_pool import backend_pid, terminate

from ivr.tickets import db, kept
from ivr.web.workers import on_call_worker

T = TypeVar("T")


def on_keeping_thread(work: Callable[[], T]) -> T:
    """``work()`` on a new thread that keeps connections, released when it is done."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        kept.keep_connections()
        try:
            results.append(work())
        except BaseException as error:
            errors.append(error)
        finally:
            kept.release()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]
    return results[0]


def checkouts(engine: Engine) -> list[int]:
    counted = [0]

    @event.listens_for(engine, "checkout")
    def _count(*_args: object) -> None:
        counted[0] += 1

    return counted


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = db.make_engine(f"sqlite:///{tmp_path}/kept.db")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def raw_id(engine: Engine) -> int:
    with kept.connection(engine) as connection:
        connection.execute(text("SELECT 1")).scalar()
        return id(connection.connection.dbapi_connection)


def test_a_keeping_thread_uses_one_connection_until_it_releases_it(sqlite_engine: Engine) -> None:
    counted = checkouts(sqlite_engine)

    def work() -> tuple[set[int], int]:
        ids = {raw_id(sqlite_engine) for _ in range(5)}
        return ids, sqlite_engine.pool.checkedout()  # type: ignore[attr-defined]

    ids, out_while_kept = on_keeping_thread(work)
    assert len(ids) == 1 and counted[0] == 1 and out_while_kept == 1
    assert sqlite_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_another_thread_borrows_from_the_pool_for_each_use(sqlite_engine: Engine) -> None:
    counted = checkouts(sqlite_engine)
    for _ in range(3):
        raw_id(sqlite_engine)
        assert sqlite_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert counted[0] == 3


def test_a_use_inside_a_use_borrows_a_second_connection(sqlite_engine: Engine) -> None:
    def work() -> tuple[int, int]:
        with kept.connection(sqlite_engine) as outer:
            inner = raw_id(sqlite_engine)
            return id(outer.connection.dbapi_connection), inner

    outer, inner = on_keeping_thread(work)
    assert outer != inner


def test_a_failure_half_way_leaves_no_transaction_and_the_writer_lock_free(
    sqlite_engine: Engine,
) -> None:
    """A write begun on the driver's cursor (as ``ivr.tickets.prepared`` runs statements) and
    not committed: the next use, and another thread's write, find the database free."""

    def work() -> tuple[bool, int]:
        with pytest.raises(RuntimeError), kept.connection(sqlite_engine) as connection:
            connection.connection.dbapi_connection.cursor().execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("the turn failed here")
        elsewhere: list[BaseException] = []

        def other_writer() -> None:
            try:
                with sqlite_engine.begin() as other:
                    other.execute(text("INSERT INTO t VALUES (2)"))
            except BaseException as error:
                elsewhere.append(error)

        writer = threading.Thread(target=other_writer)
        writer.start()
        writer.join(10)
        assert not elsewhere, elsewhere
        with kept.connection(sqlite_engine) as connection:
            still_open = connection.connection.dbapi_connection.in_transaction
            rows = connection.execute(text("SELECT count(*) FROM t")).scalar_one()
        return still_open, rows

    still_open, rows = on_keeping_thread(work)
    assert not still_open
    assert rows == 1  # the other thread's row; the failed turn's was rolled back


def test_an_idle_call_worker_keeps_no_connection(sqlite_engine: Engine) -> None:
    async def turns() -> list[int]:
        return list(
            await asyncio.gather(*(on_call_worker(raw_id, sqlite_engine) for _ in range(20)))
        )

    asyncio.run(turns())
    deadline = time.monotonic() + 5
    while sqlite_engine.pool.checkedout() and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    assert sqlite_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_dropped_server_connection_is_replaced_on_every_keeping_thread(
    pg_url: str,  # noqa: F811
) -> None:
    """The server drops two threads' kept connections (as a restart does): the first statement
    on one of them fails, as it would on a pooled connection, and from then on both threads
    have new ones."""
    engine = db.make_engine(pg_url)
    kept_pids: dict[str, int] = {}
    dropped, failed = threading.Event(), threading.Event()
    after: dict[str, int] = {}

    def thread(name: str, first: bool) -> Callable[[], None]:
        def work() -> None:
            kept_pids[name] = kept_pid()
            dropped.wait(10)
            if first:
                with pytest.raises(OperationalError):
                    kept_pid()
                failed.set()
            else:
                failed.wait(10)
            after[name] = kept_pid()  # b: no error, its connection was dropped first

        return work

    def kept_pid() -> int:
        with kept.connection(engine) as connection:
            return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())

    try:
        threads = [
            threading.Thread(target=on_keeping_thread, args=(thread(name, name == "a"),))
            for name in ("a", "b")
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while len(kept_pids) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        for pid in kept_pids.values():
            terminate(pg_url, pid)
        dropped.set()
        for t in threads:
            t.join(20)
        assert set(after) == {"a", "b"}
        assert after["a"] != kept_pids["a"] and after["b"] != kept_pids["b"]
        assert backend_pid(engine) not in kept_pids.values()
    finally:
        engine.dispose()
