"""Two dispatcher processes on one PostgreSQL: each callback is attempted once per attempt slot.

No leader election here (the scheduler gives that, see test_scheduler_*): both nodes dispatch at
the same moments, so only the claims in the database keep them from calling a number twice.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ivr.callbacks.models import CallbackStatus
from ivr.callbacks.service import CallbackService
from ivr.clock import as_aware
from ivr.tickets.db import make_engine, upgrade

WORKER = Path(__file__).with_name("callback_worker.py")
CALLBACKS = 20
NODES = ("node-a", "node-b")


def test_two_dispatchers_attempt_each_callback_once_per_slot(pg_url: str, tmp_path: Path):
    upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        service = CallbackService(engine)
        entered = datetime.now(UTC) - timedelta(minutes=10)
        ids = []
        for i in range(CALLBACKS):
            row = service.request(f"0912{i:07d}", "qom", entered + timedelta(seconds=i))
            assert row.id is not None
            ids.append(row.id)
        network = tmp_path / "network.log"
        network.touch()
        start = time.time() + 3
        workers = [
            subprocess.Popen(
                [sys.executable, str(WORKER), pg_url, node, str(network), str(start), "40"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for node in NODES
        ]
        for worker in workers:
            _out, err = worker.communicate(timeout=90)
            assert worker.returncode == 0, err[-3000:]

        calls = [line.split() for line in network.read_text().splitlines()]
        placed = Counter(attempt for _cb, attempt, _node, _at in calls)
        assert all(n == 1 for n in placed.values()), "an attempt was placed twice"
        nodes = Counter(node for _cb, _attempt, node, _at in calls)
        assert set(nodes) == set(NODES), f"both nodes dispatched: {nodes}"
        for callback_id in ids:
            row = service.get(callback_id)
            assert row is not None and row.status == CallbackStatus.FAILED and row.attempts == 3
            attempts = service.attempts_of(callback_id)
            assert [a.slot for a in attempts] == [1, 2, 3]  # one attempt per slot, no more
            assert sum(1 for c in calls if int(c[0]) == callback_id) == 3
            # Never two at once for one number: each attempt starts after the last one ended,
            # and at least the retry spacing later.
            for before, after in itertools.pairwise(attempts):
                assert before.ended_at is not None
                gap = as_aware(after.started_at) - as_aware(before.ended_at)
                assert gap >= timedelta(seconds=0.3)
    finally:
        engine.dispose()
