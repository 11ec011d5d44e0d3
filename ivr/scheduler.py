"""The scheduler: the overdue watch every minute and the nightly report, run by one node at a time.

Every node may run ``run_scheduler``; only the one holding the leader lock (:mod:`ivr.leader`)
starts APScheduler, the others retry the lock every ``scheduler_retry_seconds`` and take over
when the leader dies. Jobs live in the shared database (table ``apscheduler_jobs``), so the new
leader inherits their next run times: a run that fell due while no node led still happens, once
(``coalesce``), instead of being skipped. Each run re-checks leadership before it acts.

Job functions are referenced by name ("ivr.scheduler:overdue_watch_job") because the job store
pickles references, not closures; what a run needs comes from the process's :class:`_Runtime`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from ivr.clock import TEHRAN, as_stored, utcnow
from ivr.leader import Leader, make_leader
from ivr.session import Services
from ivr.settings import Settings
from ivr.tickets.models import UNFINISHED_STATUSES, Ticket

log = logging.getLogger(__name__)

JOBS_TABLE = "apscheduler_jobs"
WATCH_JOB = "overdue_watch"
REPORT_JOB = "nightly_report"
CALLBACK_JOB = "callback_dispatch"
REPORT_GRACE_S = 6 * 3600
"""A nightly report missed because no node led at 21:00 is still written up to six hours late."""


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: str
    """A textual reference: the job store pickles it, and it survives a redeploy."""
    trigger: BaseTrigger
    misfire_grace_time: int | None
    """None: however late, run once (coalesced) rather than skip."""


def job_specs(settings: Settings) -> list[JobSpec]:
    hour, minute = (int(part) for part in settings.scheduler_report_time.split(":"))
    return [
        JobSpec(
            WATCH_JOB,
            f"{__name__}:overdue_watch_job",
            IntervalTrigger(seconds=settings.scheduler_watch_seconds, timezone=TEHRAN),
            None,
        ),
        JobSpec(
            REPORT_JOB,
            f"{__name__}:nightly_report_job",
            CronTrigger(hour=hour, minute=minute, timezone=TEHRAN),
            REPORT_GRACE_S,
        ),
        JobSpec(
            CALLBACK_JOB,
            f"{__name__}:callback_dispatch_job",
            IntervalTrigger(seconds=settings.callback_dispatch_seconds, timezone=TEHRAN),
            None,
        ),
    ]


# -- the loop: lead or follow ---------------------------------------------------------------------


def run_scheduler(settings: Settings, stop: threading.Event) -> None:
    """Lead when the lock is free, follow otherwise, until ``stop`` is set (blocks)."""
    job_specs(settings)  # a bad setting fails here, once and loudly, not at every takeover
    leader = make_leader(settings.db_url, settings.node_name, settings.storage_dir)
    node = settings.node_name
    following = False
    try:
        while not stop.is_set():
            if leader.try_acquire():
                following = False
                log.info("node %s is the leader", node)
                try:
                    _lead(settings, leader, stop)
                except Exception:  # e.g. the job store's table cannot be read: let another try
                    log.exception("node %s could not run its jobs", node)
                finally:
                    leader.release()
                if not stop.is_set():
                    log.warning("node %s is no longer the leader", node)
            elif not following:
                following = True
                log.info("node %s follows; another node leads", node)
            stop.wait(settings.scheduler_retry_seconds)
    finally:
        leader.release()
        log.info("node %s stopped", node)


def _lead(settings: Settings, leader: Leader, stop: threading.Event) -> None:
    """Run APScheduler until ``stop`` or until the leader lock is gone."""
    global _runtime
    from ivr.services import build_services

    services = build_services(settings)
    engine = services.tickets.engine
    scheduler: BackgroundScheduler | None = None
    try:
        scheduler = make_scheduler(engine)
        _runtime = _Runtime(settings, leader, services)
        scheduler.start(paused=True)  # paused: the stored jobs are read before any of them runs
        for spec in job_specs(settings):
            _ensure_job(scheduler, spec)
        scheduler.resume()
        while not stop.wait(settings.scheduler_check_seconds):
            if not leader.still_leader():
                log.error("node %s lost the leader lock", settings.node_name)
                break
    finally:
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=True)
        _runtime = None
        engine.dispose()


class _Scheduler(BackgroundScheduler):
    """APScheduler 3 may look for due jobs after ``shutdown()`` has begun: a job due at that
    moment fails to reach the stopped executor, yet its stored next run time moves on, and that
    run is lost. Checking the state under the job-store lock, which ``shutdown()`` takes too,
    closes the gap."""

    def _process_jobs(self) -> float | None:
        with self._jobstores_lock:
            if self.state == STATE_STOPPED:
                return None
            return super()._process_jobs()  # type: ignore[no-any-return]


def make_scheduler(engine: Engine) -> BackgroundScheduler:
    """A scheduler whose jobs are stored in the shared database, not yet started."""
    return _Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(max_workers=2)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=TEHRAN,
    )


def _ensure_job(scheduler: BackgroundScheduler, spec: JobSpec) -> None:
    """Store the job, keeping a stored next run time when the schedule has not changed."""
    existing = scheduler.get_job(spec.id)
    keep: dict[str, Any] = {}
    if (
        existing is not None
        and existing.next_run_time is not None
        and _same_schedule(existing.trigger, spec.trigger)
    ):
        keep["next_run_time"] = existing.next_run_time
    scheduler.add_job(
        spec.func,
        spec.trigger,
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


# -- the jobs ---------------------------------------------------------------------------------


@dataclass
class _Runtime:
    """What the jobs of this process use; set while this process leads."""

    settings: Settings
    leader: Leader
    services: Services


_runtime: _Runtime | None = None


@contextlib.contextmanager
def _acting(job_id: str) -> Iterator[_Runtime | None]:
    """Yields the runtime if this node may run ``job_id`` now, else None (and says why)."""
    runtime = _runtime
    if runtime is None:
        log.warning("job %s fired with no scheduler running here", job_id)
        yield None
        return
    node = runtime.settings.node_name
    if not runtime.leader.still_leader():
        log.warning("job %s skipped: node %s is no longer the leader", job_id, node)
        yield None
        return
    with runtime.leader.job_guard(job_id) as free:
        if not free:
            log.warning("job %s skipped: running elsewhere, or its lock is out of reach", job_id)
            yield None
            return
        started = time.monotonic()
        log.info("job %s start node=%s pid=%d", job_id, node, os.getpid())
        try:
            yield runtime
        finally:
            elapsed = (time.monotonic() - started) * 1000
            log.info("job %s end node=%s ms=%.0f", job_id, node, elapsed)


def overdue_watch_job() -> None:
    """Escalate overdue tickets, send due notifications, store tickets waiting in the spool.

    The three steps are independent: one failing (or not written yet) does not stop the others.
    """
    with _acting(WATCH_JOB) as runtime:
        if runtime is None:
            return
        engine, settings = runtime.services.tickets.engine, runtime.settings
        call_step("ivr.escalation", "watch", engine, now=utcnow(), settings=settings)
        sent = call_step("ivr.notify", "send_due", engine, now=utcnow(), settings=settings)
        if sent:
            log.info("%s notifications sent", sent)
        try:
            stored = runtime.services.tickets.replay_spool()
        except Exception:
            log.exception("replaying the spool failed")
        else:
            if stored:
                log.info("%d spooled tickets stored", stored)


def nightly_report_job() -> None:
    """Placeholder until the reports issue: one line of the day's figures in storage/reports/."""
    with _acting(REPORT_JOB) as runtime:
        if runtime is None:
            return
        path = write_placeholder_report(
            runtime.services.tickets.engine, runtime.settings.storage_dir / "reports", utcnow()
        )
        log.info("nightly report written to %s", path)


