"""The callbacks' owner on SQLite and PostgreSQL: requests, claims, outcomes, leases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pg import db_url, migrated_url  # noqa: F401  (fixtures)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ivr.callbacks.models import Callback, CallbackStatus, Outcome
from ivr.callbacks.service import CallbackError, CallbackNotFound, CallbackService
from ivr.tickets.db import make_engine

T0 = datetime(2026, 5, 16, 5, 0, tzinfo=UTC)  # Saturday 08:30 Tehran


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(migrated_url: str, clock: Clock) -> Iterator[CallbackService]:  # noqa: F811
    engine = make_engine(migrated_url)
    try:
        yield CallbackService(engine, clock=clock, lease=timedelta(seconds=60))
    finally:
        engine.dispose()


def test_a_request_stores_the_whole_story(service: CallbackService, clock: Clock) -> None:
    entered = T0 - timedelta(minutes=4)
    row = service.request("+98 912 123 4567", "qom", entered)
    assert row.id is not None
    stored = service.get(row.id)
    assert stored is not None
    assert stored.number == "09121234567" and stored.active_number == "09121234567"
    assert stored.status == CallbackStatus.PENDING and stored.province == "qom"
    assert stored.requested_at == T0 and stored.entered_at == entered
    assert stored.attempts == 0 and stored.finished_at is None


def test_a_number_with_an_open_callback_gets_the_same_one_back(service: CallbackService) -> None:
    first = service.request("09121234567", "qom", T0 - timedelta(minutes=5))
    again = service.request("۰۹۱۲۱۲۳۴۵۶۷", "qom", T0)  # Persian digits, later entry
    assert again.id == first.id
    assert again.entered_at == first.entered_at  # the first request's place is kept
    assert len(service.list()) == 1
    other = service.request("09351112233", "qom", T0)
    assert other.id != first.id


def test_after_the_first_is_finished_the_number_may_ask_again(service: CallbackService) -> None:
    first = service.request("09121234567", "qom", T0)
    assert first.id is not None
    service.cancel(first.id)
    second = service.request("09121234567", "qom", T0)
    assert second.id != first.id
    assert [c.status for c in service.list()] == ["cancelled", "pending"]


def test_the_database_itself_refuses_two_open_callbacks_for_one_number(
    service: CallbackService,
) -> None:
    service.request("09121234567", "qom", T0)
    with pytest.raises(IntegrityError), Session(service.engine) as session:
        session.add(
            Callback(
                number="09121234567",
                active_number="09121234567",
                province="qom",
                entered_at=T0,
            )
        )
        session.commit()


def test_numbers_we_cannot_call_are_refused(service: CallbackService) -> None:
    for bad in ("anonymous", "1001", "0912", ""):
        with pytest.raises(CallbackError):
            service.request(bad, "qom", T0)
    with pytest.raises(CallbackError):
        service.request("09121234567", " ", T0)


def test_an_entry_time_from_a_clock_ahead_is_clamped(service: CallbackService) -> None:
    row = service.request("09121234567", "qom", T0 + timedelta(hours=1))
    assert row.entered_at == T0


def test_cancel(service: CallbackService) -> None:
    row = service.request("09121234567", "qom", T0)
    assert row.id is not None
    cancelled = service.cancel(row.id)
    assert cancelled.status == CallbackStatus.CANCELLED and cancelled.active_number is None
    assert cancelled.finished_at == T0
    with pytest.raises(CallbackError, match="already cancelled"):
        service.cancel(row.id)
    with pytest.raises(CallbackNotFound):
        service.cancel(999_999)


def test_list_in_entry_order_and_by_status(service: CallbackService) -> None:
    late = service.request("09121111111", "qom", T0 - timedelta(minutes=1))
    early = service.request("09122222222", "tehran", T0 - timedelta(minutes=9))
    assert [c.id for c in service.list()] == [early.id, late.id]
    assert late.id is not None
    service.cancel(late.id)
    assert [c.id for c in service.list("pending")] == [early.id]
    assert [c.id for c in service.list(["pending", "cancelled"])] == [early.id, late.id]
    with pytest.raises(CallbackError, match="unknown status"):
        service.list("waiting")


def test_due_honours_order_spacing_provinces_and_limit(
    service: CallbackService, clock: Clock
) -> None:
    a = service.request("09121111111", "qom", T0 - timedelta(minutes=3))
    b = service.request("09122222222", "tehran", T0 - timedelta(minutes=5))
    c = service.request("09123333333", "qom", T0 - timedelta(minutes=1))
    assert [x.id for x in service.due(limit=10)] == [b.id, a.id, c.id]
    assert [x.id for x in service.due(provinces={"qom"}, limit=10)] == [a.id, c.id]
    assert [x.id for x in service.due(limit=2)] == [b.id, a.id]
    assert service.due(provinces=set(), limit=10) == []
    assert service.pending_provinces() == {"qom", "tehran"}


def claim_and_finish(service: CallbackService, callback_id: int, outcome: Outcome) -> None:
    attempt = service.claim(callback_id, "n1", "test")
    assert attempt is not None and attempt.id is not None
    service.finish(attempt.id, outcome, "because")


def test_one_claim_per_slot(service: CallbackService) -> None:
    row = service.request("09121234567", "qom", T0)
    assert row.id is not None
    first = service.claim(row.id, "n1", "test")
    assert first is not None and first.slot == 1
    assert service.claim(row.id, "n2", "test") is None  # already queued
    assert service.get(row.id).status == CallbackStatus.QUEUED  # type: ignore[union-attr]
    assert first.lease_until == T0 + timedelta(seconds=60)


def test_connected_then_answered_is_done(service: CallbackService, clock: Clock) -> None:
    row = service.request("09121234567", "qom", T0)
    assert row.id is not None
    attempt = service.claim(row.id, "n1", "asterisk")
    assert attempt is not None and attempt.id is not None
    service.placed(attempt.id, "ivr124cb-1-2")
    clock.advance(seconds=20)
    assert service.connected(attempt.id, "Agent 7")
    assert service.get(row.id).status == CallbackStatus.IN_PROGRESS  # type: ignore[union-attr]
    assert service.connected(attempt.id, "someone else")  # a second event keeps the first
    clock.advance(seconds=90)
    done = service.finish(attempt.id, Outcome.ANSWERED, "DIALSTATUS=ANSWER cause=16")
    assert done is not None and done.status == CallbackStatus.DONE
    assert done.active_number is None and done.finished_at == clock.now
    assert service.finish(attempt.id, Outcome.NO_ANSWER) is None  # the first outcome wins
    (stored,) = service.attempts_of(row.id)
    assert stored.external_id == "ivr124cb-1-2" and stored.agent == "Agent 7"
    assert stored.connected_at == T0 + timedelta(seconds=20)
    assert stored.ended_at == clock.now and stored.outcome == "answered"
    assert stored.lease_until is None


def test_unanswered_attempts_are_spaced_then_the_callback_fails(
    service: CallbackService, clock: Clock
) -> None:
    row = service.request("09121234567", "qom", T0)
    assert row.id is not None
    for slot, outcome in enumerate((Outcome.NO_ANSWER, Outcome.BUSY), start=1):
        claim_and_finish(service, row.id, outcome)
        back = service.get(row.id)
        assert back is not None and back.status == CallbackStatus.PENDING
        assert back.attempts == slot and back.next_attempt_at == clock.now + timedelta(minutes=10)
        assert service.claim(row.id, "n1", "test") is None  # not before the spacing
        clock.advance(minutes=10)
    claim_and_finish(service, row.id, Outcome.FAILED)
    failed = service.get(row.id)
    assert failed is not None and failed.status == CallbackStatus.FAILED
    assert failed.attempts == 3 and failed.active_number is None
    assert [a.slot for a in service.attempts_of(row.id)] == [1, 2, 3]


def test_withdrawn_tries_cost_no_attempt(service: CallbackService) -> None:
    row = service.request("09121234567", "qom", T0)
    assert row.id is not None
    claim_and_finish(service, row.id, Outcome.WITHDRAWN)
    back = service.get(row.id)
    assert back is not None and back.status == CallbackStatus.PENDING and back.attempts == 0
    attempt = service.claim(row.id, "n1", "test")  # at once, same slot
    assert attempt is not None and attempt.slot == 1


def test_a_cancelled_callback_stays_cancelled_when_its_attempt_ends(
    service: CallbackService,
) -> None:
    row = service.request("09121234567", "qom", T0)
    assert row.id is not None
    attempt = service.claim(row.id, "n1", "test")
    assert attempt is not None and attempt.id is not None
    service.cancel(row.id)
    assert service.connected(attempt.id)  # recorded on the attempt …
    after = service.finish(attempt.id, Outcome.ANSWERED)
    assert after is not None and after.status == CallbackStatus.CANCELLED  # … status stays


def test_open_attempts_and_leases(service: CallbackService, clock: Clock) -> None:
    row = service.request("09121234567", "qom", T0 - timedelta(minutes=2))
    assert row.id is not None
    attempt = service.claim(row.id, "n1", "test")
    assert attempt is not None and attempt.id is not None
    (seen,) = service.open_attempts()
    assert (seen.id, seen.number, seen.province) == (attempt.id, "09121234567", "qom")
    assert seen.entered_at == T0 - timedelta(minutes=2) and seen.callback_status == "queued"
    clock.advance(seconds=45)
    service.renew([attempt.id])
    (renewed,) = service.open_attempts()
    assert renewed.lease_until == clock.now + timedelta(seconds=60)
    service.finish(attempt.id, Outcome.INTERRUPTED, "lease expired")
    assert service.open_attempts() == []
    back = service.get(row.id)
    assert back is not None and back.attempts == 1  # interrupted counts


def test_concurrent_requests_from_one_number_make_one_callback(service: CallbackService) -> None:
    ids: list[int | None] = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        ids.append(service.request("09121234567", "qom", T0).id)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1 and len(service.list()) == 1


def test_concurrent_claims_give_one_attempt(service: CallbackService) -> None:
    row = service.request("09121234567", "qom", T0)
    assert row.id is not None
    won: list[int] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        attempt = service.claim(row.id, f"n{n}", "test")  # type: ignore[arg-type]
        if attempt is not None:
            won.append(n)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert len(service.attempts_of(row.id)) == 1
    with Session(service.engine) as session:
        assert session.exec(select(Callback.status)).one() == "queued"
