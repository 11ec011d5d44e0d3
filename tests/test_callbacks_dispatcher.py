"""The dispatcher's rules, one by one, on SQLite with fake queues and dialers.

The same rules against the real Asterisk are in tests/asterisk/test_callbacks_asterisk.py, and
with two dispatcher processes on PostgreSQL in tests/multinode/test_callbacks_nodes.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from callback_fakes import RecordingDialer, SimulatedQueue, StaticQueue

from ivr.calendar import Holiday, WorkCalendar
from ivr.calendar.agent_hours import AgentHours, load_agent_hours
from ivr.callbacks.dialing import ALIVE, Connected, Ended
from ivr.callbacks.dispatcher import Dispatcher
from ivr.callbacks.models import CallbackStatus, Outcome
from ivr.callbacks.queue_view import QueueSnapshot, WaitingEntry
from ivr.callbacks.service import CallbackService
from ivr.clock import TEHRAN
from ivr.tickets.db import make_engine, upgrade

T0 = datetime(2026, 5, 16, 5, 30, tzinfo=UTC)
"""Saturday 1405/02/26 09:00 in Tehran: agents answer until 16:00."""
CLOSES = datetime(2026, 5, 16, 12, 30, tzinfo=UTC)
"""16:00 in Tehran that day."""


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "ivr.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(template_db: Path, tmp_path: Path, clock: Clock) -> Iterator[CallbackService]:
    path = tmp_path / "ivr.db"
    path.write_bytes(template_db.read_bytes())  # a migrated database in a millisecond
    engine = make_engine(f"sqlite:///{path}")
    try:
        yield CallbackService(engine, clock=clock, lease=timedelta(seconds=60))
    finally:
        engine.dispose()


def agent_hours(*holidays: Holiday) -> AgentHours:
    return AgentHours(load_agent_hours(), WorkCalendar(holidays))


@pytest.fixture
def hours() -> AgentHours:
    return agent_hours()


def make(service: CallbackService, hours: AgentHours, view: object, dialer: object) -> Dispatcher:
    return Dispatcher(service, hours, view, dialer, node="n1")  # type: ignore[arg-type]


def ask(service: CallbackService, number: str, minutes_ago: float, province: str = "qom") -> int:
    row = service.request(number, province, service.clock() - timedelta(minutes=minutes_ago))
    assert row.id is not None
    return row.id


def live(position: int, minutes_ago: float, name: str = "caller") -> WaitingEntry:
    return WaitingEntry(position, T0 - timedelta(minutes=minutes_ago), f"PJSIP/{name}")


# -- the look-ahead window and the position ------------------------------------------------------


def test_a_callback_older_than_the_waiting_callers_goes_first(service, hours) -> None:
    view = StaticQueue(QueueSnapshot(1, 0, (live(1, 3), live(2, 1))))
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=5)
    report = make(service, hours, view, dialer).dispatch_once()
    (order,) = dialer.orders
    assert (order.callback_id, order.position) == (cb, 1)
    assert report.placed == [order.attempt_id] and report.window == 1
    assert service.get(cb).status == CallbackStatus.QUEUED  # type: ignore[union-attr]


def test_a_callback_keeps_its_place_between_waiting_callers(service, hours) -> None:
    # Two agents (both busy), callers who entered 6 and 2 minutes ago; the callback 4.
    view = StaticQueue(QueueSnapshot(2, 0, (live(1, 6), live(2, 2))))
    dialer = RecordingDialer()
    ask(service, "09121111111", minutes_ago=4)
    make(service, hours, view, dialer).dispatch_once()
    (order,) = dialer.orders
    assert order.position == 2  # behind the older caller, ahead of the newer


def test_outside_the_look_ahead_nothing_is_placed_yet(service, hours) -> None:
    """As many entries ahead as agents: the next pass comes before its turn can."""
    view = StaticQueue(QueueSnapshot(2, 0, (live(1, 9), live(2, 8), live(3, 1))))
    dialer = RecordingDialer()
    ask(service, "09121111111", minutes_ago=5)
    make(service, hours, view, dialer).dispatch_once()
    assert dialer.orders == []


def test_at_most_one_stand_in_per_agent_and_in_entry_order(service, hours) -> None:
    view = StaticQueue(QueueSnapshot(2, 2, ()))
    dialer = RecordingDialer()
    ids = [ask(service, f"0912111111{i}", minutes_ago=10 - i) for i in range(5)]
    dispatcher = make(service, hours, view, dialer)
    dispatcher.dispatch_once()
    assert [(o.callback_id, o.position) for o in dialer.orders] == [(ids[0], 1), (ids[1], 2)]
    dispatcher.dispatch_once()  # the two stand-ins still hold their places
    assert len(dialer.orders) == 2
    assert [c.status for c in service.list()] == ["queued"] * 2 + ["pending"] * 3


def test_stand_ins_not_yet_seen_in_the_queue_still_count(service, hours) -> None:
    """A stand-in just originated may not have joined yet: it must not be placed twice over."""
    view = StaticQueue(QueueSnapshot(1, 1, ()))
    dialer = RecordingDialer()
    ask(service, "09121111111", minutes_ago=3)
    ask(service, "09122222222", minutes_ago=2)
    dispatcher = make(service, hours, view, dialer)
    dispatcher.dispatch_once()
    dispatcher.dispatch_once()
    assert len(dialer.orders) == 1


def test_no_agent_logged_in_means_nothing_is_placed(service, hours) -> None:
    dialer = RecordingDialer()
    ask(service, "09121111111", minutes_ago=1)
    report = make(service, hours, StaticQueue(QueueSnapshot(0, 0)), dialer).dispatch_once()
    assert dialer.orders == [] and report.window == 0


def test_a_full_queue_is_left_to_live_callers(service, hours) -> None:
    waiting = tuple(live(i + 1, 1 - i / 100) for i in range(3))
    view = StaticQueue(QueueSnapshot(5, 0, waiting, max_len=3))
    dialer = RecordingDialer()
    ask(service, "09121111111", minutes_ago=5)
    make(service, hours, view, dialer).dispatch_once()
    assert dialer.orders == []


def test_an_unreadable_queue_places_nothing(service, hours) -> None:
    view = StaticQueue()
    view.fail = "AMI is not connected"
    dialer = RecordingDialer()
    ask(service, "09121111111", minutes_ago=1)
    report = make(service, hours, view, dialer).dispatch_once()
    assert dialer.orders == [] and report.error and "AMI" in report.error


# -- hours -----------------------------------------------------------------------------------


def test_nothing_is_placed_outside_the_agents_hours(service, clock) -> None:
    dialer = RecordingDialer()
    hours = agent_hours()
    cb = ask(service, "09121111111", minutes_ago=1)
    dispatcher = make(service, hours, StaticQueue(QueueSnapshot(3, 3)), dialer)
    for moment in (CLOSES, CLOSES + timedelta(hours=3), T0 + timedelta(days=6)):  # 16:00, Friday
        clock.now = moment
        dispatcher.dispatch_once()
    assert dialer.orders == []
    clock.now = T0 + timedelta(days=1)  # Sunday 09:00
    dispatcher.dispatch_once()
    assert [o.callback_id for o in dialer.orders] == [cb]


def test_a_holiday_or_a_provincial_closure_holds_that_province_only(service) -> None:
    closure = Holiday(date(2026, 5, 16), "تعطیلی", "closure", province="qom")
    dialer = RecordingDialer()
    ask(service, "09121111111", minutes_ago=5, province="qom")
    tehran = ask(service, "09122222222", minutes_ago=1, province="tehran")
    view = StaticQueue(QueueSnapshot(3, 3))
    make(service, agent_hours(closure), view, dialer).dispatch_once()
    assert [o.callback_id for o in dialer.orders] == [tehran]


def test_a_stand_in_still_waiting_at_closing_time_is_withdrawn(service, hours, clock) -> None:
    view = StaticQueue(QueueSnapshot(1, 0, (live(1, 9),)))
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=30)
    dispatcher = make(service, hours, view, dialer)
    dispatcher.dispatch_once()
    (order,) = dialer.orders
    standin = WaitingEntry(1, T0 - timedelta(minutes=30), "Local/s@standin;2", order.attempt_id)
    view.current = QueueSnapshot(1, 0, (standin, live(2, 9)))
    dialer.checks[order.attempt_id] = ALIVE  # it is waiting in the queue all this time
    clock.now = CLOSES
    report = dispatcher.dispatch_once()
    assert report.withdrawn == [order.attempt_id]
    assert dialer.withdrawn == [(order.attempt_id, "Local/s@standin;2")]
    row = service.get(cb)
    assert row is not None and row.status == CallbackStatus.PENDING and row.attempts == 0
    (attempt,) = service.attempts_of(cb)
    assert attempt.outcome == "withdrawn" and "hours" in (attempt.detail or "")


def test_the_stand_in_of_a_cancelled_callback_is_withdrawn(service, hours) -> None:
    view = StaticQueue(QueueSnapshot(1, 0))
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=3)
    dispatcher = make(service, hours, view, dialer)
    dispatcher.dispatch_once()
    (order,) = dialer.orders
    service.cancel(cb)
    view.current = QueueSnapshot(1, 0, (WaitingEntry(1, T0, "Local/x;2", order.attempt_id),))
    dispatcher.dispatch_once()
    assert dialer.withdrawn == [(order.attempt_id, "Local/x;2")]
    assert service.get(cb).status == CallbackStatus.CANCELLED  # type: ignore[union-attr]
    assert service.open_attempts() == []


def test_a_stand_in_nobody_knows_is_hung_up(service, hours) -> None:
    view = StaticQueue(QueueSnapshot(1, 0, (WaitingEntry(1, T0, "Local/old;2", 4242),)))
    dialer = RecordingDialer()
    report = make(service, hours, view, dialer).dispatch_once()
    assert dialer.withdrawn == [(4242, "Local/old;2")] and report.withdrawn == [4242]


# -- outcomes, retries, leases -----------------------------------------------------------------


def test_events_move_the_callback_along(service, hours) -> None:
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=1)
    make(service, hours, StaticQueue(), dialer).dispatch_once()
    (order,) = dialer.orders
    assert dialer.sink is not None
    dialer.sink(Connected(order.attempt_id, "Agent 7"))
    assert service.get(cb).status == CallbackStatus.IN_PROGRESS  # type: ignore[union-attr]
    dialer.sink(Ended(order.attempt_id, Outcome.ANSWERED, "DIALSTATUS=ANSWER"))
    assert service.get(cb).status == CallbackStatus.DONE  # type: ignore[union-attr]


def test_a_place_that_fails_costs_no_attempt(service, hours) -> None:
    dialer = RecordingDialer()
    dialer.fail_place = "Originate: Permission denied"
    cb = ask(service, "09121111111", minutes_ago=1)
    make(service, hours, StaticQueue(), dialer).dispatch_once()
    row = service.get(cb)
    assert row is not None and row.status == CallbackStatus.PENDING and row.attempts == 0
    (attempt,) = service.attempts_of(cb)
    assert attempt.outcome == "withdrawn" and "Permission denied" in (attempt.detail or "")


def test_three_unanswered_attempts_spaced_inside_hours_then_failed(service, clock) -> None:
    """Attempts at 15:40 and 15:50; the third is due at 16:00, when agents have left, so it
    waits for Sunday 08:00; then the callback is failed."""
    hours = agent_hours()
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=1)
    dispatcher = make(service, hours, StaticQueue(QueueSnapshot(1, 1)), dialer)
    started: list[datetime] = []
    moment = CLOSES - timedelta(minutes=20)
    while moment < CLOSES + timedelta(hours=18):  # to Sunday 10:00, a pass every 5 minutes
        clock.now = moment
        before = len(dialer.orders)
        dispatcher.dispatch_once()
        if len(dialer.orders) > before:
            started.append(moment)
            assert dialer.sink is not None
            dialer.sink(Ended(dialer.orders[-1].attempt_id, Outcome.NO_ANSWER, "NOANSWER"))
        moment += timedelta(minutes=5)
    assert [s.astimezone(TEHRAN).strftime("%a %H:%M") for s in started] == [
        "Sat 15:40",
        "Sat 15:50",
        "Sun 08:00",
    ]
    row = service.get(cb)
    assert row is not None and row.status == CallbackStatus.FAILED and row.attempts == 3
    assert [a.outcome for a in service.attempts_of(cb)] == ["no_answer"] * 3


def test_an_attempt_seen_alive_gets_its_lease_renewed(service, hours, clock) -> None:
    dialer = RecordingDialer()
    ask(service, "09121111111", minutes_ago=1)
    dispatcher = make(service, hours, StaticQueue(QueueSnapshot(1, 0)), dialer)
    dispatcher.dispatch_once()
    (order,) = dialer.orders
    dialer.checks[order.attempt_id] = ALIVE
    clock.now += timedelta(seconds=31)  # past half the lease: time to look
    report = dispatcher.dispatch_once()
    assert report.renewed == [order.attempt_id]
    (attempt,) = service.open_attempts()
    assert attempt.lease_until == clock.now + timedelta(seconds=60)
    clock.now += timedelta(seconds=10)  # not yet half way again: nobody asks the dialer
    dispatcher.dispatch_once()
    assert len(dialer.checked) == 1


def test_a_dead_dispatchers_attempt_is_interrupted_counted_and_spaced(service, hours, clock):
    """The node that claimed the attempt died before its call left a trace."""
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=1)
    attempt = service.claim(cb, "dead-node", "fake")
    assert attempt is not None and attempt.id is not None
    dispatcher = make(service, hours, StaticQueue(QueueSnapshot(1, 1)), dialer)
    clock.now += timedelta(seconds=45)  # lease not over: no trace is not yet a verdict
    assert dispatcher.dispatch_once().interrupted == []
    assert dialer.orders == []
    clock.now += timedelta(seconds=20)
    report = dispatcher.dispatch_once()
    assert report.interrupted == [attempt.id]
    row = service.get(cb)
    assert row is not None and row.attempts == 1 and row.status == CallbackStatus.PENDING
    assert row.next_attempt_at == clock.now + timedelta(minutes=10)
    assert dialer.orders == []  # the next try waits the retry spacing
    clock.now += timedelta(minutes=10)
    dispatcher.dispatch_once()
    assert [o.callback_id for o in dialer.orders] == [cb]


def test_an_outcome_kept_by_the_network_is_taken_not_interrupted(service, hours, clock) -> None:
    """The call ended while no dispatcher listened; the PBX kept its outcome (AstDB)."""
    dialer = RecordingDialer()
    cb = ask(service, "09121111111", minutes_ago=1)
    attempt = service.claim(cb, "dead-node", "fake")
    assert attempt is not None and attempt.id is not None
    dialer.checks[attempt.id] = Ended(attempt.id, Outcome.ANSWERED, "DIALSTATUS=ANSWER")
    clock.now += timedelta(seconds=90)
    report = make(service, hours, StaticQueue(QueueSnapshot(1, 1)), dialer).dispatch_once()
    assert report.recovered == [attempt.id] and report.interrupted == []
    row = service.get(cb)
    assert row is not None and row.status == CallbackStatus.DONE
    assert dialer.orders == []  # never placed a second time


def test_when_the_network_cannot_be_asked_nothing_is_decided(service, hours, clock) -> None:
    dialer = RecordingDialer()
    dialer.fail_check = "AMI is not connected"
    cb = ask(service, "09121111111", minutes_ago=1)
    attempt = service.claim(cb, "dead-node", "fake")
    assert attempt is not None
    clock.now += timedelta(minutes=30)
    report = make(service, hours, StaticQueue(QueueSnapshot(1, 1)), dialer).dispatch_once()
    assert report.interrupted == [] and len(service.open_attempts()) == 1


# -- a caller-first dialer (Twilio) ------------------------------------------------------------


def test_caller_first_dialers_start_no_more_than_the_free_agents(service, hours) -> None:
    dialer = RecordingDialer(holds_place=False)
    view = StaticQueue(QueueSnapshot(agents_logged_in=4, agents_free=2))
    for i in range(5):
        ask(service, f"0912111111{i}", minutes_ago=10 - i)
    dispatcher = make(service, hours, view, dialer)
    dispatcher.dispatch_once()
    assert len(dialer.orders) == 2
    assert [c.status for c in service.list()][:2] == ["in_progress"] * 2
    dispatcher.dispatch_once()  # both agents promised: nothing more
    assert len(dialer.orders) == 2


def test_caller_first_dialers_let_older_live_callers_go_first(service, hours) -> None:
    dialer = RecordingDialer(holds_place=False)
    view = StaticQueue(QueueSnapshot(2, 1, (live(1, 5),)))
    ask(service, "09121111111", minutes_ago=2)
    make(service, hours, view, dialer).dispatch_once()
    assert dialer.orders == []


# -- the whole queue, simulated ----------------------------------------------------------------


@dataclass
class Day:
    """What a simulated day did: who was served in which order, and when each first entered."""

    served: list[str]
    entered: dict[str, datetime]


def run_queue(
    service: CallbackService,
    clock: Clock,
    sim: SimulatedQueue,
    events: list[tuple[timedelta, str, str]],
    until: timedelta,
    step: timedelta = timedelta(seconds=5),
) -> Day:
    """Drive the simulated queue and the dispatcher, one pass every ``step``.

    ``events`` are (when, what, number): ``join`` a live caller joins the queue; ``press1`` a
    waiting caller asks for a callback (keeping their entry time); ``ask`` a callback from the
    "no agent" menu (entered when asked). Each step: calls end and free agents take the head
    of the queue, then the step's events happen, then the dispatcher passes — so a callback
    gets its stand-in before an agent can be taken from it (the flow asks for the callback
    between two passes; see the dispatcher's docstring for that bound).
    """
    dispatcher = Dispatcher(service, agent_hours(), sim, sim, node="sim")
    names: dict[int, str] = {}
    entered: dict[str, datetime] = {}
    pending = sorted(events)
    t = timedelta(0)
    while t <= until:
        clock.now = T0 + t
        sim.tick(clock.now)
        while pending and pending[0][0] <= t:
            when, what, who = pending.pop(0)
            if what == "join":
                sim.join(who, T0 + when)
                entered[who] = T0 + when
                continue
            joined = sim.leave(who) if what == "press1" else clock.now
            if joined is None:
                continue  # an agent took them before they pressed 1
            row = service.request(who, "qom", joined)
            assert row.id is not None
            names[row.id] = who
            entered[who] = joined
        dispatcher.dispatch_once()
        t += step
    served = [names[int(n[2:])] if n.startswith("cb") else n for n in sim.served]
    return Day(served, entered)


def test_live_callers_and_callbacks_are_served_in_entry_order(service, clock) -> None:
    """One agent; callers join every 10 s; two of them press 1 while waiting. Everybody is
    served in the order they first joined — callbacks neither first nor last."""
    sim = SimulatedQueue(agents=1, talk=timedelta(seconds=60), now=T0)
    events = [(timedelta(seconds=10 * i), "join", f"0912000000{i}") for i in range(6)]
    events += [
        (timedelta(seconds=55), "press1", "09120000002"),
        (timedelta(seconds=57), "press1", "09120000004"),
    ]
    day = run_queue(service, clock, sim, events, until=timedelta(minutes=8))
    assert day.served == [f"0912000000{i}" for i in range(6)]
    assert all(c.status == CallbackStatus.DONE for c in service.list())


def test_two_agents_and_five_callbacks_make_two_calls_at_once(service, clock) -> None:
    sim = SimulatedQueue(agents=2, talk=timedelta(seconds=40), now=T0)
    events = [(timedelta(0), "ask", f"0912111111{i}") for i in range(5)]
    run_queue(service, clock, sim, events, until=timedelta(minutes=3))
    assert sim.ringing_max == 2
    assert len(sim.rung) == 5 and len(set(sim.rung)) == 5  # each once
    assert all(c.status == CallbackStatus.DONE for c in service.list())


@pytest.mark.parametrize("seed", range(4))
def test_random_days_keep_entry_order(service, clock, seed: int) -> None:
    """Random arrivals, presses of 1 and menu requests with 1–3 agents: the order in which
    agents take entries is the order of original entry time."""
    rng = random.Random(seed)
    agents = rng.randint(1, 3)
    sim = SimulatedQueue(agents=agents, talk=timedelta(seconds=rng.randint(30, 90)), now=T0)
    events: list[tuple[timedelta, str, str]] = []
    t = timedelta(0)
    for i in range(25):
        t += timedelta(seconds=rng.randint(1, 30))
        number = f"0912{i:07d}"
        if rng.random() < 0.2:
            events.append((t, "ask", number))
        else:
            events.append((t, "join", number))
            if rng.random() < 0.3:
                events.append((t + timedelta(seconds=rng.randint(5, 40)), "press1", number))
    day = run_queue(service, clock, sim, events, until=timedelta(minutes=40))
    assert len(day.served) == 25, "everyone was served"
    assert day.served == sorted(day.served, key=lambda who: day.entered[who])
    assert service.open_attempts() == []
