"""The scheduler in one process: leader locks, stored job times, the jobs' own checks."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pickle
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

from ivr import scheduler as sched
from ivr.leader import LEADER_KEY, FileLeader, Leader, PostgresLeader, make_leader
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


def spec(job_id: str) -> sched.JobSpec:
    (found,) = [s for s in sched.JOBS if s.id == job_id]
    return found


WATCH_KEY = spec(sched.WATCH_JOB).lock_key
REPORT_KEY = spec(sched.REPORT_JOB).lock_key


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
        a.job_guard(WATCH_KEY) as first,
        b.job_guard(WATCH_KEY) as second,
        b.job_guard(REPORT_KEY) as other_job,
    ):
        assert first and not second and other_job
    with b.job_guard(WATCH_KEY) as after:
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
    for job in sched.JOBS:
        sched._ensure_job(first, job, settings)
    first.modify_job(sched.WATCH_JOB, next_run_time=missed)
    first.shutdown()

    second = stopped_scheduler(migrated_url)
    second.start(paused=True)
    try:
        for job in sched.JOBS:
            sched._ensure_job(second, job, settings)
        kept = second.get_job(sched.WATCH_JOB)
        assert kept.next_run_time == missed
        assert kept.coalesce is True and kept.max_instances == 1
        report = second.get_job(sched.REPORT_JOB)
        assert report.trigger.interval == timedelta(seconds=settings.report_check_seconds)
        assert str(report.next_run_time.tzinfo) == "Asia/Tehran"
        assert report.misfire_grace_time is None  # however late: the job sends what is due

        faster = settings_for(migrated_url, tmp_path, scheduler_watch_seconds=5)
        sched._ensure_job(second, spec(sched.WATCH_JOB), faster)
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
    watch = spec(sched.WATCH_JOB)

    def watched(runtime: sched._Runtime) -> None:
        watch.run(runtime)
        ran.set()

    status = sched.SchedulerStatus(settings)
    thread = threading.Thread(target=sched.run_scheduler, args=(settings, stop, status))
    status.thread = thread
    try:
        with pytest.MonkeyPatch.context() as mp:
            jobs = tuple(
                dataclasses.replace(j, run=watched) if j is watch else j for j in sched.JOBS
            )
            mp.setattr(sched, "JOBS", jobs)
            thread.start()
            assert ran.wait(15), "the overdue watch did not run"
            assert status.state == "leader"
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert status.state == "stopped"
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

    def step(self, name: str, fail: bool = False) -> Any:
        def step(*args: Any, **kwargs: Any) -> int:
            self.calls.append((name, args, kwargs))
            if fail:
                raise RuntimeError("boom")
            return 0

        return step


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
    monkeypatch.setattr("ivr.escalation.watch", probe.step("watch", fail=True))
    monkeypatch.setattr("ivr.notify.send_due", probe.step("send_due"))
    spool_one(runtime)
    with caplog.at_level(logging.INFO, logger="ivr.scheduler"):
        sched.run_job(sched.WATCH_JOB)
    assert [name for name, _, _ in probe.calls] == ["watch", "send_due"]
    for _name, args, kwargs in probe.calls:
        assert args == (runtime.services.tickets.engine,)
        assert kwargs["settings"] is runtime.settings
        assert abs(kwargs["now"] - datetime.now(UTC)) < timedelta(seconds=10)
    assert "the escalation watch failed" in caplog.text
    assert not list(runtime.settings.spool_dir.glob("*.json"))  # replayed despite the failure
    assert len(runtime.services.tickets.latest()) == 1


def test_a_runs_start_and_end_are_debug_lines(
    runtime: sched._Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """Routine lines stay out of an INFO log: a minute's run says nothing unless it did
    something."""
    with caplog.at_level(logging.DEBUG, logger="ivr.scheduler"):
        sched.run_job(sched.WATCH_JOB)
    edges = [r for r in caplog.records if r.getMessage().startswith("job overdue_watch ")]
    assert [r.getMessage().split()[2] for r in edges] == ["start", "end"]
    assert {r.levelno for r in edges} == {logging.DEBUG}
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


def test_stored_jobs_name_the_spec_not_the_function(migrated_url: str, tmp_path: Path) -> None:
    """What the job store keeps is ``run_job`` and the spec's id, so a job's function can be
    renamed freely; a stored id no spec has any more is dropped at the next start."""
    settings = settings_for(migrated_url, tmp_path)
    engine = make_engine(migrated_url)
    scheduler = sched.make_scheduler(engine)
    scheduler.start(paused=True)
    try:
        for job in sched.JOBS:
            sched._ensure_job(scheduler, job, settings)
        scheduler.add_job(sched.run_job, "interval", args=["retired_job"], id="retired_job")
        with engine.connect() as c:
            rows = c.execute(text(f"SELECT id, job_state FROM {sched.JOBS_TABLE}")).all()
        stored = {row.id: pickle.loads(row.job_state) for row in rows}
        assert set(stored) == {job.id for job in sched.JOBS} | {"retired_job"}
        for job_id, state in stored.items():
            assert state["func"] == "ivr.scheduler:run_job"
            assert tuple(state["args"]) == (job_id,)
        sched._drop_unknown_jobs(scheduler, sched.JOBS)
        assert {job.id for job in scheduler.get_jobs()} == {job.id for job in sched.JOBS}
    finally:
        scheduler.shutdown()
        engine.dispose()


def test_jobs_stored_before_specs_keep_their_missed_run(migrated_url: str, tmp_path: Path) -> None:
    """A job row as the previous version stored it (its own function's name, since gone): the
    next leader adopts it, so its missed run time survives the upgrade."""
    settings = settings_for(migrated_url, tmp_path)
    engine = make_engine(migrated_url)
    missed = datetime.now(UTC) - timedelta(minutes=3)
    first = sched.make_scheduler(engine)
    first.start(paused=True)
    for job in sched.JOBS:
        sched._ensure_job(first, job, settings)
    first.modify_job(sched.WATCH_JOB, next_run_time=missed)
    first.shutdown()
    with engine.begin() as c:
        (blob,) = c.execute(
            text(f"SELECT job_state FROM {sched.JOBS_TABLE} WHERE id = :id"),
            {"id": sched.WATCH_JOB},
        ).one()
        old = pickle.loads(blob)
        old.update(func="ivr.scheduler:overdue_watch_job", args=())
        c.execute(
            text(f"UPDATE {sched.JOBS_TABLE} SET job_state = :s WHERE id = :id"),
            {"s": pickle.dumps(old), "id": sched.WATCH_JOB},
        )
    try:
        assert sched.adopt_stored_jobs(engine, sched.JOBS) == 1
        assert sched.adopt_stored_jobs(engine, sched.JOBS) == 0
        second = sched.make_scheduler(engine)
        second.start(paused=True)
        try:
            kept = second.get_job(sched.WATCH_JOB)
            assert kept is not None and kept.next_run_time == missed
            assert kept.func is sched.run_job and kept.args == (sched.WATCH_JOB,)
        finally:
            second.shutdown()
    finally:
        engine.dispose()


def test_a_job_without_a_spec_is_not_run(
    runtime: sched._Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ivr.scheduler"):
        sched.run_job("retired_job")
    assert "job retired_job has no spec" in caplog.text


def test_the_job_table_is_checked_before_leading(tmp_path: Path) -> None:
    settings = settings_for("", tmp_path)
    sched.check_jobs(sched.JOBS, settings)
    watch, report = spec(sched.WATCH_JOB), spec(sched.REPORT_JOB)
    twice = dataclasses.replace(report, id=watch.id)
    with pytest.raises(ValueError, match="ids must be unique"):
        sched.check_jobs((watch, twice), settings)
    same_lock = dataclasses.replace(report, lock_key=watch.lock_key)
    with pytest.raises(ValueError, match="lock keys"):
        sched.check_jobs((watch, same_lock), settings)
    leaders_lock = dataclasses.replace(report, lock_key=LEADER_KEY)
    with pytest.raises(ValueError, match="lock keys"):
        sched.check_jobs((watch, leaders_lock), settings)


def test_a_job_does_nothing_once_leadership_is_gone(
    runtime: sched._Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = Probe()
    monkeypatch.setattr("ivr.escalation.watch", probe.step("watch"))
    spool_one(runtime)
    runtime.leader.release()
    sched.run_job(sched.WATCH_JOB)
    sched.run_job(sched.REPORT_JOB)
    assert probe.calls == []
    assert list(runtime.settings.spool_dir.glob("*.json"))
    assert not (runtime.settings.storage_dir / "reports").exists()


def test_nightly_report_is_written_and_queued_once(runtime: sched._Runtime) -> None:
    """The job writes the latest due day's national report and queues its mail; run again (a
    retry, another node), it queues nothing more."""
    from ivr.reports.delivery import latest_due_day
    from ivr.reports.store import report_folder
    from ivr.supervisors import add_supervisor

    tickets = runtime.services.tickets
    tickets.create(draft(), due_at=datetime.now(UTC) - timedelta(hours=1))  # overdue
    add_supervisor(tickets.engine, "Ministry", "national@example.org")
    sched.run_job(sched.REPORT_JOB)
    sched.run_job(sched.REPORT_JOB)
    day = latest_due_day(datetime.now(UTC), runtime.settings.scheduler_report_time)
    folder = report_folder(runtime.settings.reports_dir, day, None)
    assert {p.name for p in folder.iterdir()} == {"report.html", "report.pdf", "calls.csv"}
    with tickets.engine.connect() as c:
        mails = c.execute(text("SELECT recipient, step FROM notification")).all()
    assert [m.recipient for m in mails] == ["national@example.org"]
    assert mails[0].step.startswith("report-")
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
