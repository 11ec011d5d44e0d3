"""Engines, schema upgrades and sessions: the only place that knows which database we talk to.

SQLite (a laptop, the test PBX) and PostgreSQL (several nodes in production) are both first class,
so the differences are settled here once and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_MS = 10_000
"""How long a SQLite writer waits for another: nodes sharing a file take turns, not fail."""


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs to be shared by threads and processes."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # pre_ping: a PostgreSQL restart must not cost the next caller their ticket. A short
        # connect timeout: the caller is on the line (Twilio gives a webhook 15 s), and the
        # service's retries and spool only help if an unreachable server fails fast.
        connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 2}
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if (
        parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers (the web desk) run while the IVR writes; busy_timeout makes
        # concurrent writers wait; foreign keys are off by default in SQLite.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def alembic_config(url: str) -> Config:
    """Alembic's configuration built in code, so an installed package needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolates '%'; a password may contain one.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to the newest schema (``ivr db upgrade``)."""
    command.upgrade(alembic_config(url), revision)


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
