"""The nightly report on a busy day: 100,000 calls and 2,000,000 call steps (smaller by option).

For each backend (SQLite, PostgreSQL), on a migrated scratch database:

1. bulk-load one Tehran day: N calls (default 100,000) over 31 provinces (Qom a tenth of them),
   S steps per call on average (default 20: 2,000,000 steps) over 20 menu nodes, a third of the
   calls queued (answered, abandoned, some within 5 s), N/4 tickets with their history, N/50
   callbacks with attempts;
2. **figures**: ``ivr.reports.figures.compute`` for the nation and for Qom (ms);
3. **files**: ``ivr.reports.store.write_report`` — figures, HTML, charts, PDF and the CSV of every
   call — for the nation and for Qom (ms);
4. **memory**: the peak of Python allocations (tracemalloc) while the national files are written,
   and the process's peak RSS (``ru_maxrss``) after all of it. The CSV streams from a server-side
   cursor and every figure is aggregated in SQL, so neither grows with the day's rows.

    .venv/bin/python benchmarks/reports.py --backend both
    .venv/bin/python benchmarks/reports.py --calls 10000  # a quick look

PostgreSQL: a scratch database on ``--postgres-url`` (default ``IVR_TEST_POSTGRES_URL``, see
``.ci/postgres.sh``), dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from callbacks import database  # noqa: E402  (benchmarks/callbacks.py: a scratch database)

from ivr.callbacks.models import Callback, CallbackAttempt  # noqa: E402
from ivr.clock import day_start_utc  # noqa: E402
from ivr.reports.figures import compute  # noqa: E402
from ivr.reports.store import write_report  # noqa: E402
from ivr.tickets.db import make_engine, upgrade  # noqa: E402
from ivr.tickets.models import Call, CallStep, Ticket, TicketEvent  # noqa: E402

DAY = date(2026, 11, 27)  # 1405/09/06
PROVINCES = (
    "alborz", "ardabil", "azarbaijan-east", "azarbaijan-west", "bushehr", "chaharmahal",
    "fars", "gilan", "golestan", "hamadan", "hormozgan", "ilam", "isfahan", "kerman",
    "kermanshah", "khorasan-north", "khorasan-razavi", "khorasan-south", "khuzestan",
    "kohgiluyeh", "kurdistan", "lorestan", "markazi", "mazandaran", "qazvin",
    "semnan", "sistan", "tehran", "yazd", "zanjan",
)  # fmt: skip
NODES = ("main", *(f"node.{i}" for i in range(19)))
STEP_OUTCOMES = ("ok", "ok", "ok", "ok", "invalid", "timeout", "repeat")
BATCH = 20_000


def _province(rng: random.Random) -> str:
    return "qom" if rng.random() < 0.1 else rng.choice(PROVINCES)


def load_day(engine: Engine, calls: int, steps_per_call: int, seed: int = 124) -> int:
    """Write the day; returns how many steps were written."""
    rng = random.Random(seed)
    start = day_start_utc(DAY)
    call_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    written = 0

    def flush(connection: Any, final: bool = False) -> None:
        nonlocal written
        steps_due = step_rows and (final or len(step_rows) >= BATCH)
        if call_rows and (final or steps_due or len(call_rows) >= BATCH // 10):
            connection.execute(Call.__table__.insert(), call_rows)  # type: ignore[attr-defined]
            call_rows.clear()
        if steps_due:
            connection.execute(CallStep.__table__.insert(), step_rows)  # type: ignore[attr-defined]
            written += len(step_rows)
            step_rows.clear()

    with engine.begin() as connection:
        for n in range(1, calls + 1):
            began = start + timedelta(seconds=rng.uniform(0, 86_399))
            queued = rng.random() < 1 / 3
            wait = rng.expovariate(1 / 40) if queued else None
            outcome = (
                rng.choice(("connected", "connected", "abandoned", "left")) if queued else None
            )
            call_rows.append(
                {
                    "id": n,
                    "channel": rng.choice(("asterisk", "twilio")),
                    "external_id": f"bench-{n}",
                    "caller": f"0912{rng.randrange(10**7):07d}",
                    "called": "124",
                    "province": _province(rng),
                    "started_at": began,
                    "ended_at": began + timedelta(seconds=rng.uniform(20, 900)),
                    "outcome": "transferred" if queued else rng.choice(("ticket", "abandoned")),
                    "ended_by": "transferred" if queued else rng.choice(("caller", "ivr")),
                    "state": "{}",
                    "turn": 0,
                    "queue": "124" if queued else None,
                    "queue_joined_at": began + timedelta(seconds=30) if queued else None,
                    "queue_left_at": began + timedelta(seconds=30 + (wait or 0))
                    if queued
                    else None,
                    "queue_wait_s": wait,
                    "queue_outcome": outcome,
                    "agent": f"agent-{rng.randrange(40)}" if outcome == "connected" else None,
                }
            )
            count = max(1, int(rng.gauss(steps_per_call, steps_per_call / 4)))
            for i in range(count):
                step_rows.append(
                    {
                        "call_id": n,
                        "at": began + timedelta(seconds=i * 3),
                        "node": NODES[min(i // 2, len(NODES) - 1)] if i else "main",
                        "event": "digits",
                        "outcome": "started" if i == 0 else rng.choice(STEP_OUTCOMES),
                    }
                )
            flush(connection)
        flush(connection, final=True)
        tickets = [
            {
                "id": n,
                "tracking": f"{n:09d}",
                "channel": "twilio",
                "province": _province(rng),
                "category": rng.choice(("trade", "price", "industry")),
                "place": None,
                "callback_number": "09121234567",
                "status": "registered",
                "agency": rng.choice((None, "tazirat", "edare")),
                "created_at": start + timedelta(seconds=rng.uniform(-86_400 * 10, 86_399)),
                "updated_at": start,
                "due_at": start + timedelta(seconds=rng.uniform(-86_400 * 5, 86_400 * 5)),
                "escalation_level": 0,
            }
            for n in range(1, calls // 4 + 1)
        ]
        connection.execute(Ticket.__table__.insert(), tickets)  # type: ignore[attr-defined]
        events = [
            {
                "ticket_id": t["id"],
                "at": t["created_at"] + timedelta(hours=rng.uniform(1, 48)),
                "kind": "status",
                "old_value": "registered",
                "new_value": rng.choice(("in_review", "answered", "closed")),
                "actor": f"agent-{rng.randrange(40)}",
                "note": None,
            }
            for t in tickets
            if rng.random() < 0.5
        ]
        connection.execute(TicketEvent.__table__.insert(), events)  # type: ignore[attr-defined]
        callbacks = [
            {
                "id": n,
                "number": f"0912{n:07d}",
                "active_number": None,
                "province": _province(rng),
                "status": rng.choice(("done", "failed", "pending")),
                "requested_at": start + timedelta(seconds=rng.uniform(0, 80_000)),
                "entered_at": start,
                "attempts": 1,
                "next_attempt_at": start,
                "updated_at": start,
            }
            for n in range(1, calls // 50 + 1)
        ]
        connection.execute(Callback.__table__.insert(), callbacks)  # type: ignore[attr-defined]
        connection.execute(
            CallbackAttempt.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "callback_id": c["id"],
                    "slot": 1,
                    "node": "n1",
                    "dialer": "asterisk",
                    "started_at": c["requested_at"] + timedelta(minutes=5),
                    "connected_at": c["requested_at"] + timedelta(minutes=6),
                    "ended_at": c["requested_at"] + timedelta(minutes=8),
                    "outcome": "answered" if c["status"] == "done" else "no_answer",
                }
                for c in callbacks
            ],
        )
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    return written


def _ms(action: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = action()
    return (time.perf_counter() - began) * 1000, result


def bench(url: str, calls: int, steps_per_call: int) -> dict[str, Any]:
    upgrade(url)
    engine = make_engine(url)
    try:
        began = time.perf_counter()
        steps = load_day(engine, calls, steps_per_call)
        loaded_s = time.perf_counter() - began
        with tempfile.TemporaryDirectory(prefix="ivr-bench-reports-") as folder:
            out = Path(folder)
            compute(engine, DAY, None)  # warm the caches once, as a nightly run after the day
            national_ms, national = _ms(lambda: compute(engine, DAY, None))
            qom_ms, qom = _ms(lambda: compute(engine, DAY, "qom"))
            files_national_ms, stored = _ms(lambda: write_report(engine, out, DAY, None))
            files_qom_ms, _ = _ms(lambda: write_report(engine, out, DAY, "qom"))
            tracemalloc.start()
            write_report(engine, out, DAY, None)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            pdf_kb = stored.pdf.stat().st_size / 1024
            csv_mb = stored.csv.stat().st_size / 1024 / 1024
        return {
            "backend": engine.dialect.name,
            "calls": national.received,
            "steps": steps,
            "qom_calls": qom.received,
            "load_s": loaded_s,
            "figures_national_ms": national_ms,
            "figures_qom_ms": qom_ms,
            "files_national_ms": files_national_ms,
            "files_qom_ms": files_qom_ms,
            "python_peak_mb": peak / 1024 / 1024,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "pdf_kb": pdf_kb,
            "csv_mb": csv_mb,
        }
    finally:
        engine.dispose()


ROWS = [
    ("calls in the day", "calls", "{:,}"),
    ("call steps", "steps", "{:,}"),
    ("  of them Qom's calls", "qom_calls", "{:,}"),
    ("loading the day (s)", "load_s", "{:.0f}"),
    ("figures, national (ms)", "figures_national_ms", "{:,.0f}"),
    ("figures, Qom (ms)", "figures_qom_ms", "{:,.0f}"),
    ("files (HTML, PDF, CSV), national (ms)", "files_national_ms", "{:,.0f}"),
    ("files, Qom (ms)", "files_qom_ms", "{:,.0f}"),
    ("Python allocations' peak, national files (MB)", "python_peak_mb", "{:.1f}"),
    ("process peak RSS (MB)", "max_rss_mb", "{:.0f}"),
    ("national PDF (KB) / CSV (MB)", "pdf_kb", "{:.0f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--steps-per-call", type=int, default=20)
    parser.add_argument("--postgres-url", default=os.environ.get("IVR_TEST_POSTGRES_URL", ""))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.calls < 1 or args.steps_per_call < 1:
        parser.error("--calls and --steps-per-call must be positive")
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = []
    for backend in backends:
        with database(backend, args.postgres_url) as url:
            results.append(bench(url, args.calls, args.steps_per_call))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"nightly report benchmark, {datetime.now(UTC):%Y-%m-%d}")
    print("| figure | " + " | ".join(r["backend"] for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for label, key, form in ROWS:
        cells = []
        for r in results:
            cell = form.format(r[key])
            if key == "pdf_kb":
                cell += f" / {r['csv_mb']:.1f}"
            cells.append(cell)
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
