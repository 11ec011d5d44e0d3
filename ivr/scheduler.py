"""The scheduler: the overdue watch every minute and the nightly report, run by one node at a time.

Every node may run ``run_scheduler``; only the one holding the leader lock (:mod:`ivr.leader`)
starts APScheduler, the others retry the lock every ``scheduler_retry_seconds`` and take over
when the leader dies. Jobs live in the shared database (table ``apscheduler_jobs``), so the new
leader inherits their next run times: a run that fell due while no node led still happens, once
(``coalesce``), instead of being skipped. Each run re-checks leadership before it acts.

Each job is one :class:`JobSpec` in :data:`JOBS`: its stable id, the function it runs, the
advisory lock held while it runs and its schedule. A new job is one entry there and works the
same on SQLite and PostgreSQL. The job store pickles references, not closures, so every stored
job refers to the one function :func:`run_job` with its spec's id as the argument: renaming a
job's function cannot strand a stored job, and an id the table no longer has is dropped (and
said) when a leader starts. :class:`SchedulerStatus` tells ``/healthz`` whether this node leads,
follows, or has a scheduler thread that died.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, MetaData, Table, func, inspect
from sqlalchemy import select as select_
from sqlmodel import Session, col, select

from ivr import escalation, notify
from ivr.clock import TEHRAN, as_stored, utcnow
from ivr.leader import LEADER_KEY, Leader, make_leader
from ivr.session import Services
from ivr.settings import Settings
from ivr.tickets.models import UNFINISHED_STATUSES, Ticket

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
WATCH_JOB = "overdue_watch"
REPORT_JOB = "nightly_report"
CALLBACK_JOB = "callback_dispatch"
HOUSEKEEPING_JOB = "housekeeping"
HOUSEKEEPING_SECONDS = 3600


@dataclass
class _Runtime:
    """What the jobs of this process use; set while this process leads."""

    settings: Settings
    leader: Leader
    services: Services


@dataclass(frozen=True)
class JobSpec:
    """One job: everything the scheduler needs to know about it, in one place."""

    id: str
    """Stable: stored in the job store with each job, so it must never be renamed."""
    run: Callable[[_Runtime], None]
    """What a run does, given this leader's runtime."""
    lock_key: int
    """The PostgreSQL advisory lock held while a run lasts (:meth:`Leader.job_guard`)."""
    schedule: Callable[[Settings], BaseTrigger]
    misfire_grace_time: int | None
    """Seconds a late run may still start; None: however late, run once (coalesced)."""


# -- the jobs ---------------------------------------------------------------------------------


