"""The leader's scheduler outlives a locked database and a dead thread, without a restart.

Before: one lock held longer than SQLite's busy timeout (10 s) made APScheduler's loop raise
while it stored a job's next run time; its thread ended for good while the node kept the
leader lock, so no job ran again until a restart. Here the lock is real (an exclusive SQLite
transaction from another connection; on PostgreSQL an exclusive lock on the job table) and
the test waits for the overdue watch to run again after it, in the same ``run_scheduler``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from ivr import scheduler as sched
from ivr.settings import Settings

LOCK_S = 13.0
"""Longer than SQLite's busy timeout (ivr.tickets.db.SQLITE_BUSY_MS = 10 s)."""


def scheduler_threads() -> set[threading.Thread]:
    """APScheduler's loop threads alive in this process (each scheduler has one)."""
    return {t for t in threading.enumerate() if t.name == "APScheduler" and t.is_alive()}


class Runs:
    """The overdue watch, counting its runs (it still does its real work)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._watch = next(s for s in sched.JOBS if s.id == sched.WATCH_JOB)

    def run(self, runtime: sched._Runtime) -> None:
        # The start is what counts: a run already under way when the thread died may end
        # after it, yet proves nothing about the scheduler that comes after.
        self.times.append(time.monotonic())
        self._watch.run(runtime)

    def wait_for_run_after(self, moment: float, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [t for t in self.times if t > moment]
            if later:
                return later[0] - moment
            time.sleep(0.1)
        raise AssertionError(f"the overdue watch did not run within {timeout} s")


@contextmanager
def leading(url: str, tmp_path: Path, **changes: Any) -> Iterator[tuple[Runs, Any, Any]]:
    settings = Settings(
        storage_dir=tmp_path / "storage",
        database_url=url,
        node_name="n1",
        scheduler_watch_seconds=0.5,
        scheduler_check_seconds=0.5,
        scheduler_retry_seconds=0.5,
        **changes,
    )
    runs = Runs()
    stop = threading.Event()
    status = sched.SchedulerStatus(settings)
    thread = threading.Thread(target=sched.run_scheduler, args=(settings, stop, status))
    status.thread = thread
    jobs = tuple(
        dataclasses.replace(j, run=runs.run) if j.id == sched.WATCH_JOB else j for j in sched.JOBS
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sched, "JOBS", jobs)
        thread.start()
        try:
            runs.wait_for_run_after(0, 40)
            yield runs, status, thread
        finally:
            stop.set()
            thread.join(20)


@contextmanager
def database_locked(url: str) -> Iterator[None]:
    """Writers shut out of the database (SQLite) or the job table (PostgreSQL) meanwhile."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        conn = sqlite3.connect(parsed.database, timeout=30, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        conn.execute(f"LOCK TABLE {sched.JOBS_TABLE} IN ACCESS EXCLUSIVE MODE")
        yield
        conn.rollback()


def test_the_watch_runs_again_after_a_long_lock(migrated_url: str, tmp_path: Path) -> None:
    with leading(migrated_url, tmp_path) as (runs, status, thread):
        with database_locked(migrated_url):
            time.sleep(LOCK_S)
            if make_url(migrated_url).get_backend_name() == "sqlite":  # PostgreSQL just waits
                assert status.store_error is not None and "locked" in status.store_error
                assert status.state == "leader"
        released = time.monotonic()
        assert runs.wait_for_run_after(released, 40) < 40
        assert thread.is_alive()
        assert status.state == "leader"
        time.sleep(1.5)  # the next watch of the leader sees the store working again
        assert status.store_error is None


def test_a_job_store_that_keeps_failing_gives_up_the_lead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr.tickets.db import upgrade

    url = f"sqlite:///{tmp_path}/ivr.db"
    upgrade(url)
    monkeypatch.setattr(sched, "STORE_GIVE_UP_S", 1.0)
    before = scheduler_threads()
    with leading(url, tmp_path) as (runs, status, thread):
        with database_locked(url):
            deadline = time.monotonic() + 25
            while status.gave_up == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert status.gave_up == 1
        released = time.monotonic()
        assert runs.wait_for_run_after(released, 40) < 40  # it leads again, in the same thread
        assert thread.is_alive()
        assert status.state == "leader"
        # The scheduler it gave up was shut down: one loop polls the jobs, not two.
        deadline = time.monotonic() + 10
        while len(scheduler_threads() - before) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(scheduler_threads() - before) == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # on purpose
def test_a_dead_scheduler_thread_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever kills APScheduler's thread (here an error its loop does not catch), the
    leader's watch starts a new scheduler on the same stored jobs."""
    from ivr.tickets.db import upgrade

    url = f"sqlite:///{tmp_path}/ivr.db"
    upgrade(url)
    original = sched._Scheduler._process_jobs
    killed = threading.Event()
    before = scheduler_threads()  # another test's scheduler, still stopping, is not the one

    def dies_once(self: sched._Scheduler) -> float | None:
        mine = getattr(self, "_thread", None) not in before
        if not killed.is_set() and self.state == 1 and mine:  # running
            killed.set()
            raise SystemExit("the scheduler thread dies")
        return original(self)

    with leading(url, tmp_path) as (runs, status, thread):
        monkeypatch.setattr(sched._Scheduler, "_process_jobs", dies_once)
        assert killed.wait(30)
        # The leader's check notices the dead thread and rebuilds (a run the dead scheduler had
        # handed to its executor may still start just after the death: it proves nothing) ...
        deadline = time.monotonic() + 40  # generous: a loaded machine
        while status.rebuilds == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert status.rebuilds == 1
        # ... and the new scheduler runs the watch again.
        assert runs.wait_for_run_after(time.monotonic(), 40) < 40
        assert status.rebuilds == 1
        assert thread.is_alive()
        assert status.state == "leader"
