"""The ticket store at production size: a million tickets on SQLite and on PostgreSQL.

For each backend, in a process of its own (so peak memory is that backend's alone):

1. migrate an empty database and bulk-load N tickets spread over two years, each with its
   ``created`` history line (SQLite: executemany through SQLAlchemy Core; PostgreSQL: COPY).
   About 2 % are open and past their deadline (every 50th ticket whose deadline has passed), the
   recent ones are open with a deadline to come, and the rest are answered or closed;
2. tickets created per second through ``TicketService.create`` (the path a caller's ticket takes,
   deadlines from the database calendar included, keyed tracking numbers), one thread. SQLite
   runs in WAL with ``synchronous=NORMAL`` (reported), so a commit waits for no fsync: the two
   inserts, into the ticket's eleven indexes, are most of it;
3. tracking-number lookups through ``TicketService.get`` on random existing numbers: p50 / p99;
4. the overdue watch (``ivr.escalation.watch``): the first pass, which escalates every overdue
   ticket at once (a catch-up, e.g. after the scheduler was down), and the next, the every-minute
   steady state; plus ``count_overdue``, the plain ``due_at``/``status`` query a watch without
   ``sla_check_at`` would need;
5. peak RSS of the benchmark process and the database's size on disk.

    .venv/bin/python benchmarks/tickets.py --tickets 1000000 --backend both

PostgreSQL: a scratch database on the server ``--postgres-url`` (default
``IVR_TEST_POSTGRES_URL``, see ``.ci/postgres.sh``) names, dropped at the end. SQLite: a file in
a temporary directory, removed at the end (``--keep`` keeps both).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ivr.tickets.tracking import tracking_from_sequence  # noqa: E402

BLOCK = 20
"""TicketService's block size: the bulk rows take whole blocks, so new tickets never collide."""
CHUNK = 50_000
SPAN_DAYS = 730
DUE_DAYS = 7
OVERDUE_EVERY = 50
"""Every 50th ticket past its deadline stays open: about 2 % of all tickets are overdue."""
OPEN = ("registered", "in_review", "referred")
CATEGORIES = ("industry", "mining", "trade", "consumer", "permits", "other")


# -- the data ---------------------------------------------------------------------------------


def ticket_rows(n: int, now: datetime, columns: set[str]) -> Iterator[list[dict[str, Any]]]:
    """N tickets in chunks, deterministic (seeded), oldest first."""
    rng = random.Random(124)
    start = now - timedelta(days=SPAN_DAYS)
    step = timedelta(days=SPAN_DAYS) / n
    chunk: list[dict[str, Any]] = []
    for i in range(n):
        created = start + step * i
        due = created + timedelta(days=DUE_DAYS)
        if due > now or i % OVERDUE_EVERY == 0:
            status = rng.choice(OPEN)
        else:
            status = rng.choice(("answered", "closed", "closed", "closed"))
        row: dict[str, Any] = {
            "id": i + 1,
            "tracking": tracking_from_sequence(BLOCK + i),
            "channel": "asterisk" if i % 3 else "twilio",
            "province": "qom",
            "category": CATEGORIES[i % len(CATEGORIES)],
            "place": None,
            "recording_path": f"recordings/{i}.wav",
            "caller_number": f"+98912{i % 10_000_000:07d}",
            "callback_number": f"0912{i % 10_000_000:07d}",
            "national_id": None,
            "status": status,
            "agency": None if status == "registered" else "office",
            "created_at": created,
            "updated_at": created,
            "due_at": due,
        }
        if "sla_check_at" in columns:
            row["sla_check_at"] = due if status in OPEN else None
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def event_rows(tickets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": t["id"],
            "ticket_id": t["id"],
            "at": t["created_at"],
            "kind": "created",
            "old_value": None,
            "new_value": "registered",
            "actor": "caller",
            "note": None,
        }
        for t in tickets
    ]