def _step(name: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One step of a job; a failure is logged and returns None, so the next step still runs."""
    try:
        return action(*args, **kwargs)
    except Exception:
        log.exception("%s failed", name)
        return None


def overdue_watch(runtime: _Runtime) -> None:
    """Escalate overdue tickets, send due notifications, store tickets waiting in the spool.

    The three steps are independent: one failing does not stop the others.
    """
    engine, settings = runtime.services.tickets.engine, runtime.settings
    _step("the escalation watch", escalation.watch, engine, now=utcnow(), settings=settings)
    sent = _step("sending notifications", notify.send_due, engine, now=utcnow(), settings=settings)
    if sent:
        log.info("%s notifications sent", sent)
    stored = _step("replaying the spool", runtime.services.tickets.replay_spool)
    if stored:
        log.info("%d spooled tickets stored", stored)


def nightly_report(runtime: _Runtime) -> None:
    """Mail every due day's reports (ivr.reports.delivery), then hand them to SMTP at once."""
    from ivr.reports.delivery import send_due_reports

    engine, settings = runtime.services.tickets.engine, runtime.settings
    days = send_due_reports(engine, settings)
    if days:
        _step("sending the reports", notify.send_due, engine, now=utcnow(), settings=settings)


def callback_dispatch(runtime: _Runtime) -> None:
    """One pass of the callback dispatcher: place what is due, in entry order (ivr.callbacks)."""
    from ivr.callbacks import job

    job.run(runtime.services.tickets.engine, runtime.settings)


def housekeeping(runtime: _Runtime) -> None:
    """Forget what has served its time: desk sessions past their lifetime and login attempts
    past the throttling window (an ended session is refused anyway; this keeps the tables small)."""
    from ivr.users.sessions import Limits, SessionStore

    store = SessionStore(runtime.services.tickets.engine, Limits.from_settings(runtime.settings))
    gone = _step("pruning desk sessions", store.prune)
    if gone:
        log.info("%d ended desk sessions and old login attempts forgotten", gone)


def _report_checks(settings: Settings) -> IntervalTrigger:
    """The report job looks often and sends what is due: a restart or a new leader at any hour
    sends a missed day at once, and the day's row (``report_delivery``) keeps it to once."""
    return IntervalTrigger(seconds=settings.report_check_seconds, timezone=TEHRAN)


JOBS: tuple[JobSpec, ...] = (
    JobSpec(
        WATCH_JOB,
        overdue_watch,
        lock_key=124_000_101,
        schedule=lambda s: IntervalTrigger(seconds=s.scheduler_watch_seconds, timezone=TEHRAN),
        misfire_grace_time=None,
    ),
    JobSpec(
        REPORT_JOB,
        nightly_report,
        lock_key=124_000_102,
        schedule=_report_checks,
        misfire_grace_time=None,
    ),
    JobSpec(
        CALLBACK_JOB,
        callback_dispatch,
        lock_key=124_000_103,
        schedule=lambda s: IntervalTrigger(seconds=s.callback_dispatch_seconds, timezone=TEHRAN),
        misfire_grace_time=None,
    ),
    JobSpec(
        HOUSEKEEPING_JOB,
        housekeeping,
        lock_key=124_000_104,
        schedule=lambda s: IntervalTrigger(seconds=HOUSEKEEPING_SECONDS, timezone=TEHRAN),
        misfire_grace_time=None,
    ),
)


def check_jobs(jobs: Sequence[JobSpec], settings: Settings) -> None:
    """Refuse a job table that cannot work: a duplicate id or lock key, a lock key that is the
    leader's, a schedule the settings cannot build. Called before a node tries to lead."""
    ids = [spec.id for spec in jobs]
    keys = [spec.lock_key for spec in jobs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"job ids must be unique: {ids}")
    if len(set(keys)) != len(keys) or LEADER_KEY in keys:
        raise ValueError(f"job lock keys must be unique and not the leader's: {keys}")
    for spec in jobs:
        spec.schedule(settings)


def run_job(job_id: str) -> None:
    """What every stored job calls: the spec's run, if this node may run it now."""
    spec = next((spec for spec in JOBS if spec.id == job_id), None)
    if spec is None:
        log.error("job %s has no spec in ivr.scheduler.JOBS; not run", job_id)
        return
    with _acting(spec) as runtime:
        if runtime is not None:
            spec.run(runtime)


_runtime: _Runtime | None = None


@contextlib.contextmanager
def _acting(spec: JobSpec) -> Iterator[_Runtime | None]:
    """Yields the runtime if this node may run the job now, else None (and says why)."""
    runtime = _runtime
    if runtime is None:
        log.warning("job %s fired with no scheduler running here", spec.id)
        yield None
        return
    node = runtime.settings.node_name
    if not runtime.leader.still_leader():
        log.warning("job %s skipped: node %s is no longer the leader", spec.id, node)
        yield None
        return
    with runtime.leader.job_guard(spec.lock_key) as free:
        if not free:
            log.warning("job %s skipped: running elsewhere, or its lock is out of reach", spec.id)
            yield None
            return
        started = time.monotonic()
        log.debug("job %s start node=%s pid=%d", spec.id, node, os.getpid())
        try:
            yield runtime
        finally:
            elapsed = (time.monotonic() - started) * 1000
            log.debug("job %s end node=%s ms=%.0f", spec.id, node, elapsed)


# -- what /healthz is told ----------------------------------------------------------------------

SchedulerState = Literal["disabled", "starting", "leader", "follower", "stopped", "dead"]


class SchedulerStatus:
    """This node's scheduler as ``/healthz`` sees it: written by its loop, read by the web app.

    The loop beats at least every ``max(retry, check)`` seconds (plus a lock query's time); a
    loop that has not beaten for three of those, or whose thread ended without being told to,
    is ``dead``.
    """

    def __init__(self, settings: Settings, enabled: bool = True) -> None:
        self._state: SchedulerState = "starting" if enabled else "disabled"
        self._beat = time.monotonic()
        self.thread: threading.Thread | None = None
        self.store_error: str | None = None
        """The job store's last error while it keeps failing (None once it works again)."""
        self.store_failing_s = 0.0
        self.rebuilds = 0
        """APScheduler threads this node had to rebuild since it started."""
        self.gave_up = 0
        """Times this node gave up the lead because its job store kept failing."""
        self.limit_s = 3 * max(settings.scheduler_retry_seconds, settings.scheduler_check_seconds)
        self.limit_s += 10

    def set(self, state: SchedulerState) -> None:
        self._state = state
        self.beat()

    def beat(self) -> None:
        self._beat = time.monotonic()

    @property
    def state(self) -> SchedulerState:
        if self._state in ("starting", "leader", "follower"):
            thread_gone = self.thread is not None and not self.thread.is_alive()
            if thread_gone or self.silent_s > self.limit_s:
                return "dead"
        return self._state

    @property
    def silent_s(self) -> float:
        return time.monotonic() - self._beat


# -- the loop: lead or follow ---------------------------------------------------------------------


def run_scheduler(
    settings: Settings, stop: threading.Event, status: SchedulerStatus | None = None
) -> None:
    """Lead when the lock is free, follow otherwise, until ``stop`` is set (blocks)."""
    check_jobs(JOBS, settings)  # a bad job table fails here, once and loudly
    status = status or SchedulerStatus(settings)
    leader = make_leader(settings.db_url, settings.node_name, settings.storage_dir)
    node = settings.node_name
    following = False
    try:
        while not stop.is_set():
            if leader.try_acquire():
                following = False
                status.set("leader")
                log.info("node %s is the leader", node)
                try:
                    _lead(settings, leader, stop, status)
                except Exception:  # e.g. the job store's table cannot be read: let another try
                    log.exception("node %s could not run its jobs", node)
                finally:
                    leader.release()
                if not stop.is_set():
                    log.warning("node %s is no longer the leader", node)
                status.set("starting")  # until the next try says which
            else:
                if not following:
                    following = True
                    log.info("node %s follows; another node leads", node)
                status.set("follower")
            stop.wait(settings.scheduler_retry_seconds)
    except BaseException:
        status.set("dead")
        raise
    finally:
        leader.release()
        if status.state != "dead":
            status.set("stopped")
        log.info("node %s stopped", node)


def _lead(
    settings: Settings, leader: Leader, stop: threading.Event, status: SchedulerStatus
) -> None:
    """Run APScheduler until ``stop`` or until the leader lock is gone."""
    global _runtime
    from ivr.services import build_services

    services = build_services(settings)
    engine = services.tickets.engine
    scheduler: BackgroundScheduler | None = None
    try:
        adopt_stored_jobs(engine, JOBS)
        scheduler = make_scheduler(engine)
        _runtime = _Runtime(settings, leader, services)
        scheduler.start(paused=True)  # paused: the stored jobs are read before any of them runs
        _drop_unknown_jobs(scheduler, JOBS)
        for spec in JOBS:
            _ensure_job(scheduler, spec, settings)
        scheduler.resume()
        while not stop.wait(settings.scheduler_check_seconds):
            if not leader.still_leader():
                log.error("node %s lost the leader lock", settings.node_name)
                break
            scheduler = _watch(scheduler, engine, settings, status)
            if scheduler is None:
                break
            status.beat()
    finally:
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)
        _runtime = None
        engine.dispose()


