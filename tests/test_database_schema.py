"""A database that was never upgraded, is behind, or was written by a newer version: what the
commands and the server do about it, on SQLite and PostgreSQL, through the real ``ivr``.

SQLite is embedded (one machine, nobody to ask), so a command upgrades it itself; PostgreSQL is
shared by nodes and upgraded on purpose, so a command says in one line to run ``ivr db upgrade``.
A schema newer than this version's migrations is refused on both.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from pg import db_url, pg_url  # noqa: F401  (fixtures)
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from twilio_phone import free_port

from ivr.tickets.db import alembic_config, upgrade

IVR = str(Path(sys.executable).with_name("ivr"))
"""The project's own ``ivr`` (test modules cannot import conftest: each folder has one)."""
HEAD = ScriptDirectory.from_config(alembic_config("")).get_current_head()
FIRST_TWO = "0002"
"""An older revision to be behind at (the second migration)."""


def revision(url: str) -> str | None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        if "alembic_version" not in inspect(engine).get_table_names():
            return None
        with engine.connect() as c:
            return c.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def set_revision(url: str, value: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as c:
            c.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": value})
    finally:
        engine.dispose()


@pytest.fixture
def on(ivr_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``on(url, *args)``: the ``ivr`` command on the database at ``url``."""

    def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**ivr_env, "IVR_DATABASE_URL": url}
        return subprocess.run([IVR, *args], env=env, capture_output=True, text=True, timeout=120)

    return run


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    return line


def test_db_upgrade_says_what_it_did(db_url: str, on) -> None:  # noqa: F811
    created = on(db_url, "db", "upgrade")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"created the database schema ({HEAD}) in ")
    current = on(db_url, "db", "upgrade")
    assert current.stdout.startswith(f"the database is already current ({HEAD})")
    assert on(db_url, "db", "status").stdout.split(": ", 1)[1].startswith("current")


def test_db_upgrade_from_an_older_revision(db_url: str, on) -> None:  # noqa: F811
    upgrade(db_url, FIRST_TWO)
    status = on(db_url, "db", "status")
    assert status.returncode == 1 and "behind" in status.stdout
    done = on(db_url, "db", "upgrade")
    assert done.stdout.startswith(f"upgraded the database from {FIRST_TWO} to {HEAD} in ")
    assert revision(db_url) == HEAD


def test_a_migration_the_database_refuses_is_one_line(db_url: str, on) -> None:  # noqa: F811
    """A table made by hand where a migration creates it: the upgrade stops with the database's
    reason and where the schema stands, never a traceback."""
    upgrade(db_url, "0012")
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        with engine.begin() as c:
            c.execute(text("CREATE TABLE desk_event (id INTEGER PRIMARY KEY)"))
    finally:
        engine.dispose()
    line = one_line(on(db_url, "db", "upgrade"))
    assert line.startswith("ivr: upgrading ") and " from 0012 failed: " in line
    assert "desk_event" in line and "already exists" in line
    assert line.endswith("then run `ivr db upgrade` again")
    assert revision(db_url) == "0012"


def test_passwords_stay_out_of_db_messages(pg_url: str, on) -> None:  # noqa: F811
    done = on(pg_url, "db", "upgrade")
    assert ":***@" in done.stdout
    password = make_url(pg_url).password
    assert password and password not in done.stdout


def test_an_embedded_sqlite_database_upgrades_itself(storage: Path, on) -> None:
    url = f"sqlite:///{storage / 'fresh' / 'ivr.db'}"
    listed = on(url, "tickets", "list")
    assert listed.returncode == 0, listed.stderr
    assert revision(url) == HEAD

    behind = f"sqlite:///{storage / 'old' / 'ivr.db'}"
    upgrade(behind, FIRST_TWO)
    assert on(behind, "tickets", "list").returncode == 0
    assert revision(behind) == HEAD


def test_two_commands_starting_at_once_on_a_new_sqlite_database(
    storage: Path, ivr_env: dict[str, str]
) -> None:
    """The file lock: the second waits for the first's upgrade instead of racing it."""
    procs = [
        subprocess.Popen(
            [IVR, "tickets", "list"],
            env=ivr_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert revision(f"sqlite:///{storage / 'ivr.db'}") == HEAD


def test_postgresql_that_was_never_upgraded_says_what_to_run(pg_url: str, on) -> None:  # noqa: F811
    for command in (("tickets", "list"), ("calendar", "deadline", "1405/01/05", "3")):
        line = one_line(on(pg_url, *command))
        assert line.startswith("ivr: the database postgresql+psycopg://")
        assert line.endswith(f"has no schema yet, this ivr124 needs {HEAD}: run `ivr db upgrade`")
    assert revision(pg_url) is None, "nothing was created behind the operator's back"


def test_postgresql_behind_says_what_to_run(pg_url: str, on) -> None:  # noqa: F811
    upgrade(pg_url, FIRST_TWO)
    line = one_line(on(pg_url, "serve", "--port", str(free_port())))
    assert line.endswith(f"has schema {FIRST_TWO}, this ivr124 needs {HEAD}: run `ivr db upgrade`")
    assert revision(pg_url) == FIRST_TWO


def test_serve_refuses_a_schema_it_does_not_know(db_url: str, on) -> None:  # noqa: F811
    upgrade(db_url)
    set_revision(db_url, "9999_from_the_future")
    for command in (("serve", "--port", str(free_port())), ("db", "upgrade"), ("tickets", "list")):
        line = one_line(on(db_url, *command))
        assert "has schema revision 9999_from_the_future, which this ivr124 does not know" in line
        assert f"(its newest is {HEAD})" in line
    assert revision(db_url) == "9999_from_the_future", "left as it was"


def test_an_unreachable_database_is_one_line(on) -> None:
    line = one_line(on("postgresql+psycopg://nobody@127.0.0.1:1/none", "tickets", "list"))
    assert line.startswith("ivr: database error: connection")