def callback_dispatch_job() -> None:
    """One pass of the callback dispatcher (ivr.callbacks.job): place what is due, in order."""
    with _acting(CALLBACK_JOB) as runtime:
        if runtime is None:
            return
        call_step("ivr.callbacks.job", "run", runtime.services.tickets.engine, runtime.settings)


_missing_warned: set[str] = set()


def call_step(module_name: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """``module.name(*args, **kwargs)``, imported when first needed; logs and returns None if
    the module is missing or the call fails, so the job's other steps still run."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            log.exception("%s cannot be imported", module_name)
        elif module_name not in _missing_warned:
            _missing_warned.add(module_name)
            log.warning("%s is not there yet; its step is skipped", module_name)
        return None
    try:
        return getattr(module, name)(*args, **kwargs)
    except Exception:
        log.exception("%s.%s failed", module_name, name)
        return None


# -- queries shared with the nightly placeholder and the benchmark --------------------------------


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


def write_placeholder_report(engine: Engine, directory: Path, now: datetime) -> Path:
    """Tickets created today (Tehran) and open overdue tickets, as one line in one file."""
    local = now.astimezone(TEHRAN)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    with Session(engine) as session:
        created = session.exec(
            select(func.count())
            .select_from(Ticket)
            .where(col(Ticket.created_at) >= as_stored(Ticket.created_at, midnight))
            .where(col(Ticket.created_at) < as_stored(Ticket.created_at, midnight + timedelta(1)))
        ).one()
    overdue = count_overdue(engine, now)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{local.date().isoformat()}-placeholder.txt"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        f"{local.date().isoformat()} (Asia/Tehran): {created} tickets created, "
        f"{overdue} open tickets overdue — placeholder until the reports issue\n",
        encoding="utf-8",
    )
    os.replace(tmp, path)  # a reader never sees half a file
    return path
