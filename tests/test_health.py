"""``/healthz``: the database (reachable, schema revision) and this node's scheduler (leader,
follower, disabled, dead), 503 when something is wrong — on real ``ivr serve`` processes.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from pg import scratch_database
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from twilio_phone import serve_app

from ivr.scheduler import SchedulerStatus
from ivr.services import build_services
from ivr.settings import Settings
from ivr.tickets.db import alembic_config, upgrade
from ivr.web.app import create_app

if TYPE_CHECKING:
    from conftest import IvrServer

HEAD = ScriptDirectory.from_config(alembic_config("")).get_current_head()
FAST = {"scheduler_retry_seconds": "0.5", "scheduler_check_seconds": "0.5"}


def health(server: IvrServer) -> tuple[int, dict[str, Any]]:
    reply = httpx.get(f"{server.base_url}/healthz", timeout=10)
    return reply.status_code, reply.json()


def wait_for_state(server: IvrServer, state: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _, body = health(server)
        if body["scheduler"]["state"] == state:
            return body
        time.sleep(0.1)
    raise AssertionError(f"scheduler never {state}: {body}\n{server.stderr()}")


def test_a_healthy_node_without_a_scheduler(server: IvrServer) -> None:
    status, body = health(server)
    assert status == 200
    assert body["status"] == "ok" and body["problems"] == []
    assert body["database"] == {
        "backend": "sqlite",
        "reachable": True,
        "schema": HEAD,
        "newest": HEAD,
        "state": "current",
    }
    assert body["scheduler"]["state"] == "disabled"  # the test servers run without one
    assert body["node"] == "node1"


def test_the_leader_and_a_follower(start_server: Callable[..., IvrServer]) -> None:
    first = start_server(scheduler_enabled="true", node_name="alpha", **FAST)
    led = wait_for_state(first, "leader")
    assert led["node"] == "alpha" and led["status"] == "ok"
    shared = f"sqlite:///{first.db_path}"
    second = start_server(scheduler_enabled="true", node_name="beta", database_url=shared, **FAST)
    followed = wait_for_state(second, "follower")
    assert followed["status"] == "ok"
    assert health(first)[1]["scheduler"]["state"] == "leader"
    first.stop()
    wait_for_state(second, "leader", timeout=30)  # the follower takes over


def test_a_schema_changed_under_a_running_node(start_server: Callable[..., IvrServer]) -> None:
    running = start_server()
    for revision, state in (("0002", "behind"), ("9999_future", "unknown")):
        with sqlite3.connect(running.db_path) as c:
            c.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        status, body = health(running)
        assert status == 503
        assert body["status"] == "unhealthy"
        assert body["database"]["state"] == state
        assert body["database"]["schema"] == revision
        assert body["problems"] == [
            f"the database schema is {state} ({revision}, this version needs {HEAD})"
        ]
    with sqlite3.connect(running.db_path) as c:
        c.execute("UPDATE alembic_version SET version_num = ?", (HEAD,))
    assert health(running)[0] == 200


def test_a_database_that_goes_away(start_server: Callable[..., IvrServer]) -> None:
    """PostgreSQL dropped under a running node: 503, said without the server's address."""
    with scratch_database() as url:
        upgrade(url)
        running = start_server(database_url=url)
        assert health(running)[0] == 200
        name = make_url(url).database
        admin = create_engine(
            make_url(url).set(database="postgres"),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        try:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
        status, body = health(running)
        assert status == 503
        assert body["database"] == {"backend": "postgresql", "reachable": False}
        assert body["problems"] == ["the database cannot be reached (OperationalError)"]
        assert "127.0.0.1" not in str(body)
        assert "/healthz: the database cannot be reached" in running.stderr()
        assert running.alive()


def test_a_dead_scheduler_thread_is_503(tmp_path: Path) -> None:
    """The one state a real server cannot be pushed into from outside: the thread that leads or
    follows has ended without being told to (here: a thread that returned at once)."""
    settings = Settings(storage_dir=tmp_path, scheduler_retry_seconds=0.1)
    status = SchedulerStatus(settings)
    status.thread = threading.Thread(target=lambda: None)
    status.thread.start()
    status.thread.join()
    status.set("leader")
    base_url, stop = serve_app(create_app(settings, build_services(settings), scheduler=status))
    try:
        reply = httpx.get(f"{base_url}/healthz", timeout=5)
    finally:
        stop()
    assert reply.status_code == 503
    assert reply.json()["scheduler"]["state"] == "dead"
    assert reply.json()["problems"] == ["the scheduler thread is dead"]


def test_a_failing_job_store_is_503_and_said(tmp_path: Path) -> None:
    """What the leader's watch reports while its job store fails (see
    tests/multinode/test_scheduler_liveness.py for the real lock): said, and 503."""
    settings = Settings(storage_dir=tmp_path)
    status = SchedulerStatus(settings)
    status.set("leader")
    status.store_error, status.store_failing_s, status.rebuilds = "OperationalError: locked", 12, 1
    base_url, stop = serve_app(create_app(settings, build_services(settings), scheduler=status))
    try:
        reply = httpx.get(f"{base_url}/healthz", timeout=5)
    finally:
        stop()
    assert reply.status_code == 503
    scheduler = reply.json()["scheduler"]
    assert scheduler["job_store"] == "failing" and scheduler["rebuilds"] == 1
    assert "job store has failed for 12 s (OperationalError: locked)" in reply.json()["problems"][0]


def test_a_silent_scheduler_is_dead(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop that stopped beating (stuck in a lock query, say) for longer than its limit."""
    settings = Settings(storage_dir=tmp_path, scheduler_retry_seconds=1, scheduler_check_seconds=1)
    status = SchedulerStatus(settings)
    status.set("follower")
    assert status.state == "follower"
    assert status.limit_s == 13
    real = time.monotonic
    monkeypatch.setattr(time, "monotonic", lambda: real() + 14)
    assert status.state == "dead"
    status.set("follower")  # a beat brings it back
    assert status.state == "follower"
