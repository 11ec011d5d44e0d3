"""Nodes of a test cluster: ``ivr`` subprocesses on one database, and what their logs say."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_TIME = "%Y-%m-%d %H:%M:%S,%f"
JOB_LINE = re.compile(
    r"^(?P<at>\S+ \S+) DEBUG ivr\.scheduler: "
    r"job (?P<job>\w+) (?P<edge>start|end) node=(?P<node>\S+)"
)
"""A job run's edges: DEBUG lines (routine, every minute), hence IVR_LOG_LEVEL=debug below."""


def ivr_command() -> str:
    beside = Path(sys.executable).with_name("ivr")
    found = str(beside) if beside.is_file() else shutil.which("ivr")
    if found is None:
        raise RuntimeError("the `ivr` command is not installed (pip install -e .)")
    return found


def node_env(storage: Path, url: str, **settings: str) -> dict[str, str]:
    """This process's environment without ``IVR_*``, plus storage, database and ``settings``
    (logging at DEBUG, so that each job run's start and end are in the log)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(IVR_STORAGE_DIR=str(storage), IVR_DATABASE_URL=url, PYTHONUNBUFFERED="1")
    env.update(IVR_LOG_LEVEL="debug")
    env.update({f"IVR_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass(frozen=True)
class JobRun:
    job: str
    node: str
    start: datetime
    end: datetime | None


@dataclass
class Node:
    """One ``ivr`` process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    killed_at: datetime | None = field(default=None)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for(self, needle: str, timeout: float, count: int = 1) -> datetime:
        """Wait until ``needle`` has appeared ``count`` times in the log; returns when it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [line for line in self.log().splitlines() if needle in line]
            if len(lines) >= count:
                return datetime.strptime(lines[count - 1][:23], LOG_TIME)
            if not self.alive():
                break
            time.sleep(0.1)
        raise AssertionError(
            f"{self.name}: {needle!r} did not appear {count}x within {timeout} s "
            f"(alive: {self.alive()})\n--- log ---\n{self.log()[-6000:]}"
        )

    def runs(self, job: str = "overdue_watch") -> list[JobRun]:
        """The job's runs in this node's log, from its start and end lines."""
        runs: list[JobRun] = []
        for line in self.log().splitlines():
            match = JOB_LINE.match(line)
            if not match or match["job"] != job:
                continue
            at = datetime.strptime(match["at"], LOG_TIME)
            if match["edge"] == "start":
                runs.append(JobRun(job, match["node"], at, None))
            elif runs and runs[-1].end is None:
                runs[-1] = JobRun(job, match["node"], runs[-1].start, at)
        return runs

    def kill(self) -> datetime:
        """SIGKILL: no clean-up, as when a machine dies; returns the moment it was sent."""
        self.killed_at = datetime.now()
        self.process.kill()
        self.process.wait(timeout=10)
        return self.killed_at

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)
