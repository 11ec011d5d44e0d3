"""How AMI queue events land in the call records, event order by event order, without a PBX.

The orders are the ones Asterisk 22's app_queue sends (seen on the test PBX): a caller an agent
answers gets Join, Leave, AgentConnect; one who hangs up while waiting gets Join, Abandon, Leave;
one the queue gives up on (timeout, no agents left) gets Join, Leave. The real PBX test is in
tests/asterisk/test_asterisk_flow.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from ivr.clock import as_aware
from ivr.telephony.ami import AmiEvent
from ivr.telephony.queue_events import QueueEventRecorder
from ivr.tickets.calls import CallStore
from ivr.tickets.db import make_engine, upgrade
from ivr.tickets.models import (
    Call,
)

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[QueueEventRecorder, Clock, CallStore]:
    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    engine = make_engine(url)
    clock = Clock()
    store = CallStore(engine)
    recorder = QueueEventRecorder(store, ami=None, clock=clock)  # type: ignore[arg-type]
    store.open("asterisk", "1700000000.1", "09121234567", "124")
    return recorder, clock, store


def ev(name: str, uniqueid: str = "1700000000.1", **fields: str) -> AmiEvent:
    return AmiEvent(name, {"Uniqueid": uniqueid, "Queue": "124-agents", **fields})


def row(store: CallStore, uniqueid: str = "1700000000.1") -> Call:
    with Session(store.engine) as session:
        return session.exec(select(Call).where(Call.external_id == uniqueid)).one()


def test_an_answered_caller_is_connected_with_its_wait_and_agent(setup):
    recorder, clock, store = setup
    assert recorder.handle(ev("QueueCallerJoin", Position="1", Count="1"))
    clock.advance(7.5)
    assert recorder.handle(ev("QueueCallerLeave", Count="0"))
    clock.advance(0.01)
    assert recorder.handle(ev("AgentConnect", MemberName="Agent 101", HoldTime="7"))
    call = row(store)
    assert call.queue == "124-agents"
    assert call.queue_outcome == "connected" and call.agent == "Agent 101"
    assert as_aware(call.queue_joined_at) == T0
    assert as_aware(call.queue_left_at) == T0 + timedelta(seconds=7.5)
    assert call.queue_wait_s == pytest.approx(7.5)
    assert recorder.written == 3


def test_the_end_of_the_conversation_gives_its_talk_time(setup):
    """AgentComplete comes when the caller and the agent hang up: its TalkTime is the talk
    time the nightly report counts; the wait and the outcome stay as they were."""
    recorder, clock, store = setup
    recorder.handle(ev("QueueCallerJoin", Position="1", Count="1"))
    clock.advance(4)
    recorder.handle(ev("QueueCallerLeave", Count="0"))
    recorder.handle(ev("AgentConnect", MemberName="Agent 101", HoldTime="4"))
    assert row(store).queue_talk_s is None
    clock.advance(95)
    assert recorder.handle(
        ev("AgentComplete", MemberName="Agent 101", HoldTime="4", TalkTime="95", Reason="caller")
    )
    call = row(store)
    assert call.queue_talk_s == pytest.approx(95)
    assert call.queue_outcome == "connected" and call.queue_wait_s == pytest.approx(4)
    assert not recorder.handle(ev("AgentComplete", TalkTime="not a number"))
    assert row(store).queue_talk_s == pytest.approx(95)


def test_a_caller_who_hangs_up_while_waiting_abandoned(setup):
    recorder, clock, store = setup
    recorder.handle(ev("QueueCallerJoin"))
    clock.advance(42)
    recorder.handle(ev("QueueCallerAbandon", HoldTime="42", Position="1", OriginalPosition="1"))
    recorder.handle(ev("QueueCallerLeave"))  # comes after the abandon: changes nothing
    call = row(store)
    assert (call.queue_outcome, call.agent) == ("abandoned", None)
    assert call.queue_wait_s == pytest.approx(42)
    assert as_aware(call.queue_left_at) == T0 + timedelta(seconds=42)


def test_a_caller_the_queue_gives_up_on_left(setup):
    recorder, clock, store = setup
    recorder.handle(ev("QueueCallerJoin"))
    clock.advance(300)
    recorder.handle(ev("QueueCallerLeave"))
    call = row(store)
    assert call.queue_outcome == "left"
    assert call.queue_wait_s == pytest.approx(300)


def test_a_join_not_seen_is_dated_from_asterisks_hold_time(setup):
    """The controller started (or AMI reconnected) while the caller was already waiting."""
    recorder, _clock, store = setup
    recorder.handle(ev("QueueCallerAbandon", HoldTime="12"))
    call = row(store)
    assert call.queue_outcome == "abandoned"
    assert call.queue_wait_s == pytest.approx(12)
    assert as_aware(call.queue_joined_at) == T0 - timedelta(seconds=12)


def test_events_timestamps_win_over_arrival(setup):
    """With ``timestampevents = yes`` a backlog delivered late still gives the right wait."""
    recorder, clock, store = setup
    start = T0.timestamp()
    recorder.handle(ev("QueueCallerJoin", Timestamp=f"{start:.6f}"))
    clock.advance(60)  # delivered a minute late
    recorder.handle(ev("QueueCallerAbandon", Timestamp=f"{start + 3.25:.6f}", HoldTime="3"))
    assert row(store).queue_wait_s == pytest.approx(3.25)


def test_a_second_transfer_starts_a_new_wait(setup):
    recorder, clock, store = setup
    recorder.handle(ev("QueueCallerJoin"))
    clock.advance(5)
    recorder.handle(ev("QueueCallerAbandon", HoldTime="5"))
    clock.advance(60)
    recorder.handle(ev("QueueCallerJoin", Queue="124-supervisors"))
    call = row(store)
    assert call.queue == "124-supervisors"
    assert (call.queue_outcome, call.queue_wait_s, call.queue_left_at) == (None, None, None)


def test_channels_the_ivr_never_handled_are_ignored(setup):
    recorder, _clock, store = setup
    assert not recorder.handle(ev("QueueCallerJoin", uniqueid="1700000000.99"))
    assert not recorder.handle(AmiEvent("QueueCallerJoin", {"Queue": "124-agents"}))
    assert row(store).queue is None
    assert recorder.written == 0


def test_a_database_error_is_logged_not_raised(setup, caplog, tmp_path):
    recorder, _clock, _store = setup
    recorder.calls = CallStore(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))  # no table
    assert not recorder.handle(ev("QueueCallerJoin"))
    assert "could not record QueueCallerJoin" in caplog.text