def bulk_load(engine: Engine, n: int, now: datetime) -> float:
    """Load N tickets, their history lines and their tracking blocks; seconds taken."""
    from ivr.tickets.allocator import MAX_BLOCK_SIZE
    from ivr.tickets.models import Ticket, TicketEvent, TrackingBlock

    columns = {c["name"] for c in inspect(engine).get_columns("ticket")}
    started = time.perf_counter()
    postgres = engine.dialect.name == "postgresql"
    blocks = (n + BLOCK - 1) // BLOCK
    block_rows = [{"id": k + 1, "node": "bulk", "allocated_at": now} for k in range(blocks)]
    with engine.begin() as conn:
        for chunk in ticket_rows(n, now, columns):
            if postgres:
                copy(conn, "ticket", chunk)
                copy(conn, "ticket_event", event_rows(chunk))
            else:
                conn.execute(Ticket.__table__.insert(), chunk)  # type: ignore[attr-defined]
                conn.execute(TicketEvent.__table__.insert(), event_rows(chunk))  # type: ignore[attr-defined]
        for k in range(0, blocks, CHUNK):
            part = block_rows[k : k + CHUNK]
            if postgres:
                copy(conn, "tracking_block", part)
            else:
                conn.execute(TrackingBlock.__table__.insert(), part)  # type: ignore[attr-defined]
        # As if these tickets had been there at upgrade 0009: keyed numbers avoid their range.
        conn.execute(
            text("UPDATE tracking_key SET legacy_end = :end"),
            {"end": (blocks + 1) * MAX_BLOCK_SIZE},
        )
        if postgres:  # explicit ids do not move the serial sequences
            for table in ("ticket", "ticket_event", "tracking_block"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT max(id) FROM {table}))"
                    )
                )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))  # as autovacuum / PRAGMA optimize would have by now
    return time.perf_counter() - started


def copy(conn: Any, table: str, rows: list[dict[str, Any]]) -> None:
    """COPY rows into a PostgreSQL table through psycopg, inside the open transaction."""
    names = list(rows[0])
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as out:
        for row in rows:
            out.write_row([row[name] for name in names])


# -- the measurements -------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def measure(url: str, n: int, creates: int, lookups: int, workdir: Path) -> dict[str, Any]:
    """Everything for one database at ``url`` (empty); a dict of figures."""
    from ivr.escalation import add_supervisor, watch
    from ivr.scheduler import count_overdue
    from ivr.services import build_services
    from ivr.settings import Settings
    from ivr.tickets.db import upgrade
    from ivr.tickets.service import TicketDraft

    figures: dict[str, Any] = {"tickets": n}
    upgrade(url)
    settings = Settings(storage_dir=workdir / "storage", database_url=url, node_name="bench")
    services = build_services(settings)
    engine = services.tickets.engine
    now = datetime.now(UTC)
    figures["load_s"] = bulk_load(engine, n, now)
    figures["load_rate"] = n / figures["load_s"]
    add_supervisor(engine, "Qom", "qom@example.org", "qom")
    add_supervisor(engine, "Ministry", "ministry@example.org", None)

    draft = TicketDraft(
        "asterisk", "qom", "consumer", None, None, "+989121234567", "09121234567", None
    )
    services.tickets.create(draft)  # warm: pool, calendar, first tracking block
    latencies = []
    started = time.perf_counter()
    for _ in range(creates):
        ms, created = timed(lambda: services.tickets.create(draft))
        assert not created.spooled
        latencies.append(ms)
    figures["create_rate"] = creates / (time.perf_counter() - started)
    figures["durability"] = commit_durability(engine)
    figures["create_p50_ms"] = percentile(latencies, 50)
    figures["create_p99_ms"] = percentile(latencies, 99)

    rng = random.Random(7)
    numbers = [tracking_from_sequence(BLOCK + rng.randrange(n)) for _ in range(lookups)]
    latencies = []
    for number in numbers:
        ms, view = timed(lambda number=number: services.tickets.get(number))
        assert view is not None, number
        latencies.append(ms)
    figures["lookup_p50_ms"] = percentile(latencies, 50)
    figures["lookup_p99_ms"] = percentile(latencies, 99)

    count_overdue(engine, datetime.now(UTC))  # warm, as the next minute's pass would be
    ms, figures["overdue"] = timed(lambda: count_overdue(engine, datetime.now(UTC)))
    figures["count_overdue_ms"] = ms
    ms, report = timed(lambda: watch(engine, now=datetime.now(UTC), settings=settings))
    figures["watch_first_ms"], figures["escalated"] = ms, report.level1
    ms, report = timed(lambda: watch(engine, now=datetime.now(UTC), settings=settings))
    figures["watch_steady_ms"], figures["steady_checked"] = ms, report.checked

    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["db_mb"] = database_bytes(engine) / 1e6
    engine.dispose()
    return figures


