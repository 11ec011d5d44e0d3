"""Two ``ivr scheduler`` processes on one database: one acts, and when it dies the other does.

What the jobs do is observed two ways: the start/end line every run logs (runs of the two nodes
must never overlap, and a node runs nothing before it leads), and real work that must be done
exactly once: tickets taken while the database was down wait in a spool directory both nodes
share, and whichever node leads stores them.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from ivr_nodes import JobRun, Node
from sqlalchemy import text
from sqlmodel import Session, func, select

from ivr.settings import Settings
from ivr.tickets.db import make_engine
from ivr.tickets.models import Notification, Ticket, TicketEvent
from ivr.tickets.service import SPOOLED_NOTE, TicketDraft, TicketService
from ivr.tickets.tracking import is_valid_tracking

FAST = {"scheduler_watch_seconds": "1"}
"""The overdue watch every second; leadership timings stay at their defaults (retry 10 s)."""
TAKEOVER_LIMIT_S = 60


def spool_tickets(storage: Path, count: int) -> None:
    """``count`` tickets taken while the database was unreachable, into ``storage``'s spool."""
    down = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    service = TicketService(down, Settings(storage_dir=storage, node_name="ivr"), retries=0)
    for i in range(count):
        draft = TicketDraft("twilio", "qom", "trade", None, None, None, f"0912000{i:04d}", None)
        assert service.create(draft).spooled
    down.dispose()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def spool_empty(storage: Path) -> Callable[[], bool]:
    return lambda: not list((storage / "spool").glob("*.json"))


def assert_no_overlap(runs: list[JobRun], killed: dict[str, datetime]) -> None:
    """Runs of all nodes, by start time: each ends before the next begins (a run cut short by
    SIGKILL ends when the kill was sent)."""
    ordered = sorted(runs, key=lambda r: r.start)
    for before, after in itertools.pairwise(ordered):
        end = before.end or killed[before.node]
        assert end <= after.start, f"{before} overlaps {after}"


def stored_spool_tickets(url: str) -> list[tuple[str, int]]:
    """(tracking, number of 'created' events from the spool) for every ticket."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.exec(
                select(Ticket.tracking, func.count())
                .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
                .where(TicketEvent.kind == "created", TicketEvent.note == SPOOLED_NOTE)
                .group_by(Ticket.tracking)
            ).all()
            total = session.exec(select(func.count()).select_from(Ticket)).one()
        assert total == len(rows), "a ticket was stored without its spool note"
        return [(tracking, n) for tracking, n in rows]
    finally:
        engine.dispose()


def stored_counts(*logs: Node) -> int:
    """Tickets the nodes say they stored from the spool."""
    total = 0
    for node in logs:
        for line in node.log().splitlines():
            if "spooled tickets stored" in line:
                total += int(line.rsplit(": ", 1)[1].split()[0])
    return total


def test_one_scheduler_acts_and_the_other_takes_over(
    migrated_url: str, tmp_path: Path, nodes: Callable[..., Node]
) -> None:
    shared = tmp_path / "shared"  # one spool for both: whichever node leads must empty it
    spool_tickets(shared, 3)

    a = nodes("a", migrated_url, storage=shared, **FAST)
    a.wait_for("node a is the leader", 30)
    b = nodes("b", migrated_url, storage=shared, **FAST)
    b.wait_for("node b follows", 30)
    a.wait_for("job overdue_watch end node=a", 30, count=3)
    spool_tickets(shared, 3)
    wait_until(spool_empty(shared), 15, "the leader stores the spooled tickets")
    assert b.runs() == [], "the follower acted while the leader was alive"

    killed = a.kill()
    spool_tickets(shared, 3)  # while no node leads
    took_over = b.wait_for("node b is the leader", TAKEOVER_LIMIT_S)
    assert (took_over - killed).total_seconds() < TAKEOVER_LIMIT_S
    b.wait_for("job overdue_watch end node=b", 30, count=3)
    wait_until(spool_empty(shared), 15, "the new leader stores the spooled tickets")
    assert b.terminate() == 0
    assert "node b stopped" in b.log()

    a_runs, b_runs = a.runs(), b.runs()
    assert len(a_runs) >= 3 and len(b_runs) >= 3
    assert all(r.node == "a" for r in a_runs) and all(r.node == "b" for r in b_runs)
    assert b_runs[0].start >= took_over  # (that a missed run is made up: test_scheduler_leader)
    assert_no_overlap(a_runs + b_runs, {"a": killed, "b": datetime.now()})

    stored = stored_spool_tickets(migrated_url)
    assert len(stored) == 9, stored
    assert all(n == 1 for _, n in stored)
    assert all(is_valid_tracking(tracking) for tracking, _ in stored)
    assert stored_counts(a, b) == 9  # each stored by exactly one node, once


def escalation_log_total(*logs: Node) -> int:
    """Level-1 escalations the nodes' watch passes say they made."""
    return sum(
        int(match)
        for node in logs
        for match in re.findall(r"WatchReport\(.*?level1=(\d+)", node.log())
    )


