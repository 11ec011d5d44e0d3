"""One callback dispatcher pass with 10,000 pending callbacks across 31 provinces.

For each backend (SQLite, PostgreSQL), on a migrated scratch database:

1. bulk-load N pending callbacks (default 10,000) spread over Iran's 31 provinces, entered
   over the last two hours, Qom closed today by a provincial closure (a closure names a
   province the calendar knows, one with a province file: Qom is the only one yet);
2. a queue of A logged-in agents (default 40) with W live callers waiting (default 10), as
   AMI QueueStatus would show it, and a dialer that places instantly (no telephone network:
   what is measured is the dispatcher and its database);
3. the **placing pass**: lease check, queue, withdrawals, the due callbacks of open provinces in
   entry order, claims and placements up to the look-ahead window (A entries): ms and the number
   of SQL statements it issues (a SQLAlchemy ``before_cursor_execute`` listener);
4. the **steady pass** that follows (every stand-in holds its place, nothing more is due): the
   pass the leader runs every few seconds most of the day — p50 over 20 passes, and statements.

    .venv/bin/python benchmarks/callbacks.py --backend both

PostgreSQL: a scratch database on ``--postgres-url`` (default ``IVR_TEST_POSTGRES_URL``, see
``.ci/postgres.sh``), dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ivr.calendar.agent_hours import AgentHours, load_agent_hours  # noqa: E402
from ivr.calendar.store import add_holiday, load_calendar  # noqa: E402
from ivr.callbacks.dialing import AttemptOrder, Check, Sink  # noqa: E402
from ivr.callbacks.dispatcher import Dispatcher  # noqa: E402
from ivr.callbacks.models import Callback  # noqa: E402
from ivr.callbacks.queue_view import QueueSnapshot, WaitingEntry  # noqa: E402
from ivr.callbacks.service import CallbackService, OpenAttempt  # noqa: E402
from ivr.tickets.db import make_engine, upgrade  # noqa: E402

PROVINCES = (
    "alborz", "ardabil", "azarbaijan-east", "azarbaijan-west", "bushehr", "chaharmahal",
    "fars", "gilan", "golestan", "hamadan", "hormozgan", "ilam", "isfahan", "kerman",
    "kermanshah", "khorasan-north", "khorasan-razavi", "khorasan-south", "khuzestan",
    "kohgiluyeh", "kurdistan", "lorestan", "markazi", "mazandaran", "qazvin", "qom",
    "semnan", "sistan", "tehran", "yazd", "zanjan",
)  # fmt: skip
CLOSED = ("qom",)
NOW = datetime(2026, 5, 16, 6, 30, tzinfo=UTC)
"""Saturday 1405/02/26 10:00 in Tehran: a working day."""


class BenchQueue:
    """The queue as QueueStatus shows it: live callers, and the stand-ins placed so far."""

    def __init__(self, agents: int, waiting: int) -> None:
        self.agents = agents
        self.entries = [
            WaitingEntry(i + 1, NOW - timedelta(minutes=3 - i * 0.1), f"PJSIP/caller-{i}")
            for i in range(waiting)
        ]

    def snapshot(self) -> QueueSnapshot:
        ordered = sorted(self.entries, key=lambda e: e.entered_at)
        return QueueSnapshot(self.agents, 0, tuple(ordered), max_len=0)


class InstantDialer:
    """Places at once; each stand-in shows up in the queue at its entry time."""

    name = "bench"
    holds_place = True

    def __init__(self, queue: BenchQueue) -> None:
        self.queue = queue

    def listen(self, sink: Sink) -> None:
        pass

    def place(self, order: AttemptOrder) -> str:
        entry = WaitingEntry(
            0, order.entered_at, f"Local/standin-{order.attempt_id}", order.attempt_id
        )
        self.queue.entries.append(entry)
        return f"standin-{order.attempt_id}"

    def withdraw(self, attempt_id: int, channel: str) -> None:
        pass

    def check(self, attempts: Sequence[OpenAttempt]) -> Mapping[int, Check]:
        return {}

    def close(self) -> None:
        pass


def load(engine: Any, n: int) -> None:
    rng = random.Random(124)
    rows = []
    for i in range(n):
        entered = NOW - timedelta(seconds=rng.uniform(0, 7200))
        number = f"0912{i:07d}"
        rows.append(
            {
                "number": number,
                "active_number": number,
                "province": PROVINCES[i % len(PROVINCES)],
                "status": "pending",
                "requested_at": entered,
                "entered_at": entered,
                "attempts": 0,
                "next_attempt_at": entered,
                "updated_at": entered,
            }
        )
    with engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(Callback), rows[start : start + 5000])
    for province in CLOSED:
        add_holiday(engine, NOW.date(), "تعطیلی", kind="closure", province=province)


def measure(url: str, n: int, agents: int, waiting: int) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    try:
        load(engine, n)
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        statements = [0]

        @event.listens_for(engine, "before_cursor_execute")
        def _count(*_args: Any) -> None:
            statements[0] += 1

        hours = AgentHours(load_agent_hours(), load_calendar(engine, date(2026, 5, 16)))
        queue = BenchQueue(agents, waiting)
        service = CallbackService(engine, clock=lambda: NOW)
        dispatcher = Dispatcher(service, hours, queue, InstantDialer(queue), node="bench")

        statements[0] = 0
        started = time.perf_counter()
        first = dispatcher.dispatch_once()
        placing_ms = (time.perf_counter() - started) * 1000
        placing_statements = statements[0]

        steady = []
        steady_statements = 0
        for _ in range(20):
            statements[0] = 0
            started = time.perf_counter()
            report = dispatcher.dispatch_once()
            steady.append((time.perf_counter() - started) * 1000)
            steady_statements = statements[0]
            assert not report.placed, "the steady pass placed more"
        return {
            "pending": n,
            "provinces": len(PROVINCES),
            "placed": len(first.placed),
            "placing_ms": placing_ms,
            "placing_statements": placing_statements,
            "steady_p50_ms": statistics.median(steady),
            "steady_statements": steady_statements,
        }
    finally:
        engine.dispose()


@contextmanager
def database(backend: str, server: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="ivr-bench-") as base:
            yield f"sqlite:///{Path(base) / 'ivr.db'}"
        return
    name = f"ivr_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


ROWS = [
    ("pending callbacks", "pending", "{:,}"),
    (f"provinces ({len(CLOSED)} closed today)", "provinces", "{}"),
    ("placed by the placing pass", "placed", "{}"),
    ("placing pass (ms)", "placing_ms", "{:.1f}"),
    ("  SQL statements", "placing_statements", "{}"),
    ("steady pass p50 (ms)", "steady_p50_ms", "{:.1f}"),
    ("  SQL statements", "steady_statements", "{}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callbacks", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--waiting", type=int, default=10)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--postgres-url", default=os.environ.get("IVR_TEST_POSTGRES_URL", ""))
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.callbacks < 1 or args.agents < 1 or args.waiting < 0:
        parser.error("--callbacks and --agents must be positive, --waiting not negative")
    if args.backend != "sqlite" and not args.postgres_url:
        parser.error("PostgreSQL: set IVR_TEST_POSTGRES_URL or pass --postgres-url")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = []
    for backend in backends:
        with database(backend, args.postgres_url) as url:
            figures = measure(url, args.callbacks, args.agents, args.waiting)
        results.append({"backend": backend, **figures})
    if args.json:
        print(json.dumps(results))
        return
    width = max(len(label) for label, _, _ in ROWS) + 2
    print("".ljust(width) + "".join(r["backend"].rjust(14) for r in results))
    for label, key, fmt in ROWS:
        print(label.ljust(width) + "".join(fmt.format(r[key]).rjust(14) for r in results))


if __name__ == "__main__":
    main()
