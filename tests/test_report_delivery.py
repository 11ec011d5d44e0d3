"""Which days the nightly job sends (late days caught up, never skipped, never twice) and the mails
it queues, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import report_day
from pg import db_url, migrated_url  # noqa: F401  (fixtures)
from report_day import DAY, at
from sqlalchemy import Engine, text

from ivr.reports.delivery import deliver, deliver_day, due_days, latest_due_day
from ivr.settings import Settings
from ivr.supervisors import add_supervisor
from ivr.tickets.db import make_engine
from ivr.tickets.models import ReportDelivery


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:  # noqa: F811
    made = make_engine(migrated_url)
    yield made
    made.dispose()


def sent(engine: Engine, *days: date) -> None:
    with engine.begin() as c:
        for day in days:
            c.execute(
                ReportDelivery.__table__.insert(),  # type: ignore[attr-defined]
                {"day": day, "scope": "national", "queued_at": datetime.now(UTC), "recipients": 1},
            )


def test_the_report_time_decides_today_or_yesterday() -> None:
    assert latest_due_day(at(23, 29), "23:30") == DAY - timedelta(1)
    assert latest_due_day(at(23, 30), "23:30") == DAY
    assert latest_due_day(at(0, 10, days=1), "23:30") == DAY  # after midnight: still that day


def test_a_new_database_sends_only_the_latest_day(engine: Engine) -> None:
    assert due_days(engine, at(23, 45), "23:30", 7) == [DAY]


def test_missed_days_are_sent_late_oldest_first(engine: Engine) -> None:
    sent(engine, DAY - timedelta(3))
    assert due_days(engine, at(23, 45), "23:30", 7) == [DAY - timedelta(n) for n in (2, 1, 0)]
    assert due_days(engine, at(10, 0), "23:30", 7) == [DAY - timedelta(n) for n in (2, 1)]
    sent(engine, DAY - timedelta(2), DAY - timedelta(1), DAY)
    assert due_days(engine, at(23, 59), "23:30", 7) == []


def test_catching_up_goes_back_at_most_the_limit(engine: Engine) -> None:
    sent(engine, DAY - timedelta(30))
    assert due_days(engine, at(23, 45), "23:30", 2) == [DAY - timedelta(n) for n in (2, 1, 0)]


def test_a_day_is_queued_once_unless_asked_again(engine: Engine, tmp_path: Path) -> None:
    report_day.load(engine)
    add_supervisor(engine, "Qom", "qom@example.org", "qom")
    add_supervisor(engine, "Ministry", "national@example.org")
    settings = Settings(storage_dir=tmp_path, mail_from="124@example.org")
    first = deliver_day(engine, settings, DAY)
    assert [(d.scope, d.queued, d.recipients) for d in first] == [
        ("qom", True, ("qom@example.org",)),
        ("tehran", True, ()),  # no supervisor: written, nobody mailed
        ("national", True, ("national@example.org",)),
    ]
    assert all(not d.queued for d in deliver_day(engine, settings, DAY))
    with engine.connect() as c:
        rows = c.execute(
            text("SELECT recipient, step, office_hours, attachments FROM notification")
        ).all()
    assert sorted(r.recipient for r in rows) == ["national@example.org", "qom@example.org"]
    assert all(not r.office_hours for r in rows)  # the report is read at night
    for row in rows:
        files = [Path(p).name for p in json.loads(row.attachments)]
        assert files == ["report.pdf", "calls.csv"]
        assert row.step.startswith("report-1405-09-06-")
    again = deliver(engine, settings, DAY, "qom", again=True)
    assert again.queued
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM notification")).scalar_one() == 3
