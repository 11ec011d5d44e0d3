"""Prepared statements (``ivr.tickets.prepared``) store and return what ``connection.execute``
does, and fail the way it does, on SQLite and a real PostgreSQL: the ticket and call code that
uses them relies on SQLAlchemy's values and errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pg import db_url, migrated_url, pg_url  # noqa: F401  (fixtures)
from sqlalchemy import Engine, bindparam, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from test_pg_pool import backend_pid, terminate

from ivr.tickets import db
from ivr.tickets.models import TrackingBlock
from ivr.tickets.prepared import Prepared

BLOCK = TrackingBlock.__table__  # type: ignore[attr-defined]
AT = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def engine(migrated_url: str) -> Engine:  # noqa: F811
    made = db.make_engine(migrated_url)
    yield made  # type: ignore[misc]
    made.dispose()


def stored(engine: Engine, block_id: int) -> tuple[object, ...]:
    """The row as the database holds it: text on SQLite, so a format change would show."""
    with engine.connect() as connection:
        return tuple(
            connection.execute(
                text("SELECT node, CAST(allocated_at AS TEXT) FROM tracking_block WHERE id = :i"),
                {"i": block_id},
            ).one()
        )


def test_rows_are_stored_and_read_back_as_connection_execute_does(engine: Engine) -> None:
    add = Prepared(insert(BLOCK).returning(BLOCK.c.id), engine.dialect, ["node", "allocated_at"])
    read = Prepared(
        select(BLOCK.c.node, BLOCK.c.allocated_at).where(BLOCK.c.id == bindparam("block")),
        engine.dialect,
    )
    with engine.begin() as connection:
        prepared_id = add.scalar(connection, {"node": "n1", "allocated_at": AT})
        core_id = connection.execute(
            insert(BLOCK).returning(BLOCK.c.id), {"node": "n1", "allocated_at": AT}
        ).scalar_one()
    assert prepared_id != core_id
    assert stored(engine, prepared_id) == stored(engine, core_id)

    with engine.connect() as connection:
        by_core = connection.execute(
            select(BLOCK.c.node, BLOCK.c.allocated_at).where(BLOCK.c.id == prepared_id)
        ).one()
        row = read.first(connection, {"block": prepared_id})
    assert row is not None and tuple(by_core) == row
    assert row[1] == AT  # a datetime again, through the column's result processor


def test_run_says_how_many_rows_changed_and_run_many_inserts_each(engine: Engine) -> None:
    add = Prepared(insert(BLOCK), engine.dialect, ["node", "allocated_at"])
    with engine.begin() as connection:
        add.run_many(connection, [{"node": f"m{i}", "allocated_at": AT} for i in range(3)])
    rename = Prepared(
        BLOCK.update().where(BLOCK.c.node.like("m_")).values(node="gone"), engine.dialect
    )
    with engine.begin() as connection:
        assert rename.run(connection, {}) == 3
        assert rename.run(connection, {}) == 0


def test_a_broken_constraint_is_sqlalchemys_integrity_error(engine: Engine) -> None:
    add = Prepared(insert(BLOCK), engine.dialect, ["id", "node", "allocated_at"])
    with engine.begin() as connection:
        add.run(connection, {"id": 7, "node": "a", "allocated_at": AT})
    with pytest.raises(IntegrityError), engine.begin() as connection:
        add.run(connection, {"id": 7, "node": "b", "allocated_at": AT})
    assert stored(engine, 7)[0] == "a"


def test_a_connection_the_server_dropped_is_invalidated(
    pg_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As ``connection.execute`` does it: the error is SQLAlchemy's, and the next statement
    gets a new connection instead of the dead one back from the pool."""
    db.upgrade(pg_url)
    engine = db.make_engine(pg_url)
    try:
        monkeypatch.setattr(db, "PING_IDLE_S", 3600.0)  # no ping: the statement meets it
        first = backend_pid(engine)
        terminate(pg_url, first)
        add = Prepared(insert(BLOCK), engine.dialect, ["node", "allocated_at"])
        with pytest.raises(OperationalError) as raised, engine.begin() as connection:
            add.run(connection, {"node": "x", "allocated_at": AT})
        assert raised.value.connection_invalidated
        assert backend_pid(engine) != first
    finally:
        engine.dispose()


def test_an_in_list_is_refused_when_prepared(engine: Engine) -> None:
    """Its SQL depends on the list's length, so there is no one statement to prepare."""
    with pytest.raises(ValueError, match="IN list"):
        Prepared(select(BLOCK.c.id).where(BLOCK.c.node.in_(["a", "b"])), engine.dialect)
