"""Which node's scheduler acts: one leader per database, held by a lock the database releases.

PostgreSQL: a session-level advisory lock on a dedicated connection. The server releases it the
moment that connection ends, whether the process exits, is killed, or its machine drops off the
network (TCP keepalives and ``tcp_user_timeout`` bound that to about 25 s), so a follower that
retries every few seconds takes over well within a minute and no lease table can go stale.
Advisory locks are per database, so deployments (and test databases) on one server never clash.

SQLite: an ``fcntl`` lock on a file beside the database. SQLite is single-machine anyway; the
kernel drops the lock when the process dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)

LEADER_KEY = 124_000_001
"""The advisory lock key of the scheduler's leadership (any constant the app uses nowhere else)."""
JOB_KEYS = {
    "overdue_watch": 124_000_101,
    "nightly_report": 124_000_102,
    "callback_dispatch": 124_000_103,
}
"""Advisory lock keys held while one job runs: see :meth:`Leader.job_guard`."""

KEEPALIVE = {
    # Client side: notice a dead server or network instead of waiting in a read forever.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
SERVER_KEEPALIVE = (
    # Server side: drop a vanished leader's session (and so its lock) within about 25 s.
    "SET tcp_keepalives_idle = 10",
    "SET tcp_keepalives_interval = 5",
    "SET tcp_keepalives_count = 3",
    "SET tcp_user_timeout = 10000",
    "SET statement_timeout = '5s'",
)


class Leader(Protocol):
    """Leadership over one database: take it, keep checking it, give it back."""

    def try_acquire(self) -> bool:
        """True if this process now leads (or already did); never blocks."""
        ...

    def still_leader(self) -> bool:
        """A cheap check that the lock is still held; False once it is lost for good."""
        ...

    def job_guard(self, job_id: str) -> contextlib.AbstractContextManager[bool]:
        """Held around one job run; yields False if that job is still running elsewhere."""
        ...

    def release(self) -> None: ...


def make_leader(db_url: str, node: str, fallback_dir: Path) -> Leader:
    """The leadership lock that fits the database at ``db_url``."""
    url = make_url(db_url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        return PostgresLeader(url, node)
    if backend == "sqlite":
        database = url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            return FileLeader(Path(f"{database}.scheduler.lock"))
        return FileLeader(fallback_dir / "scheduler.lock")
    raise ValueError(f"the scheduler's leader election needs SQLite or PostgreSQL, not {backend}")


def libpq_params(url: URL) -> dict[str, Any]:
    """psycopg connection parameters for an SQLAlchemy URL (query options passed through)."""
    params: dict[str, Any] = {
        key: value
        for key, value in {
            "host": url.host,
            "port": url.port,
            "user": url.username,
            "password": url.password,
            "dbname": url.database,
        }.items()
        if value is not None
    }
    for key, value in url.query.items():
        params[key] = value[-1] if isinstance(value, tuple) else value
    params.setdefault("connect_timeout", 5)
    return params


class PostgresLeader:
    """``pg_try_advisory_lock`` on a connection of its own, kept open while leading."""

    def __init__(self, url: URL, node: str) -> None:
        self._params = {**libpq_params(url), **KEEPALIVE, "application_name": f"ivr-sched:{node}"}
        self._conn: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import psycopg  # the driver only where PostgreSQL is used

        conn = psycopg.connect(autocommit=True, **self._params)
        for statement in SERVER_KEEPALIVE:
            conn.execute(statement)
        return conn

    def try_acquire(self) -> bool:
        import psycopg

        with self._lock:
            if self._conn is not None:
                return True
            try:
                conn = self._connect()
            except psycopg.Error as error:
                log.warning("scheduler: cannot reach PostgreSQL for the leader lock: %s", error)
                return False
            try:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,)).fetchone()
            except psycopg.Error:
                conn.close()
                log.warning("scheduler: leader lock query failed", exc_info=True)
                return False
            if got and got[0]:
                self._conn = conn
                return True
            conn.close()  # a connection per attempt: an idle follower holds none
            return False

    def still_leader(self) -> bool:
        import psycopg

        with self._lock:
            if self._conn is None:
                return False
            try:
                row = self._conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND classid = 0 AND objid = %s AND objsubid = 1",
                    (LEADER_KEY,),
                ).fetchone()
                held = bool(row and row[0] == 1)
            except psycopg.Error as error:
                log.warning("scheduler: leader connection lost: %s", error)
                held = False
            if not held:
                self._close()
            return held

    @contextlib.contextmanager
    def job_guard(self, job_id: str) -> Iterator[bool]:
        """A second advisory lock per job, on a fresh connection, held for the run.

        Leadership alone cannot rule out an overlap: a leader whose lock connection broke may be
        halfway through a run when the next leader starts the same job. Its job connection is
        still alive then, so the new leader's run waits for the next tick instead.
        """
        import psycopg

        try:
            conn = self._connect()
        except psycopg.Error as error:
            log.warning("scheduler: cannot reach PostgreSQL for job %s: %s", job_id, error)
            yield False
            return
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", (JOB_KEYS[job_id],)).fetchone()
            yield bool(got and got[0])
        finally:
            conn.close()  # closing the session releases the lock

    def release(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


class FileLeader:
    """An exclusive ``flock`` on a file next to the SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        with self._lock:
            if self._fd is not None:
                return True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())  # for a human wondering who leads
            self._fd = fd
            return True

    def still_leader(self) -> bool:
        return self._fd is not None

    @contextlib.contextmanager
    def job_guard(self, job_id: str) -> Iterator[bool]:
        """One machine, one lock holder: a process cannot lose the lock and keep running."""
        yield self._fd is not None

    def release(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # closing the descriptor drops the flock
                self._fd = None
