"""The desk's "call now": one callback placed at once, under the dispatcher's rules (hours, one
attempt per number, never onto an agent promised to someone else), on SQLite with fakes; the
real Asterisk side is in tests/asterisk/test_desk_live_pbx.py."""

# ruff: noqa: F811  (the dispatcher tests' fixtures, imported by name)
from __future__ import annotations

from datetime import timedelta

import pytest
from callback_fakes import RecordingDialer, StaticQueue
from test_callbacks_dispatcher import (  # noqa: F401  (fixtures)
    CLOSES,
    ask,
    clock,
    hours,
    live,
    make,
    service,
    template_db,
)

from ivr.callbacks.dispatcher import CallNowRefused
from ivr.callbacks.models import CallbackStatus, Outcome
from ivr.callbacks.queue_view import QueueSnapshot


def test_call_now_places_a_pending_callback_at_once(service, hours) -> None:
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=3)
    attempt = make(service, hours, StaticQueue(QueueSnapshot(2, 1)), dialer).call_now(cb)
    (order,) = dialer.orders
    assert (order.attempt_id, order.callback_id, order.position) == (attempt, cb, 1)
    assert service.get(cb).status == CallbackStatus.QUEUED  # type: ignore[union-attr]


def test_call_now_skips_the_retry_spacing_but_not_the_one_attempt_rule(
    service,
    hours,
    clock,
) -> None:
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=3)
    dispatcher = make(service, hours, StaticQueue(QueueSnapshot(2, 2)), dialer)
    first = dispatcher.call_now(cb)
    with pytest.raises(CallNowRefused, match="queued, not pending"):
        dispatcher.call_now(cb)  # already being called: no second attempt for the number
    service.finish(first, Outcome.NO_ANSWER)  # pending again, next try in 10 minutes
    assert dispatcher.dispatch_once().placed == []  # a pass respects the spacing
    second = dispatcher.call_now(cb)  # a supervisor does not have to wait for it
    assert second != first and len(dialer.orders) == 2


def test_call_now_never_takes_an_agent_promised_to_someone(service, hours) -> None:
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=1)
    busy = StaticQueue(QueueSnapshot(2, 0))
    with pytest.raises(CallNowRefused, match="no agent is free"):
        make(service, hours, busy, dialer).call_now(cb)
    waiting = StaticQueue(QueueSnapshot(2, 1, (live(1, 2),)))  # the free agent is that caller's
    with pytest.raises(CallNowRefused, match="no agent is free"):
        make(service, hours, waiting, dialer).call_now(cb)
    other = ask(service, "09122222222", minutes_ago=5)
    one_free = StaticQueue(QueueSnapshot(1, 1))
    dispatcher = make(service, hours, one_free, dialer)
    dispatcher.call_now(other)  # its stand-in is not in the queue view yet, but it counts
    with pytest.raises(CallNowRefused, match="no agent is free"):
        dispatcher.call_now(cb)
    assert [o.callback_id for o in dialer.orders] == [other]
    assert service.get(cb).status == CallbackStatus.PENDING  # type: ignore[union-attr]


def test_call_now_caller_first_counts_every_open_attempt(service, hours) -> None:
    dialer = RecordingDialer(holds_place=False)
    a = ask(service, "09121111111", minutes_ago=2)
    b = ask(service, "09122222222", minutes_ago=1)
    dispatcher = make(service, hours, StaticQueue(QueueSnapshot(1, 1)), dialer)
    dispatcher.call_now(a)
    assert service.get(a).status == CallbackStatus.IN_PROGRESS  # type: ignore[union-attr]
    with pytest.raises(CallNowRefused, match="no agent is free"):
        dispatcher.call_now(b)


def test_call_now_is_refused_outside_the_agents_hours(service, hours, clock) -> None:
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=1)
    clock.now = CLOSES + timedelta(minutes=1)
    with pytest.raises(CallNowRefused, match="do not answer now"):
        make(service, hours, StaticQueue(QueueSnapshot(3, 3)), dialer).call_now(cb)
    assert dialer.orders == []


def test_call_now_of_a_finished_or_unknown_callback(service, hours) -> None:
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=1)
    service.cancel(cb)
    dispatcher = make(service, hours, StaticQueue(QueueSnapshot(3, 3)), dialer)
    with pytest.raises(CallNowRefused, match="cancelled"):
        dispatcher.call_now(cb)
    with pytest.raises(CallNowRefused, match="no callback"):
        dispatcher.call_now(9999)


def test_a_failed_place_costs_no_attempt(service, hours) -> None:
    dialer = RecordingDialer()
    dialer.fail_place = "AMI down"
    cb = ask(service, "09121111111", minutes_ago=1)
    with pytest.raises(CallNowRefused, match="could not be placed"):
        make(service, hours, StaticQueue(QueueSnapshot(3, 3)), dialer).call_now(cb)
    row = service.get(cb)
    assert row is not None and row.status == CallbackStatus.PENDING and row.attempts == 0
