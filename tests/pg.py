"""Databases for tests on both backends: a SQLite file, or a scratch PostgreSQL database.

PostgreSQL tests run when ``IVR_TEST_POSTGRES_URL`` names a server whose role may create
databases (``IVR_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)``) and are skipped, saying so, when
it is unset (or fail, with ``IVR_TEST_REQUIRE_POSTGRES=1``, as CI sets). Each scratch database
has a unique name and is dropped afterwards; one left behind by a test run that was killed is
dropped by the next run on the same machine.

* :func:`scratch_database` — a context manager yielding a fresh PostgreSQL URL.
* ``db_url`` — fixture, parametrized ``sqlite`` / ``postgresql``: an empty database's URL.
* ``migrated_url`` — the same, upgraded to the newest schema.
* ``pg_url`` — a scratch PostgreSQL database only, for what SQLite does not have.

Use the fixtures from any test module with ``from pg import db_url, migrated_url, pg_url``.
"""

from __future__ import annotations

import os
import re
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool

PG_URL = os.environ.get("IVR_TEST_POSTGRES_URL", "")
SKIP_REASON = (
    "IVR_TEST_POSTGRES_URL is not set; to test on PostgreSQL too, run "
    "`export IVR_TEST_POSTGRES_URL=$(bash .ci/postgres.sh)` (as root) first"
)
PREFIX = "ivr_t"
_NAME = re.compile(rf"^{PREFIX}_(\d+)_[0-9a-f]{{8}}$")
BACKENDS = ["sqlite", "postgresql"]


REQUIRED = os.environ.get("IVR_TEST_REQUIRE_POSTGRES", "") not in ("", "0")
"""CI sets this so a PostgreSQL that failed to start fails the run instead of skipping half."""


def require_postgres() -> str:
    """The server URL, or skip the calling test with the reason (fail, if it is required)."""
    if not PG_URL:
        if REQUIRED:
            pytest.fail(f"IVR_TEST_REQUIRE_POSTGRES is set but {SKIP_REASON}")
        pytest.skip(SKIP_REASON)
    return PG_URL


def _admin() -> Engine:
    return create_engine(PG_URL, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_swept = False


def _sweep(admin: Engine) -> None:
    """Drop scratch databases whose test process (on this machine) no longer exists."""
    global _swept
    if _swept:
        return
    _swept = True
    with admin.connect() as c:
        names = c.execute(text("SELECT datname FROM pg_database")).scalars().all()
    for name in names:
        match = _NAME.match(name)
        if match and not _pid_alive(int(match.group(1))):
            _drop(admin, name, tries=1)


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test; dropped (connections and all) afterwards."""
    require_postgres()
    name = f"{PREFIX}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    try:
        _sweep(admin)
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            _drop(admin, name)
    finally:
        admin.dispose()


def _drop(admin: Engine, name: str, tries: int = 20) -> None:
    """Drop a scratch database. FORCE cannot end a server process of another role (an autovacuum
    worker that started on the busy new database), so wait for it a little; if it is still there
    the next run's sweep drops the database, and the test has not failed."""
    for attempt in range(tries):
        try:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError as error:  # InsufficientPrivilege: a process we may not end
            if attempt == tries - 1:
                message = f"scratch database {name} left for the next sweep: {error.orig}"
                warnings.warn(message, stacklevel=2)
                return
            time.sleep(0.5)


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'ivr.db'}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend (PostgreSQL skipped with a reason when not configured)."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "db")
        return
    with scratch_database() as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty scratch PostgreSQL database, for what only PostgreSQL has (skipped without it)."""
    with scratch_database() as url:
        yield url


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """``db_url`` upgraded to the newest schema."""
    from ivr.tickets.db import upgrade

    upgrade(db_url)
    return db_url


def backend(url: str) -> str:
    return make_url(url).get_backend_name()
