"""Migration 0016's leaner ticket indexes, on SQLite and a real PostgreSQL: a new ticket (no
assignee yet) is not in the assignee index, and "my tickets" still finds its rows through it."""

from __future__ import annotations

import pytest
from pg import db_url, migrated_url  # noqa: F401  (fixtures)
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

MINE = "SELECT id FROM ticket WHERE assignee = 'sara' ORDER BY id"
DROPPED = {"ix_ticket_province", "ix_ticket_category", "ix_ticket_escalation_level"}


@pytest.fixture
def engine(migrated_url: str) -> Engine:  # noqa: F811
    made = create_engine(migrated_url, poolclass=NullPool)
    yield made  # type: ignore[misc]
    made.dispose()


def add_tickets(engine: Engine, n: int, assigned_every: int) -> None:
    rows = [{"t": f"{i:010d}", "a": "sara" if i % assigned_every == 0 else None} for i in range(n)]
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO ticket (tracking, channel, province, category, callback_number,"
                " status, escalation_level, created_at, updated_at, assignee)"
                " VALUES (:t, 'web', 'qom', 'trade', '09120000000', 'registered', 0,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :a)"
            ),
            rows,
        )
        if engine.dialect.name == "postgresql":
            c.execute(text("ANALYZE ticket"))
        else:
            c.execute(text("ANALYZE"))


def plan(engine: Engine, sql: str) -> str:
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":
            return " ".join(r[0] for r in c.execute(text("EXPLAIN " + sql)))
        return " ".join(str(r) for r in c.execute(text("EXPLAIN QUERY PLAN " + sql)))


def test_only_worked_tickets_are_in_the_assignee_index(engine: Engine) -> None:
    names = {ix["name"] for ix in inspect(engine).get_indexes("ticket")}
    assert "ix_ticket_assignee" in names
    assert not names & DROPPED
    add_tickets(engine, 3000, assigned_every=100)
    with engine.connect() as c:
        if engine.dialect.name == "postgresql":  # ANALYZE counted the index's entries
            entries = c.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'ix_ticket_assignee'")
            ).scalar_one()
            assert entries == 30  # the 30 assigned of 3,000 tickets
        else:  # SQLite keeps the definition, and builds the index from it
            definition = c.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_ticket_assignee'")
            ).scalar_one()
            assert definition.endswith("WHERE assignee IS NOT NULL")


def test_my_tickets_are_found_through_the_assignee_index(engine: Engine) -> None:
    add_tickets(engine, 3000, assigned_every=100)
    assert "ix_ticket_assignee" in plan(engine, MINE)
    with engine.connect() as c:
        assert len(c.execute(text(MINE)).all()) == 30
