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

from ivr import desk_events as _desk_events  # noqa: F401  (the screen pops' table too)
from ivr.callbacks import models as _callbacks  # noqa: F401  (their tables too)
from ivr.tickets import models  # noqa: F401  (fills SQLModel.metadata)
from ivr.tickets.db import alembic_config, make_engine, upgrade
from ivr.users import models as _users  # noqa: F401  (the users table too)


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


OLD_STEPS = [
    # (node, event, key, outcome) as revision 0004's code wrote them: class names, free strings.
    ("new", "CallStarted", None, "started"),
    ("main", "Digits", "", "timeout"),  # `#` alone, logged as silence
    ("main", "Timeout", None, "timeout"),
    ("main", "Digits", "0", "transfer"),
    ("nid", "Digits", "0 digits", "ok"),  # the national ID skipped with #
    ("callback.enter", "Digits", "3 digits", "transfer"),  # the third refused number
    ("describe", "RecordingFinished", "0.0s", "too_short"),
    ("agent", "Hangup", None, "hangup"),
]
NEW_STEPS = [
    ("new", "call_started", None, "started"),
    ("main", "digits", "", "empty"),
    ("main", "timeout", None, "timeout"),
    ("main", "digits", "0", "transfer_requested"),
    ("nid", "digits", "0 digits", "skipped"),
    ("callback.enter", "digits", "3 digits", "transfer_after_failures"),
    ("describe", "recording_finished", "0.0s", "too_short"),
    ("agent", "hangup", None, "hangup"),
]


def test_0005_translates_old_call_records_and_back(url: str) -> None:
    """Steps written before the enums read like new ones; old calls get ended_by and, through
    their ticket, the province. Downgrading gives the old words back."""
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = make_engine(url)
    try:
        with engine.begin() as c:
            c.execute(
                text(
                    "INSERT INTO ticket (id, tracking, channel, province, category,"
                    " callback_number, status, created_at, updated_at, escalation_level)"
                    " VALUES (1, '1000000019', 'twilio', 'qom', 'trade', '09121234567',"
                    " 'registered', :at, :at, 0)"
                ),
                {"at": "2026-11-30 08:00:00+00:00"},
            )
            for call_id, outcome, ticket_id in ((1, "ticket", 1), (2, "transferred", None)):
                c.execute(
                    text(
                        'INSERT INTO "call" (id, channel, external_id, started_at, outcome,'
                        " ticket_id, state) VALUES (:id, 'twilio', :ext, :at, :outcome, :ticket,"
                        " '{}')"
                    ),
                    {
                        "id": call_id,
                        "ext": f"CA{call_id}",
                        "at": "2026-11-30 08:00:00+00:00",
                        "outcome": outcome,
                        "ticket": ticket_id,
                    },
                )
            for i, (node, event, key, outcome) in enumerate(OLD_STEPS):
                c.execute(
                    text(
                        "INSERT INTO call_step (id, call_id, at, node, event, key, outcome)"
                        " VALUES (:id, 1, :at, :node, :event, :key, :outcome)"
                    ),
                    {
                        "id": i + 1,
                        "at": "2026-11-30 08:00:00+00:00",
                        "node": node,
                        "event": event,
                        "key": key,
                        "outcome": outcome,
                    },
                )
        command.upgrade(config, "0005")
        steps = "SELECT node, event, key, outcome FROM call_step ORDER BY id"
        with engine.connect() as c:
            assert [tuple(r) for r in c.execute(text(steps))] == NEW_STEPS
            calls = c.execute(text('SELECT id, ended_by, province FROM "call" ORDER BY id'))
            assert [tuple(r) for r in calls] == [(1, "caller", "qom"), (2, "transferred", None)]
        command.downgrade(config, "0004")
        with engine.connect() as c:
            back = [tuple(r) for r in c.execute(text(steps))]
        # Back to the old words; only the two transfer causes fold into one "transfer" again.
        assert back == OLD_STEPS
    finally:
        engine.dispose()
