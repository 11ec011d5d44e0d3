"""The scheduler in one process: leader locks, stored job times, the jobs' own checks."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from ivr import scheduler as sched
from ivr.leader import FileLeader, Leader, PostgresLeader, make_leader
from ivr.services import build_services
from ivr.settings import Settings
from ivr.tickets.db import make_engine
from ivr.tickets.service import TicketDraft, TicketService


def settings_for(url: str, tmp_path: Path, node: str = "n1", **changes: Any) -> Settings:
    return Settings(
        storage_dir=tmp_path / f"storage-{node}", database_url=url, node_name=node, **changes
    )


def draft() -> TicketDraft:
    return TicketDraft("web", "qom", "trade", None, None, None, "09121234567", None)


@contextlib.contextmanager
def two_leaders(url: str, tmp_path: Path) -> Iterator[tuple[Leader, Leader]]:
    a = make_leader(url, "a", tmp_path)
    b = make_leader(url, "b", tmp_path)
    try:
        yield a, b
    finally:
        a.release()
        b.release()


# -- the locks ----------------------------------------------------------------------------------


def test_one_leader_at_a_time_and_the_next_after_release(db_url: str, tmp_path: Path) -> None:
    with two_leaders(db_url, tmp_path) as (a, b):
        assert a.try_acquire()
        assert a.try_acquire()  # leading already: still yes, no second lock
        assert not b.try_acquire()
        assert a.still_leader() and not b.still_leader()
        a.release()
        assert not a.still_leader()
        assert b.try_acquire() and b.still_leader()
        assert not a.try_acquire()


def test_sqlite_lock_file_sits_beside_the_database(tmp_path: Path) -> None:
    leader = make_leader(f"sqlite:///{tmp_path / 'x' / 'ivr.db'}", "a", tmp_path / "fallback")
    assert isinstance(leader, FileLeader)
    assert leader.path == tmp_path / "x" / "ivr.db.scheduler.lock"
    memory = make_leader("sqlite://", "a", tmp_path / "fallback")
    assert isinstance(memory, FileLeader) and memory.path.parent == tmp_path / "fallback"
    with pytest.raises(ValueError, match="SQLite or PostgreSQL"):
        make_leader("mysql://u@h/db", "a", tmp_path)


def test_job_guard_refuses_a_second_run_of_the_same_job(pg_url: str, tmp_path: Path) -> None:
    """PostgreSQL only: on SQLite (one machine) the file lock alone rules out an overlap."""
    with (
        two_leaders(pg_url, tmp_path) as (a, b),
        a.job_guard("overdue_watch") as first,
        b.job_guard("overdue_watch") as second,
        b.job_guard("nightly_report") as other_job,
    ):
        assert first and not second and other_job
    with b.job_guard("overdue_watch") as after:
        assert after


def test_losing_the_lock_connection_loses_leadership(pg_url: str, tmp_path: Path) -> None:
    """The database ends the leader's session (a restart, a network cut): the next check says so
    and the lock is free for another node."""
    with two_leaders(pg_url, tmp_path) as (a, b):
        assert isinstance(a, PostgresLeader) and a.try_acquire()
        engine = make_engine(pg_url)
        try:
            with engine.begin() as c:
                killed = c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = 'ivr-sched:a'"
                    )
                ).all()
            assert killed == [(True,)]
        finally:
            engine.dispose()
        assert not a.still_leader()
        assert b.try_acquire()


# -- the stored jobs -----------------------------------------------------------------------------


def stopped_scheduler(url: str) -> BackgroundScheduler:
    return sched.make_scheduler(make_engine(url))


def test_a_new_leader_keeps_a_missed_run_time(migrated_url: str, tmp_path: Path) -> None:
    """The stored next run time survives the next leader's start, so a run that fell due while no
    node led still happens, once; a changed schedule starts afresh."""
    settings = settings_for(migrated_url, tmp_path)
    missed = datetime.now(UTC) - timedelta(minutes=5)
    first = stopped_scheduler(migrated_url)
    first.start(paused=True)
    for spec in sched.job_specs(settings):
        sched._ensure_job(first, spec)
    first.modify_job(sched.WATCH_JOB, next_run_time=missed)
    first.shutdown()

    second = stopped_scheduler(migrated_url)
    second.start(paused=True)
    try:
        for spec in sched.job_specs(settings):
            sched._ensure_job(second, spec)
        kept = second.get_job(sched.WATCH_JOB)
        assert kept.next_run_time == missed
        assert kept.coalesce is True and kept.max_instances == 1
        report = second.get_job(sched.REPORT_JOB)
        assert (report.next_run_time.hour, report.next_run_time.minute) == (21, 0)
        assert str(report.next_run_time.tzinfo) == "Asia/Tehran"
        assert report.misfire_grace_time == sched.REPORT_GRACE_S

        faster = settings_for(migrated_url, tmp_path, scheduler_watch_seconds=5)
        sched._ensure_job(second, sched.job_specs(faster)[0])
        changed = second.get_job(sched.WATCH_JOB)
        assert changed.next_run_time > datetime.now(UTC)
        assert changed.trigger.interval == timedelta(seconds=5)
    finally:
        second.shutdown()


def test_run_scheduler_leads_runs_jobs_and_stops(migrated_url: str, tmp_path: Path) -> None:
    """In a thread, as ``ivr serve`` runs it: leads, runs the watch, stops when told."""
    settings = settings_for(
        migrated_url, tmp_path, scheduler_watch_seconds=0.2, scheduler_check_seconds=0.2
    )
    stop = threading.Event()
    ran = threading.Event()
    original = sched.overdue_watch_job

    def watched() -> None:
        original()
        ran.set()

    thread = threading.Thread(target=sched.run_scheduler, args=(settings, stop))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sched, "overdue_watch_job", watched)
            thread.start()
            assert ran.wait(15), "the overdue watch did not run"
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert sched._runtime is None
    other = make_leader(migrated_url, "other", tmp_path)
    try:
        assert other.try_acquire(), "a stopped scheduler must give the lock back"
    finally:
        other.release()


# -- what a job run does ------------------------------------------------------------------------


class Probe:
    """Stand-ins for ivr.escalation.watch and ivr.notify.send_due that record their calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def module(self, name: str, attribute: str, fail: bool = False) -> types.ModuleType:
        module = types.ModuleType(name)

        def step(*args: Any, **kwargs: Any) -> int:
            self.calls.append((attribute, args, kwargs))
            if fail:
                raise RuntimeError("boom")
            return 0

        setattr(module, attribute, step)
        return module