STORE_RETRY_S = 2.0
"""After a job-store error, how soon the scheduler looks again."""
STORE_GIVE_UP_S = 30.0
"""A job store failing this long: give up the lead, so a node that can reach it takes over."""


def _watch(
    scheduler: BackgroundScheduler, engine: Engine, settings: Settings, status: SchedulerStatus
) -> BackgroundScheduler | None:
    """The leader's look at its scheduler: the same one if healthy, a new one if its thread
    died, None to give up the lead (its job store has failed for ``STORE_GIVE_UP_S``)."""
    failing = getattr(scheduler, "failing_since", None)
    status.store_error = getattr(scheduler, "store_error", None) if failing else None
    status.store_failing_s = 0.0 if failing is None else time.monotonic() - failing
    if status.store_failing_s >= STORE_GIVE_UP_S:
        log.error(
            "node %s gives up the lead: the job store has failed for %.0f s (%s)",
            settings.node_name,
            status.store_failing_s,
            status.store_error,
        )
        status.gave_up += 1
        _discard(scheduler)  # else its thread goes on polling, and runs jobs when this node leads
        return None
    thread = getattr(scheduler, "_thread", None)
    if scheduler.running and thread is not None and thread.is_alive():
        return scheduler
    log.error("node %s: the APScheduler thread died; rebuilding the scheduler", settings.node_name)
    _discard(scheduler)
    fresh = make_scheduler(engine)
    fresh.start(paused=True)
    for spec in JOBS:
        _ensure_job(fresh, spec, settings)
    status.rebuilds += 1  # before any job of the new scheduler can run
    fresh.resume()
    return fresh


