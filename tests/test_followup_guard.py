"""The follow-up guessing limit on a real database (SQLite and PostgreSQL): what is counted, per
ticket and per caller, over the window, and a session that runs into it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from pg import db_url, migrated_url  # noqa: F401  (fixtures)
from sqlalchemy import text

from ivr.clock import utcnow
from ivr.flow import actions as act
from ivr.flow.events import Digits
from ivr.followup_guard import WITHHELD, FollowupGuard, TryKind
from ivr.services import build_services
from ivr.session import CallSession, Services
from ivr.settings import Settings
from ivr.tickets.db import make_engine
from ivr.tickets.service import TicketDraft
from ivr.tickets.tracking import is_valid_tracking, tracking_from_sequence

OWNER = "09121234567"
STRANGER = "+989351112233"
OTHER = "+989127654321"


@pytest.fixture
def guard(migrated_url: str):  # noqa: F811
    engine = make_engine(migrated_url)
    yield FollowupGuard(engine, per_ticket=3, per_caller=5)
    engine.dispose()


def test_a_ticket_is_closed_after_its_failed_tries_whoever_makes_them(guard: FollowupGuard):
    assert guard.check("1000000420", STRANGER).allowed
    assert guard.failed("1000000420", STRANGER, TryKind.MISMATCH).allowed
    assert guard.failed("1000000420", OTHER, TryKind.MISMATCH).allowed
    third = guard.failed("1000000420", STRANGER, TryKind.MISMATCH)
    assert (third.allowed, third.ticket_tries) == (False, 3)  # the third uses up the tries
    assert not guard.check("1000000420", "+989199999999").allowed  # a fresh number too
    assert guard.check("2000000428", STRANGER).allowed  # another ticket is still open


def test_a_caller_is_stopped_after_its_failed_tries_on_any_tickets(guard: FollowupGuard):
    for n in range(4):
        assert guard.failed(f"10000{n:05d}", STRANGER, TryKind.NOT_FOUND).allowed
    fifth = guard.failed("1000099999", STRANGER, TryKind.MISMATCH)
    assert (fifth.allowed, fifth.caller_tries, fifth.ticket_tries) == (False, 5, 1)
    assert not guard.check("3000000000", STRANGER).allowed
    assert guard.check("3000000000", OTHER).allowed


def test_old_tries_no_longer_count(guard: FollowupGuard):
    long_ago = utcnow() - timedelta(hours=25)
    for _ in range(3):
        guard.failed("1000000420", STRANGER, TryKind.MISMATCH, now=long_ago)
    assert not guard.check("1000000420", STRANGER, now=long_ago + timedelta(minutes=1)).allowed
    assert guard.check("1000000420", STRANGER).allowed  # a day later


def test_callers_without_caller_id_share_one_allowance(guard: FollowupGuard):
    for n in range(5):
        guard.failed(f"40000{n:05d}", None, TryKind.NOT_FOUND)
    assert not guard.check("5000000000", "").allowed
    with guard.engine.connect() as connection:
        callers = connection.execute(text("SELECT DISTINCT caller FROM followup_try")).all()
    assert callers == [(WITHHELD,)]


def test_a_refusal_is_logged_for_supervisors(
    guard: FollowupGuard, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="ivr.followup_guard")
    for _ in range(3):
        guard.failed("1000000420", STRANGER, TryKind.MISMATCH)
    guard.check("1000000420", STRANGER)
    lines = [r.getMessage() for r in caplog.records if r.name == "ivr.followup_guard"]
    assert len(lines) == 2
    assert "ticket 1000000420 has 3 failed tries (limit 3)" in lines[-1]
    assert STRANGER in lines[-1] and "only an agent" in lines[-1]


# --- a session on the real database -----------------------------------------------------------


@pytest.fixture
def services(migrated_url: str, tmp_path: Path):  # noqa: F811
    settings = Settings(
        storage_dir=tmp_path / "storage",
        database_url=migrated_url,
        secret_key="k" * 32,
        followup_tries_per_ticket=2,
        followup_tries_per_caller=3,
        agents_always_open=True,
    )
    built = build_services(settings)
    yield built
    built.tickets.engine.dispose()


def _ticket(services: Services) -> str:
    draft = TicketDraft("twilio", "qom", "trade", None, None, OWNER, OWNER, None)
    tracking = services.tickets.create(draft).tracking
    assert tracking is not None
    return tracking


def _follow_up(services: Services, sid: str, caller: str, tracking: str) -> CallSession:
    session, _ = CallSession.start(
        services,
        channel="twilio",
        external_id=sid,
        caller=caller,
        called="124",
        default_province="qom",
    )
    session.feed(Digits("2"))
    session.feed(Digits(f"{tracking}#"))
    return session


def said(actions: tuple[act.Action, ...]) -> list[str]:
    return [p for a in actions if isinstance(a, act.Play | act.Gather) for p in a.prompts]  # type: ignore[misc]


def test_a_session_counts_wrong_answers_and_refuses_past_the_limit(services: Services):
    tracking = _ticket(services)
    session = _follow_up(services, "CA-guess-1", STRANGER, tracking)
    assert session.state.node == "followup.verify"
    wrong = session.feed(Digits("0000"))
    assert said(wrong) == ["followup.mismatch", "followup.verify"]
    blocked = session.feed(Digits("1111"))  # the ticket's second failed try: its limit
    assert said(blocked)[0] == "followup.too_many_tries"
    assert isinstance(blocked[-1], act.Transfer)
    assert session.state.ticket is None

    # Another number, another call: the ticket is closed to the IVR, never asked.
    other = _follow_up(services, "CA-guess-2", OTHER, tracking)
    assert other.state.node == "agent"
    with services.calls.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT tracking, caller, kind FROM followup_try ORDER BY id")
        ).all()
        steps = connection.execute(
            text(
                "SELECT s.node, s.outcome FROM call_step s JOIN call c ON c.id = s.call_id"
                " WHERE c.external_id = 'CA-guess-2' ORDER BY s.id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [(tracking, "09351112233", "mismatch")] * 2
    assert ("followup.guard", "too_many_tries") in [tuple(s) for s in steps]

    # The owner, calling from the ticket's number, still hears the report.
    owner = _follow_up(services, "CA-owner", OWNER, tracking)
    assert owner.state.node == "followup.report"


def test_a_session_counts_unknown_tickets_against_the_caller(services: Services):
    tracking = _ticket(services)
    unknown = [tracking_from_sequence(900_000 + n) for n in range(3)]
    assert all(is_valid_tracking(u) for u in unknown)
    for n, number in enumerate(unknown):
        session = _follow_up(services, f"CA-scan-{n}", STRANGER, number)
        last = session.feed(Digits("1234"))
    assert said(last)[0] == "followup.too_many_tries"  # the caller's third failed try
    # The caller's tries are used up for every ticket now, a real one too.
    session = _follow_up(services, "CA-scan-real", STRANGER, tracking)
    assert session.state.node == "agent"
    with services.calls.engine.connect() as connection:
        kinds = connection.execute(text("SELECT kind FROM followup_try")).scalars().all()
    assert kinds == ["not_found"] * 3
