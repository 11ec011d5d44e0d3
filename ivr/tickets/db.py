"""Engines, schema upgrades and sessions: the only place that knows which database we talk to.

SQLite (a laptop, the test PBX) and PostgreSQL (several nodes in production) are both first class,
so the differences are settled here once and nowhere else.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlmodel import Session

from ivr.tickets import kept

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"
SQLITE_BUSY_MS = 1_000
"""How long a SQLite writer waits for another process's write (the CLI, a second node): short,
because a caller waits on the line and a ticket that cannot be written is spooled instead."""
WRITER_WAIT_S = SQLITE_BUSY_MS / 1000
"""How long a thread waits for this process's other writers of the same SQLite file."""
WAL_CHECKPOINT_PAGES = 4_000
"""SQLite copies the WAL back into the database file when it passes this many pages (16 MB),
inside the commit that crossed it. At SQLite's default of 1,000 that was one new ticket in 70,
5–8 ms each (the p99 of ticket creation); at 4,000 it is one in about 280, and since a
checkpoint copies only the last version of each page, the hot index pages are copied once for
four times the commits: 15–25 % more tickets a second, for 16 MB of WAL on disk."""
MAX_ROW_ID = 2**63 - 1
"""The largest id a row can have on either backend (a signed 64-bit integer): a number past it
typed into a URL or a command names no row, rather than overflowing the driver."""


def row_id(text: str) -> int | None:
    """The id ``text`` names (ASCII digits), if a row can have it; None otherwise."""
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ROW_ID else None


POOL_SIZE = 20
"""Connections each engine keeps; the web server runs no more worker threads than this."""
POOL_OVERFLOW = 10
"""Extra connections for the threads beside the web workers (FastAGI calls, AMI, scheduler)."""
POOL_TIMEOUT_S = 2.0
"""How long a thread waits for a free connection before the call is handled as an outage."""

