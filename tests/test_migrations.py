"""The Alembic migrations build exactly the tables of ``ivr.tickets.models``.

SQLite always; PostgreSQL too when ``IVR_TEST_POSTGRES_URL`` names a server we may create
scratch databases on (SQLite cannot tell ``timestamp`` from ``timestamptz``; PostgreSQL can).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pg import scratch_database
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from ivr.callbacks import models as _callbacks  # noqa: F401  (their tables too)
from ivr.tickets import models  # noqa: F401  (fills SQLModel.metadata)
from ivr.tickets.db import alembic_config, make_engine, upgrade


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'nested' / 'ivr.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with scratch_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_url")


def test_upgrade_matches_models(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini anywhere near: the config is built in code
    upgrade(url)
    upgrade(url)  # a second run finds nothing to do
    engine = make_engine(url)
    try:
        assert schema_diff(engine) == []
        with engine.connect() as c:
            head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
        names = set(inspect(engine).get_table_names())
        assert names == {*SQLModel.metadata.tables, "alembic_version"}
    finally:
        engine.dispose()


def test_comparison_would_notice_a_missing_index(url: str) -> None:
    """Guards the test above: an empty diff must mean something."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            c.execute(text("DROP INDEX ix_ticket_tracking"))
        diffs = schema_diff(engine)
        assert any(d[0] == "add_index" and d[1].name == "ix_ticket_tracking" for d in diffs)  # type: ignore[index]
    finally:
        engine.dispose()


def test_downgrade_removes_every_table(url: str) -> None:
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    finally:
        engine.dispose()


def test_sqlite_engine_is_ready_for_several_writers(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)  # creates the missing parent directory
    try:
        with engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