def test_escalation_steps_happen_once_across_a_failover(
    migrated_url: str, tmp_path: Path, nodes: Callable[..., Node]
) -> None:
    """Tickets fall overdue before, during and after the leader's death: every one is escalated
    (and its supervisor's mail queued) exactly once, by whichever node led at the time."""
    from ivr.escalation import add_supervisor

    engine = make_engine(migrated_url)
    add_supervisor(engine, "Qom supervisor", "qom@example.org", "qom")
    service = TicketService(engine, Settings(storage_dir=tmp_path / "maker", node_name="maker"))
    quick = {**FAST, "scheduler_retry_seconds": "2"}

    a = nodes("a", migrated_url, **quick)
    led = a.wait_for("node a is the leader", 30)
    b = nodes("b", migrated_url, **quick)
    b.wait_for("node b follows", 30)
    base = datetime.now(UTC)
    due = [base - timedelta(hours=1)] * 10  # overdue already
    due += [base + timedelta(seconds=3 + i * 0.5) for i in range(30)]  # +3 s … +17.5 s
    numbers = []
    for moment in due:
        draft = TicketDraft("twilio", "qom", "trade", None, None, None, "09121234567", None)
        numbers.append(service.create(draft, due_at=moment).tracking)
    assert led <= datetime.now()

    time.sleep(max(0.0, (base + timedelta(seconds=8) - datetime.now(UTC)).total_seconds()))
    killed = a.kill()
    b.wait_for("node b is the leader", TAKEOVER_LIMIT_S)

    def all_escalated() -> bool:
        with Session(engine) as session:
            return session.exec(
                select(func.count()).select_from(Ticket).where(Ticket.escalation_level == 1)
            ).one() == len(due)

    wait_until(all_escalated, TAKEOVER_LIMIT_S, "every overdue ticket is escalated")
    time.sleep(2)  # two more passes: nothing may be done again
    assert b.terminate() == 0

    with Session(engine) as session:
        events = session.exec(
            select(Ticket.tracking, func.count())
            .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
            .where(TicketEvent.kind == "escalated")
            .group_by(Ticket.tracking)
        ).all()
        mails = session.exec(
            select(Notification.ticket_id, func.count()).group_by(Notification.ticket_id)
        ).all()
    engine.dispose()
    assert sorted(t for t, _ in events) == sorted(numbers)
    assert all(n == 1 for _, n in events), "a ticket was escalated twice"
    assert len(mails) == len(due) and all(n == 1 for _, n in mails)
    by_a, by_b = escalation_log_total(a), escalation_log_total(b)
    assert by_a + by_b == len(due)
    assert by_a > 0 and by_b > 0, f"the failover did not fall mid-stream: a {by_a}, b {by_b}"
    assert_no_overlap(a.runs() + b.runs(), {"a": killed, "b": datetime.now()})


def test_a_leader_cut_off_from_postgresql_stops_acting(
    pg_url: str, tmp_path: Path, nodes: Callable[..., Node]
) -> None:
    """PostgreSQL ends the leader's lock session (as on a failover or a network cut) while the
    process lives on: it must notice, stop its jobs, and one node must lead again."""
    from ivr.tickets.db import upgrade

    upgrade(pg_url)
    quick = {**FAST, "scheduler_retry_seconds": "1", "scheduler_check_seconds": "1"}
    a = nodes("a", pg_url, **quick)
    a.wait_for("node a is the leader", 30)
    b = nodes("b", pg_url, **quick)
    b.wait_for("node b follows", 30)
    a.wait_for("job overdue_watch end node=a", 30, count=2)

    engine = make_engine(pg_url)
    try:
        with engine.begin() as c:
            cut = c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'ivr-sched:a'"
                )
            ).all()
        assert cut == [(True,)]
    finally:
        engine.dispose()
    cut_at = datetime.now()
    a.wait_for("node a lost the leader lock", 10)
    wait_until(
        lambda: any(r.start > cut_at for r in a.runs() + b.runs()),
        TAKEOVER_LIMIT_S,
        "some node runs the watch again",
    )
    assert a.terminate() == 0 and b.terminate() == 0
    assert_no_overlap(a.runs() + b.runs(), {})
    leads = sum(node.log().count("is the leader") for node in (a, b))
    assert leads == 2  # a, then exactly one of them again


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_web(nodes: Callable[..., Node], name: str, url: str, *flags: str) -> Node:
    port = free_port()
    agi = str(free_port())  # each node its own FastAGI port too
    args = ("serve", "--host", "127.0.0.1", "--port", str(port), *flags)
    node = nodes(name, url, *args, agi_port=agi, **FAST)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and node.alive():
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return node
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"`ivr serve` did not start:\n{node.log()}")


def test_serve_runs_the_scheduler_unless_told_not_to(
    migrated_url: str, nodes: Callable[..., Node]
) -> None:
    quiet = start_web(nodes, "quiet", migrated_url, "--no-scheduler")
    alone = nodes("alone", migrated_url, **FAST)  # `ivr scheduler` beside a --no-scheduler web
    alone.wait_for("job overdue_watch end node=alone", 30)
    alone.terminate()

    web = start_web(nodes, "web", migrated_url)
    web.wait_for("job overdue_watch end node=web", 30, count=2)
    assert quiet.alive() and "ivr.scheduler" not in quiet.log()
    assert web.terminate() == 143  # SIGTERM: uvicorn, then the scheduler thread, stop in order
    assert "node web stopped" in web.log()
    quiet.terminate()
