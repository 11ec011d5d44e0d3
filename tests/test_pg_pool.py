"""The PostgreSQL pool pings only connections that sat idle (``ivr.tickets.db``): a server
that dropped a connection while it was idle is never seen by a caller, and a connection used
a moment ago is lent without a round trip, on a real PostgreSQL."""

from __future__ import annotations

import pytest
from pg import pg_url  # noqa: F401  (fixture)
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from ivr.tickets import db


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def terminate(url: str, pid: int) -> None:
    """What a PostgreSQL restart (or an idle timeout) does to a pooled connection."""
    admin = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    finally:
        admin.dispose()


def test_a_connection_dropped_while_idle_is_replaced_before_use(
    pg_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = db.make_engine(pg_url)
    try:
        first = backend_pid(engine)
        terminate(pg_url, first)
        monkeypatch.setattr(db, "PING_IDLE_S", 0.0)  # it has been idle "long enough"
        assert backend_pid(engine) != first  # pinged, found gone, replaced: no error
    finally:
        engine.dispose()


def test_a_connection_used_a_moment_ago_is_lent_without_a_ping(
    pg_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No ping, so the dropped connection's error reaches one statement; SQLAlchemy then
    invalidates the pool and the next statement has a new connection."""
    engine = db.make_engine(pg_url)
    try:
        first = backend_pid(engine)
        terminate(pg_url, first)
        monkeypatch.setattr(db, "PING_IDLE_S", 3600.0)
        with pytest.raises(OperationalError):
            backend_pid(engine)
        assert backend_pid(engine) != first
    finally:
        engine.dispose()