def _discard(scheduler: BackgroundScheduler) -> None:
    """Stop a scheduler the leader no longer uses, without waiting; its store may be failing."""
    with contextlib.suppress(Exception):
        scheduler.shutdown(wait=False)


class _Scheduler(BackgroundScheduler):
    """Two fixes to APScheduler 3's loop.

    It may look for due jobs after ``shutdown()`` has begun: a job due at that moment fails to
    reach the stopped executor, yet its stored next run time moves on, and that run is lost.
    Checking the state under the job-store lock, which ``shutdown()`` takes too, closes the gap.

    And a job-store error while it stores a job's next run time (SQLite locked for longer than
    its busy timeout, PostgreSQL gone) escapes the loop and ends the scheduler's thread for good.
    Here it is logged, remembered for the leader's watch (:func:`_watch`) and retried soon.
    """

    failing_since: float | None = None
    store_error: str | None = None

    def _process_jobs(self) -> float | None:
        with self._jobstores_lock:
            if self.state == STATE_STOPPED:
                return None
            try:
                wait = super()._process_jobs()
            except Exception as error:
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                self.store_error = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
                log.warning("scheduler: the job store failed (%s); retrying", self.store_error)
                return STORE_RETRY_S
            self.failing_since = self.store_error = None
            return wait  # type: ignore[no-any-return]


def make_scheduler(engine: Engine) -> BackgroundScheduler:
    """A scheduler whose jobs are stored in the shared database, not yet started."""
    return _Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=TEHRAN,
    )


RUN_JOB_REF = f"{__name__}:run_job"


def adopt_stored_jobs(engine: Engine, jobs: Sequence[JobSpec]) -> int:
    """Stored jobs of a spec that refer to another function (as before jobs were specs, when
    each named its own): pointed at :func:`run_job` with their id, keeping their next run time.

    Without this, APScheduler could not restore them, would drop them with an error, and a run
    that fell due meanwhile would be lost. Returns how many were adopted.
    """
    wanted = {spec.id for spec in jobs}
    with engine.begin() as connection:
        if not inspect(connection).has_table(JOBS_TABLE):
            return 0
        table = Table(JOBS_TABLE, MetaData(), autoload_with=connection)
        adopted = 0
        for job_id, blob in connection.execute(select_(table.c.id, table.c.job_state)).all():
            state = pickle.loads(blob)  # our own job store: written by APScheduler for us
            if job_id in wanted and state.get("func") != RUN_JOB_REF:
                state.update(func=RUN_JOB_REF, args=(job_id,), kwargs={})
                connection.execute(
                    table.update()
                    .where(table.c.id == job_id)
                    .values(job_state=pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
                )
                adopted += 1
    if adopted:
        log.info("%d stored jobs now run through their specs", adopted)
    return adopted


def _drop_unknown_jobs(scheduler: BackgroundScheduler, jobs: Sequence[JobSpec]) -> None:
    """Stored jobs whose id no spec has any more (a job was removed): gone, and said so."""
    wanted = {spec.id for spec in jobs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            log.warning("stored job %s has no spec any more; removed", job.id)
            scheduler.remove_job(job.id)


def _ensure_job(scheduler: BackgroundScheduler, spec: JobSpec, settings: Settings) -> None:
    """Store the job, keeping a stored next run time when the schedule has not changed."""
    trigger = spec.schedule(settings)
    existing = scheduler.get_job(spec.id)
    keep: dict[str, Any] = {}
    if (
        existing is not None
        and existing.next_run_time is not None
        and _same_schedule(existing.trigger, trigger)
    ):
        keep["next_run_time"] = existing.next_run_time
    scheduler.add_job(
        run_job,
        trigger,
        args=[spec.id],
        id=spec.id,
        name=spec.id,
        replace_existing=True,
        misfire_grace_time=spec.misfire_grace_time,
        **keep,
    )


def _same_schedule(a: BaseTrigger, b: BaseTrigger) -> bool:
    return (
        type(a) is type(b)
        and str(a) == str(b)
        and str(getattr(a, "timezone", "")) == str(getattr(b, "timezone", ""))
    )


# -- a query shared with the benchmark --------------------------------


def count_overdue(engine: Engine, now: datetime) -> int:
    """Open tickets past their deadline: the query the overdue watch's index has to serve."""
    with Session(engine) as session:
        statement = (
            select(func.count())
            .select_from(Ticket)
            .where(col(Ticket.due_at) < as_stored(Ticket.due_at, now))
            .where(col(Ticket.status).in_(UNFINISHED_STATUSES))
        )
        return int(session.exec(statement).one())
