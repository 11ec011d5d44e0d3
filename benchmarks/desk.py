"""The desk at production size: server time of its pages with a million tickets.

For each backend, in this process: migrate an empty database, bulk-load N tickets the way
``benchmarks/tickets.py`` does (spread over two years, four provinces, the search keys of
migration 0010 filled in), log a Qom supervisor in through the real form, then time requests
through the real app in-process (Starlette's TestClient: routing, the session and CSRF checks,
the queries, the templates; no network):

* the default list (``/desk/tickets``), a filtered list (status + category), a phone search by
  the last six digits (``?q=``), a ticket page (random tickets of the province), "my work"
  (``/desk/``); p50 and p99 in milliseconds.

    .venv/bin/python benchmarks/desk.py --tickets 1000000 --backend both
    .venv/bin/python benchmarks/desk.py --tickets 20000 --backend sqlite   # a quick run
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tickets as bulk  # noqa: E402  (benchmarks/tickets.py: the bulk loader)
from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

PROVINCES = ("qom", "tehran", "markazi", "isfahan")
PASSWORD = "benchmark password"
_plain_rows = bulk.ticket_rows


def desk_rows(n: int, now: datetime, columns: set[str]) -> Any:
    """benchmarks/tickets.py's rows, in four provinces, with 0010's search keys."""
    for chunk in _plain_rows(n, now, columns):
        for row in chunk:
            row["province"] = PROVINCES[row["id"] % len(PROVINCES)]
            row["callback_reversed"] = row["callback_number"][::-1]
            row["caller_reversed"] = row["caller_number"].lstrip("+")[::-1]
        yield chunk


bulk.ticket_rows = desk_rows


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(url: str, n: int, requests: int, workdir: Path) -> dict[str, Any]:
    from starlette.testclient import TestClient

    from ivr.services import build_services
    from ivr.settings import Settings
    from ivr.tickets.db import upgrade
    from ivr.users.store import UserStore
    from ivr.web.app import create_app

    upgrade(url)
    engine = create_engine(url, poolclass=NullPool)
    loaded = bulk.bulk_load(engine, n, datetime.now(UTC))
    engine.dispose()
    settings = Settings(
        storage_dir=workdir,
        database_url=url,
        scheduler_enabled=False,
        agents_always_open=True,
        secret_key="benchmark",
        desk_login_tries=1000,
    )
    services = build_services(settings)
    UserStore(services.tickets.engine).add("sup", "supervisor", password=PASSWORD, province="qom")
    client = TestClient(create_app(settings, services), follow_redirects=False)
    form = client.get("/desk/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    reply = client.post(
        "/desk/login", data={"username": "sup", "password": PASSWORD, "csrf_token": token}
    )
    assert reply.status_code == 303, reply.text
    rng = random.Random(7)
    qom_ids = [i for i in range(1, n + 1) if i % len(PROVINCES) == 0]

    def tracking(i: int) -> str:
        return bulk.tracking_from_sequence(bulk.BLOCK + i - 1)

    cases = {
        "default list": lambda: "/desk/tickets",
        "filtered list": lambda: "/desk/tickets?status=in_review&category=industry",
        "phone search": lambda: f"/desk/tickets?q={(rng.choice(qom_ids) - 1) % 10_000_000:07d}"[
            :-1
        ],
        "ticket page": lambda: f"/desk/tickets/{tracking(rng.choice(qom_ids))}",
        "my work": lambda: "/desk/",
    }
    results: dict[str, Any] = {"backend": url.split(":")[0], "tickets": n, "load_s": loaded}
    for name, make in cases.items():
        times = []
        for k in range(requests + 5):
            path = make()
            started = time.perf_counter()
            answer = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            assert answer.status_code == 200, (path, answer.status_code)
            if k >= 5:  # the first requests warm caches and the template compiler
                times.append(elapsed)
        results[name] = (percentile(times, 50), percentile(times, 99))
    services.tickets.engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("IVR_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    if args.tickets < 1 or args.requests < 1:
        parser.error("--tickets and --requests must be positive")
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    rows = []
    for backend in backends:
        workdir = Path(tempfile.mkdtemp(prefix="ivr-desk-bench-"))
        try:
            if backend == "sqlite":
                rows.append(
                    run(f"sqlite:///{workdir / 'ivr.db'}", args.tickets, args.requests, workdir)
                )
            else:
                if not args.postgres_url:
                    sys.exit("PostgreSQL: set IVR_TEST_POSTGRES_URL or --postgres-url")
                with bulk.scratch_postgres(args.postgres_url, keep=False) as url:
                    rows.append(run(url, args.tickets, args.requests, workdir))
                    print(rows[-1], file=sys.stderr, flush=True)  # before the drop, which may fail
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if backend == "sqlite":
            print(rows[-1] if rows else f"{backend}: failed", file=sys.stderr, flush=True)
    names = ("default list", "filtered list", "phone search", "ticket page", "my work")
    print(f"| backend | tickets | {' | '.join(names)} |")
    print("|---|---|" + "---|" * len(names))
    for r in rows:
        cells = " | ".join(f"{r[k][0]:.1f} / {r[k][1]:.1f}" for k in names)
        print(f"| {r['backend']} | {r['tickets']:,} | {cells} |")
    print("(ms, p50 / p99, server time in-process; bulk load not included)")


if __name__ == "__main__":
    main()
