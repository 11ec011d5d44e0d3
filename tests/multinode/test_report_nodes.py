"""Two ``ivr scheduler`` nodes on one database mail the nightly reports once: the leader sends
them to a real SMTP server (aiosmtpd), and when it is killed the node that takes over finds the
day's ``report_delivery`` rows and sends nothing again."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ivr_nodes import Node
from sqlalchemy import text
from test_escalation import Mailbox, start_smtp

from ivr.settings import Settings
from ivr.supervisors import add_supervisor
from ivr.tickets.db import make_engine
from ivr.tickets.service import TicketDraft, TicketService

QUICK = {
    "scheduler_watch_seconds": "1",
    "scheduler_retry_seconds": "1",
    "report_check_seconds": "1",
    "scheduler_report_time": "00:00",  # today's report is always due: no waiting for 23:30
    "mail_from": "124@example.org",
}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller, box.url = start_smtp(box)
    yield box
    controller.stop()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def test_two_nodes_send_the_days_reports_once(
    migrated_url: str, nodes: Callable[..., Node], mailbox: Mailbox, tmp_path: Path
) -> None:
    engine = make_engine(migrated_url)
    add_supervisor(engine, "Ministry", "national@example.org")
    add_supervisor(engine, "Qom", "qom@example.org", "qom")
    service = TicketService(engine, Settings(storage_dir=tmp_path / "seed", node_name="seed"))
    service.create(TicketDraft("web", "qom", "trade", None, None, None, "09121234567", None))

    a = nodes("a", migrated_url, smtp_url=mailbox.url, **QUICK)
    b = nodes("b", migrated_url, smtp_url=mailbox.url, **QUICK)
    wait_until(lambda: len(mailbox.received) >= 2, 120, "the national and Qom reports")
    assert mailbox.recipients() == ["national@example.org", "qom@example.org"]
    for received in mailbox.received:
        names = {part.get_filename() for part in received.message.iter_attachments()}
        assert names == {"report.pdf", "calls.csv"}

    leader, other = (a, b) if "node a is the leader" in a.log() else (b, a)
    assert f"node {leader.name} is the leader" in leader.log()
    leader.kill()
    other.wait_for(f"node {other.name} is the leader", timeout=60)
    other.wait_for("job nightly_report end", timeout=60, count=3)
    time.sleep(2)
    assert len(mailbox.received) == 2  # the new leader sent nothing again
    with engine.connect() as c:
        rows = c.execute(text("SELECT scope FROM report_delivery ORDER BY scope")).scalars()
        assert list(rows) == ["national", "qom"]
        sent = c.execute(text("SELECT COUNT(*) FROM notification")).scalar_one()
    assert sent == 2
    engine.dispose()