@pytest.fixture
def runtime(migrated_url: str, tmp_path: Path) -> Iterator[sched._Runtime]:
    settings = settings_for(migrated_url, tmp_path)
    leader = make_leader(migrated_url, "n1", tmp_path)
    assert leader.try_acquire()
    services = build_services(settings)
    runtime = sched._Runtime(settings, leader, services)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sched, "_runtime", runtime)
        yield runtime
    leader.release()
    services.tickets.engine.dispose()


def spool_one(runtime: sched._Runtime) -> None:
    """A ticket taken while the database was unreachable, into this node's spool."""
    down = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    TicketService(down, runtime.settings, retries=0).create(draft())
    assert list(runtime.settings.spool_dir.glob("*.json"))


def test_watch_job_calls_each_step_and_survives_a_failing_one(
    runtime: sched._Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Probe()
    monkeypatch.setitem(
        sys.modules, "ivr.escalation", probe.module("ivr.escalation", "watch", True)
    )
    monkeypatch.setitem(sys.modules, "ivr.notify", probe.module("ivr.notify", "send_due"))
    spool_one(runtime)
    with caplog.at_level(logging.INFO, logger="ivr.scheduler"):
        sched.overdue_watch_job()
    assert [name for name, _, _ in probe.calls] == ["watch", "send_due"]
    for _name, args, kwargs in probe.calls:
        assert args == (runtime.services.tickets.engine,)
        assert kwargs["settings"] is runtime.settings
        assert abs(kwargs["now"] - datetime.now(UTC)) < timedelta(seconds=10)
    assert "ivr.escalation.watch failed" in caplog.text
    assert not list(runtime.settings.spool_dir.glob("*.json"))  # replayed despite the failure
    assert len(runtime.services.tickets.latest()) == 1


def test_watch_job_goes_on_without_the_modules(
    runtime: sched._Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "ivr.escalation", None)  # import raises ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "ivr.notify", None)
    monkeypatch.setattr(sched, "_missing_warned", set())
    spool_one(runtime)
    with caplog.at_level(logging.INFO, logger="ivr.scheduler"):
        sched.overdue_watch_job()
    assert "ivr.escalation is not there yet" in caplog.text
    assert len(runtime.services.tickets.latest()) == 1


def test_a_job_does_nothing_once_leadership_is_gone(
    runtime: sched._Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = Probe()
    monkeypatch.setitem(sys.modules, "ivr.escalation", probe.module("ivr.escalation", "watch"))
    spool_one(runtime)
    runtime.leader.release()
    sched.overdue_watch_job()
    sched.nightly_report_job()
    assert probe.calls == []
    assert list(runtime.settings.spool_dir.glob("*.json"))
    assert not (runtime.settings.storage_dir / "reports").exists()


def test_nightly_placeholder_writes_the_days_figures(runtime: sched._Runtime) -> None:
    tickets = runtime.services.tickets
    tickets.create(draft(), due_at=datetime.now(UTC) - timedelta(hours=1))  # overdue
    tickets.create(draft(), due_at=datetime.now(UTC) + timedelta(days=3))
    answered = tickets.create(draft(), due_at=datetime.now(UTC) - timedelta(hours=1))
    assert answered.tracking is not None
    tickets.set_status(answered.tracking, "answered", "agent")
    sched.nightly_report_job()
    (path,) = (runtime.settings.storage_dir / "reports").glob("*-placeholder.txt")
    line = path.read_text(encoding="utf-8")
    assert line.count("\n") == 1
    assert "3 tickets created, 1 open tickets overdue" in line
    assert sched.count_overdue(tickets.engine, datetime.now(UTC)) == 1


def test_a_leader_that_cannot_start_its_jobs_lets_go(
    migrated_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the job store fails (say its table cannot be created), the node gives the lock back so
    that another can try, and tries again itself later."""
    attempts: list[int] = []

    def broken(engine: object) -> BackgroundScheduler:
        attempts.append(1)
        raise RuntimeError("job store unavailable")

    monkeypatch.setattr(sched, "make_scheduler", broken)
    settings = settings_for(
        migrated_url, tmp_path, scheduler_retry_seconds=0.1, scheduler_check_seconds=0.1
    )
    stop = threading.Event()
    thread = threading.Thread(target=sched.run_scheduler, args=(settings, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(attempts) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(attempts) >= 3
        assert sched._runtime is None
    finally:
        stop.set()
        thread.join(10)
    other = make_leader(migrated_url, "other", tmp_path)
    try:
        assert other.try_acquire()
    finally:
        other.release()
