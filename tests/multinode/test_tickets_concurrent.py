"""Two IVR nodes (processes) creating 1,000 tickets at the same moment on one database.

Every ticket must be stored, its tracking number valid and unique, and taken from a block that
the database gave to the node that used it (hi/lo: nodes never hand out each other's numbers).
Numbers may have gaps; they may never repeat.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import Session, func, select

from ivr.tickets.db import make_engine
from ivr.tickets.models import Ticket, TicketEvent, TrackingBlock, TrackingKey
from ivr.tickets.tracking import is_valid_tracking, keyed_sequence

WORKER = Path(__file__).with_name("ticket_worker.py")
TICKETS = 1000
NODES = ("node-a", "node-b")
THREADS = 4
BLOCK = 20
"""TicketService's default block size: every node sharing a database must use the same."""


def test_two_nodes_create_a_thousand_tickets_at_once(migrated_url: str, tmp_path: Path) -> None:
    start = time.time() + 3  # both processes imported and connected by then
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                migrated_url,
                node,
                str(tmp_path / node),
                str(TICKETS // len(NODES)),
                str(THREADS),
                str(start),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in NODES
    ]
    reported: dict[str, list[str]] = {}
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        result = json.loads(out)
        assert result["spooled"] == [], f"{result['node']} spooled tickets:\n{err[-3000:]}"
        reported[result["node"]] = result["stored"]

    numbers = [n for node in NODES for n in reported[node]]
    assert len(numbers) == TICKETS
    assert len(set(numbers)) == TICKETS, "a tracking number was handed out twice"
    assert all(is_valid_tracking(n) for n in numbers)

    engine = make_engine(migrated_url)
    try:
        with Session(engine) as session:
            stored = set(session.exec(select(Ticket.tracking)).all())
            events = session.exec(
                select(func.count()).select_from(TicketEvent).where(TicketEvent.kind == "created")
            ).one()
            owner = dict(session.exec(select(TrackingBlock.id, TrackingBlock.node)).all())
            key = session.get(TrackingKey, 1)
            assert key is not None
    finally:
        engine.dispose()
    assert stored == set(numbers)
    assert events == TICKETS
    for node in NODES:
        for number in reported[node]:
            sequence = keyed_sequence(number, bytes.fromhex(key.secret), key.legacy_end)
            assert sequence is not None, number
            block = sequence // BLOCK
            assert owner[block] == node, f"{number} from {node} is in {owner[block]}'s block"
    blocks = {node: [b for b, owner_node in owner.items() if owner_node == node] for node in NODES}
    a, b = (blocks[node] for node in NODES)
    assert min(a) < max(b) and min(b) < max(a), "the nodes did not run at the same time"
    assert not [p for node in NODES for p in (tmp_path / node / "spool").glob("*.json")]