def commit_durability(engine: Engine) -> str:
    """What a commit waits for, which bounds the creation rate: SQLite's ``synchronous`` mode
    (FULL: an fsync per commit; NORMAL in WAL: at checkpoints), PostgreSQL's
    ``synchronous_commit``."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            return "sync_commit=" + str(conn.execute(text("SHOW synchronous_commit")).scalar())
        mode = conn.execute(text("PRAGMA synchronous")).scalar()
        journal = conn.execute(text("PRAGMA journal_mode")).scalar()
        names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
        return f"{journal}, synchronous={names.get(mode, mode)}"


def database_bytes(engine: Engine) -> int:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = Path(str(make_url(str(engine.url)).database))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _drop(admin: Any, name: str) -> None:
    """Drop the scratch database; FORCE needs the right to end other sessions (a test role may
    lack it), so a database still in use is waited for a moment, then kept and named."""
    for _ in range(10):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            return
        except Exception:
            time.sleep(1.0)
    print(f"could not drop PostgreSQL database {name} (still in use): drop it by hand",
          file=sys.stderr)  # fmt: skip


@contextmanager
def scratch_postgres(server: str, keep: bool) -> Iterator[str]:
    name = f"ivr_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept PostgreSQL database {name}", file=sys.stderr)
        else:
            _drop(admin, name)
        admin.dispose()


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """One backend, in this process."""
    base = Path(tempfile.mkdtemp(prefix="ivr-bench-"))
    try:
        if args.backend == "sqlite":
            url = f"sqlite:///{base / 'ivr.db'}"
            figures = measure(url, args.tickets, args.creates, args.lookups, base)
        else:
            with scratch_postgres(args.postgres_url, args.keep) as url:
                figures = measure(url, args.tickets, args.creates, args.lookups, base)
    finally:
        if args.keep:
            print(f"kept {base}", file=sys.stderr)
        else:
            subprocess.run(["rm", "-rf", str(base)], check=False)
    return {"backend": args.backend, **figures}


ROWS = [
    ("tickets loaded", "tickets", "{:,.0f}"),
    ("bulk load (s)", "load_s", "{:.1f}"),
    ("bulk load (tickets/s)", "load_rate", "{:,.0f}"),
    ("created through the service (tickets/s)", "create_rate", "{:,.0f}"),
    ("  commits made durable by", "durability", "{}"),
    ("create p50 / p99 (ms)", ("create_p50_ms", "create_p99_ms"), "{:.2f} / {:.2f}"),
    (
        "lookup by tracking number p50 / p99 (ms)",
        ("lookup_p50_ms", "lookup_p99_ms"),
        "{:.2f} / {:.2f}",
    ),
    ("open overdue tickets", "overdue", "{:,.0f}"),
    ("overdue watch, first pass (ms)", "watch_first_ms", "{:,.0f}"),
    ("  tickets it escalated", "escalated", "{:,.0f}"),
    ("overdue watch, steady pass (ms)", "watch_steady_ms", "{:,.1f}"),
    ("count_overdue (due_at/status) (ms)", "count_overdue_ms", "{:,.1f}"),
    ("peak RSS of the process (MB)", "peak_rss_mb", "{:,.0f}"),
    ("database on disk (MB)", "db_mb", "{:,.0f}"),
]


def table(results: list[dict[str, Any]]) -> str:
    width = max(len(label) for label, _, _ in ROWS) + 2
    lines = ["".ljust(width) + "".join(r["backend"].rjust(18) for r in results)]
    for label, key, fmt in ROWS:
        cells = []
        for r in results:
            values = [r[k] for k in key] if isinstance(key, tuple) else [r[key]]
            cells.append(fmt.format(*values).rjust(18))
        lines.append(label.ljust(width) + "".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--postgres-url", default=os.environ.get("IVR_TEST_POSTGRES_URL", ""))
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.tickets < 1 or args.creates < 1 or args.lookups < 1:
        parser.error("--tickets, --creates and --lookups must be positive")
    if args.backend != "sqlite" and not args.postgres_url:
        parser.error("PostgreSQL: set IVR_TEST_POSTGRES_URL or pass --postgres-url")

    if args.backend != "both":
        results = [run_one(args)]
    else:  # a process per backend: each one's peak memory is its own
        results = []
        for backend in ("sqlite", "postgresql"):
            argv = [a for a in sys.argv[1:] if a != "--json"]
            child = [sys.executable, __file__, *argv, "--backend", backend, "--json"]
            done = subprocess.run(child, stdout=subprocess.PIPE, text=True)
            if done.returncode:  # the child said why on stderr
                raise SystemExit(done.returncode)
            results.extend(json.loads(done.stdout))
    if args.json:
        print(json.dumps(results))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