_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_writer_locks: dict[str, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(database: str) -> threading.Lock:
    """One lock per SQLite file per process, shared by every engine on it."""
    key = str(Path(database).resolve())
    with _writer_locks_guard:
        return _writer_locks.setdefault(key, threading.Lock())


class _SerialCursor(sqlite3.Cursor):
    """Takes the process's writer lock before a statement that starts a write transaction."""

    def execute(self, sql: str, parameters: Any = (), /) -> _SerialCursor:
        connection = self.connection
        assert isinstance(connection, SerialConnection)
        connection.before(sql)
        try:
            super().execute(sql, parameters)
        finally:
            connection.after()
        return self

    def executemany(self, sql: str, parameters: Any, /) -> _SerialCursor:
        connection = self.connection
        assert isinstance(connection, SerialConnection)
        connection.before(sql)
        try:
            super().executemany(sql, parameters)
        finally:
            connection.after()
        return self


class SerialConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions take turns inside the process.

    SQLite allows one writer per file; threads that all ask at once find the file busy and
    back off in sleeps that grow (the busy handler), which made the slowest turns seconds
    long. A lock taken at the first write of a transaction and given back at its commit or
    rollback lets them queue in order instead; the busy timeout is left for other processes.
    """

    writer_lock: threading.Lock | None = None

    def cursor(self, factory: Any = _SerialCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def before(self, sql: str) -> None:
        lock = self.writer_lock
        if lock is None or getattr(self, "_holds", False):
            return
        if sql.lstrip()[:7].upper().startswith(_WRITE_VERBS):
            if not lock.acquire(timeout=WRITER_WAIT_S):
                raise sqlite3.OperationalError("database is locked (by this process's writers)")
            self._holds = True

    def after(self) -> None:
        """A statement that left no transaction open (it failed, or committed itself)."""
        if getattr(self, "_holds", False) and not self.in_transaction:
            self._release()

    def _release(self) -> None:
        if getattr(self, "_holds", False):
            self._holds = False
            assert self.writer_lock is not None
            self.writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs to be shared by threads and processes;
    a connection it drops also drops those the call workers keep (``ivr.tickets.kept``)."""
    engine = _backend_engine(url)
    kept.watch(engine)
    return engine


def _backend_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # pre_ping: a PostgreSQL restart must not cost the next caller their ticket. A short
        # connect timeout: the caller is on the line (Twilio gives a webhook 15 s), and the
        # service's retries and spool only help if an unreachable server fails fast.
        connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 2}
        engine = create_engine(url, connect_args=connect_args, **_pool_options())
        _ping_when_idle(engine)
        return engine
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if (
        parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    file_backed = bool(parsed.database) and parsed.database != ":memory:"
    file_backed = file_backed and not str(parsed.database).startswith("file:")
    connect_args: dict[str, Any] = {"check_same_thread": False}
    if file_backed:
        connect_args["factory"] = SerialConnection
    options = _pool_options() if file_backed else {}
    engine = create_engine(url, connect_args=connect_args, **options)
    lock = _writer_lock(str(parsed.database)) if file_backed else None

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers (the web desk) run while the IVR writes, and with it NORMAL is
        # safe (a power cut may lose the last commits, never corrupt the file) and spares an
        # fsync per commit; busy_timeout makes writers of other processes wait, briefly;
        # foreign keys are off by default in SQLite.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        if isinstance(dbapi_connection, SerialConnection):
            dbapi_connection.writer_lock = lock

    return engine


def one_statement_engine(engine: Engine) -> Engine:
    """The engine for work that is a single statement: on PostgreSQL in autocommit, so it is
    one round trip instead of three (BEGIN, the statement, COMMIT; a statement is atomic by
    itself). The same pool; other backends as they are."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


PING_IDLE_S = 5.0
"""A pooled PostgreSQL connection unused for longer than this is pinged before it is lent."""


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping``, only for connections that sat idle: a PostgreSQL restart must not
    cost the next caller their ticket, but pinging on every checkout cost a round trip for
    each of a turn's two transactions. A connection in use within the last seconds is lent
    as it is; if the server went away since, the statement's error invalidates the whole pool
    (SQLAlchemy's disconnect handling) and the ticket service's retry gets a new connection."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_from = record.info.get("idle_from")
        if idle_from is None or time.monotonic() - idle_from < PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool replaces the connection and tries again
            raise DisconnectionError(f"a pooled connection is gone: {error}") from error


def _pool_options() -> dict[str, Any]:
    return {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW, "pool_timeout": POOL_TIMEOUT_S}


def alembic_config(url: str) -> Config:
    """Alembic's configuration built in code, so an installed package needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates '%'; a password may contain one.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class SchemaError(Exception):
    """The database's schema is not one this version can work with (the message says what to do)."""


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against this version's migrations."""

    current: str | None
    """The stored revision; None: the database was never upgraded (or does not exist yet)."""
    head: str
    """The newest revision this version knows."""
    known: bool
    """False: a revision none of our migrations has, i.e. written by a newer ivr124."""

    @property
    def status(self) -> str:
        """``current``, ``behind``, ``empty`` (never upgraded) or ``unknown``."""
        if not self.known:
            return "unknown"
        if self.current is None:
            return "empty"
        return "current" if self.current == self.head else "behind"


@dataclass(frozen=True)
class UpgradeResult:
    before: str | None
    after: str

    def describe(self, url: str) -> str:
        """What ``ivr db upgrade`` did, in one line."""
        where = shown_url(url)
        if self.before is None:
            return f"created the database schema ({self.after}) in {where}"
        if self.before == self.after:
            return f"the database is already current ({self.after}) in {where}"
        return f"upgraded the database from {self.before} to {self.after} in {where}"


def shown_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


@functools.cache
def _scripts() -> ScriptDirectory:
    """This version's migrations (read once: they do not change while it runs)."""
    return ScriptDirectory.from_config(alembic_config(""))


def schema_state(engine: Engine) -> SchemaState:
    """The schema of the database behind ``engine`` (raises OperationalError if unreachable)."""
    scripts = _scripts()
    with engine.connect() as connection:  # read directly: Alembic's context logs each time
        if inspect(connection).has_table(VERSION_TABLE):
            rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
            current = next(iter(rows.all()), None)
        else:
            current = None
    known = current is None or current in {rev.revision for rev in scripts.walk_revisions()}
    head = scripts.get_current_head()
    assert head is not None, "no migrations shipped"
    return SchemaState(current, head, known)


def _unknown(state: SchemaState, url: str) -> SchemaError:
    return SchemaError(
        f"the database {shown_url(url)} has schema revision {state.current}, which this ivr124 "
        f"does not know (its newest is {state.head}): run a newer ivr124 on it"
    )


def _failed(error: DBAPIError, before: SchemaState, now: SchemaState, url: str) -> SchemaError:
    """A migration the database refused (its tables are not what its revision says, e.g. one
    was dropped by hand): one line with the database's reason and where the schema stands."""
    reason = " ".join(str(error.orig).split()) if error.orig is not None else type(error).__name__
    return SchemaError(
        f"upgrading {shown_url(url)} from {before.current or 'nothing'} failed: {reason[:300]}; "
        f"the database is at {now.current or 'no revision'} (newest {now.head}): repair or "
        "restore it, then run `ivr db upgrade` again"
    )


def upgrade(url: str, revision: str = "head") -> UpgradeResult:
    """Bring the database at ``url`` to the newest schema (``ivr db upgrade``).

    A revision this version does not know (a newer ivr124 wrote it) is refused with
    :class:`SchemaError` rather than handed to Alembic, whose error would not say what to do.
    """
    engine = make_engine(url)
    try:
        before = schema_state(engine)
        if not before.known:
            raise _unknown(before, url)
        try:
            command.upgrade(alembic_config(url), revision)
        except DBAPIError as error:  # a database that is not what its revision says
            raise _failed(error, before, schema_state(engine), url) from error
        after = schema_state(engine).current
    finally:
        engine.dispose()
    assert after is not None
    return UpgradeResult(before.current, after)


def open_database(url: str, *, outage_ok: bool = False) -> Engine:
    """An engine on a database whose schema this version can use, for commands and servers.

    An embedded SQLite database that was never upgraded, or is behind, is upgraded here (one
    machine, nobody else to ask; a file lock keeps two processes starting at once from both
    doing it). PostgreSQL is shared by nodes and upgraded on purpose: behind, it is refused
    with the one line to run. A revision newer than our migrations is refused on both.

    ``outage_ok``: an unreachable database is only logged, for the hotline, whose ticket
    service spools while the database is down (``/healthz`` says so); otherwise the
    ``OperationalError`` is raised.
    """
    engine = make_engine(url)
    try:
        state = schema_state(engine)
    except OperationalError as error:
        if not outage_ok:
            engine.dispose()
            raise
        log.warning("the database %s cannot be reached at start: %s", shown_url(url), error.orig)
        return engine
    if state.status == "current":
        return engine
    if state.status == "unknown":
        engine.dispose()
        raise _unknown(state, url)
    if engine.dialect.name != "sqlite":
        engine.dispose()
        needs = f"has schema {state.current}" if state.current else "has no schema yet"
        raise SchemaError(
            f"the database {shown_url(url)} {needs}, this ivr124 needs {state.head}: "
            "run `ivr db upgrade`"
        )
    with _upgrade_lock(engine):
        result = upgrade(url)
    if result.before != result.after:
        log.info(result.describe(url))
    return engine


@contextlib.contextmanager
def _upgrade_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on a file beside the SQLite database while it is upgraded."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    with open(f"{database}.upgrade.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
