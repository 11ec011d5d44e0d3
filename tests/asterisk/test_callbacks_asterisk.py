"""Callbacks through the real Asterisk: stand-ins in the queue, agents, callers, outcomes.

The test PBX's queue ``cb-agents`` has the production options and no static member; each test
logs in its own agents (``Local/<name>@cb-test-agents/n``, answering at once) with AMI QueueAdd.
Live callers are Local channels waiting in ``Queue(cb-agents)``; the callback's caller is
``Local/<number>@cb-callee-answer|noanswer/n`` (the dial string IVR_CALLBACK_DIAL would name a
trunk). The dispatcher runs with its own AMI session (the production event mask), the tests
watch through the session-wide ``ami`` client: AgentConnect says which entry an agent took,
BridgeEnter which channels were bridged, Newexten what was played.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ivr.calendar.agent_hours import AgentHours
from ivr.callbacks.asterisk import EVENT_MASK, AsteriskDialer, AsteriskQueueView, list_action
from ivr.callbacks.dispatcher import Dispatcher
from ivr.callbacks.models import CallbackStatus
from ivr.callbacks.service import CallbackService
from ivr.clock import utcnow
from ivr.devtools.testpbx import TestPbx
from ivr.prompts import install_asterisk
from ivr.telephony.ami import AmiClient, AmiEvent, EventQueue
from ivr.tickets.db import make_engine, upgrade

QUEUE = "cb-agents"
PASS_S = 0.3
"""A dispatcher pass every 0.3 s: well inside the agents' talk times below."""


class AlwaysOpen:
    """Agents' hours for the tests that are not about hours (they run on any day)."""

    def is_open(self, province: str, moment: datetime) -> bool:
        return True

    def next_opening(self, province: str, moment: datetime) -> datetime:
        return moment


@pytest.fixture(scope="module")
def sounds(pbx: TestPbx, prompts_built: Path) -> None:
    install_asterisk(prompts_built, pbx.sounds_dir)  # the greeting the caller hears


@dataclass
class Rig:
    """One test's callbacks: a database, the dispatcher's own AMI session, agents, callers."""

    pbx: TestPbx
    ami: AmiClient
    """The tests' view of the PBX (every event)."""
    db: Path
    clock: Callable[[], datetime] = utcnow
    hours: AgentHours = field(default_factory=AlwaysOpen)  # type: ignore[assignment]
    dial: str = "Local/{number}@cb-callee-answer/n"
    ring_seconds: int = 10
    agents: list[str] = field(default_factory=list)
    live: list[str] = field(default_factory=list)
    _clients: list[AmiClient] = field(default_factory=list)
    _loop: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        upgrade(f"sqlite:///{self.db}")
        self.engine = make_engine(f"sqlite:///{self.db}")
        self.service = CallbackService(self.engine, clock=self.clock)
        self.dispatcher = self.new_dispatcher()

    def new_dispatcher(self) -> Dispatcher:
        """A dispatcher as a freshly started leader builds it: its own AMI login."""
        client = AmiClient(
            "127.0.0.1",
            self.pbx.ami_port,
            self.pbx.ami_user,
            self.pbx.ami_secret,
            event_mask=EVENT_MASK,
        )
        client.connect(timeout=10)
        self._clients.append(client)
        dialer = AsteriskDialer(
            client, queue=QUEUE, dial=self.dial, hold_seconds=120, ring_seconds=self.ring_seconds
        )
        view = AsteriskQueueView(client, QUEUE)
        return Dispatcher(self.service, self.hours, view, dialer, node="test", clock=self.clock)

    def kill_dispatcher(self) -> None:
        """The leader dies: its loop stops and its AMI session goes, listener and all."""
        self.stop_loop()
        self.dispatcher.dialer.close()
        self._clients[-1].close()

    # -- the PBX ---------------------------------------------------------------------------------

    def talk_times(self, agent: float, callee: float) -> None:
        """How long the test agents and the called-back callers stay on the line (globals)."""
        self.ami.action("Setvar", Variable="CB_AGENT_TALK", Value=str(agent))
        self.ami.action("Setvar", Variable="CB_CALLEE_TALK", Value=str(callee))

    def add_agent(self, name: str) -> str:
        interface = f"Local/{name}@cb-test-agents/n"
        self.ami.action("QueueAdd", Queue=QUEUE, Interface=interface, MemberName=f"Agent {name}")
        self.agents.append(interface)
        return interface

    def join_live(self) -> str:
        """A live caller joins the queue; returns the uniqueid AgentConnect will name."""
        originated = self.ami.originate_local("cb-test-live", "test-caller", "s")
        self.live.append(originated.other_uniqueid)
        return originated.other_uniqueid

    def wait_waiting(self, wanted: list[str], timeout: float = 5.0) -> list[str]:
        """The queue once it holds ``wanted`` (a joining Local channel takes ~0.5 s to Answer)."""
        deadline = time.monotonic() + timeout
        while (found := self.waiting()) != wanted and time.monotonic() < deadline:
            time.sleep(0.1)
        return found

    def waiting(self) -> list[str]:
        """Uniqueids in the queue, in queue order."""
        return [
            e.get("Uniqueid")
            for e in _list(
                self.ami, "QueueStatus", "QueueStatusComplete", "QueueEntry", Queue=QUEUE
            )
        ]

    # -- the dispatcher loop ------------------------------------------------------------------

    def start_loop(self) -> None:
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(PASS_S):
                try:
                    self.dispatcher.dispatch_once()
                except Exception:  # a failing pass must show in the test, not kill the loop
                    import logging

                    logging.getLogger(__name__).exception("dispatcher pass failed")

        self._loop = threading.Thread(target=loop, name="test-dispatcher", daemon=True)
        self._loop.start()

    def stop_loop(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.join(10)
            self._loop = None

    def status(self, callback_id: int) -> str:
        row = self.service.get(callback_id)
        assert row is not None
        return row.status

    def wait_status(self, callback_id: int, *wanted: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (status := self.status(callback_id)) in wanted:
                return status
            time.sleep(0.1)
        raise AssertionError(f"callback {callback_id} is {self.status(callback_id)}, not {wanted}")

    def close(self) -> None:
        self.stop_loop()
        for interface in self.agents:
            with contextlib.suppress(Exception):
                self.ami.action("QueueRemove", Queue=QUEUE, Interface=interface)
        for channel in _list(
            self.ami, "CoreShowChannels", "CoreShowChannelsComplete", "CoreShowChannel"
        ):
            name = channel.get("Channel")
            if any(tag in name for tag in ("cb-", "ivr124-callback")):
                with contextlib.suppress(Exception):
                    self.ami.hangup(name)
        for client in self._clients:
            client.close()
        self.engine.dispose()


def _list(ami: AmiClient, action: str, complete: str, name: str, **keys: str) -> list[AmiEvent]:
    """The ``name`` events an AMI list action answers with."""
    return [e for e in list_action(ami, action, complete, (name,), **keys) if e.name == name]


@pytest.fixture
def rig(pbx: TestPbx, ami: AmiClient, tmp_path: Path, sounds: None) -> Iterator[Rig]:
    made = Rig(pbx, ami, tmp_path / "ivr.db")
    try:
        yield made
    finally:
        made.close()


def connected_order(events: EventQueue, count: int, timeout: float = 60.0) -> list[str]:
    """The queue entries agents took, in order (AgentConnect's Uniqueid)."""
    taken = []
    for _ in range(count):
        taken.append(events.get("AgentConnect", timeout=timeout, Queue=QUEUE).get("Uniqueid"))
    return taken


def bridges(events: list[AmiEvent]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for event in events:
        if event.name == "BridgeEnter":
            found.setdefault(event.get("BridgeUniqueid"), set()).add(event.get("Channel"))
    return found


# --------------------------------------------------------------------------------------------


def test_an_agent_becomes_free_and_the_callback_is_bridged_and_stored(rig: Rig, ami: AmiClient):
    # The caller stays longer than the greeting (about 4 s), so the two are bridged after it.
    rig.talk_times(agent=3, callee=8)
    rig.add_agent("a1")
    with ami.events() as events:
        busy_with = rig.join_live()  # the only agent takes this caller first
        events.get("AgentConnect", timeout=10, Uniqueid=busy_with)
        callback = rig.service.request("09121234567", "qom", utcnow())
        assert callback.id is not None
        rig.start_loop()
        # While the agent talks, a stand-in holds the callback's place; nobody is rung.
        rig.wait_status(callback.id, CallbackStatus.QUEUED, timeout=10)
        # The attempt's channel id is stored just after the status: wait for it too.
        deadline = time.monotonic() + 10
        while (attempt := rig.service.attempts_of(callback.id)[0]).external_id is None:
            assert time.monotonic() < deadline, "the attempt never got its channel id"
            time.sleep(0.05)
        assert rig.wait_waiting([attempt.external_id]) == [attempt.external_id]
        # The agent becomes free, takes the stand-in; the caller is rung and answers.
        events.get("AgentConnect", timeout=15, Uniqueid=attempt.external_id)
        rig.wait_status(callback.id, CallbackStatus.DONE, timeout=30)
        other_half_uid = attempt.external_id[:-1] + "1"
        events.get("Hangup", timeout=10, Uniqueid=other_half_uid)  # all its events are in
        seen = events.collected()
    names = {e.get("Uniqueid"): e.get("Channel") for e in seen if e.name == "Newchannel"}
    standin, other_half = names[attempt.external_id], names[other_half_uid]
    by_bridge = list(bridges(seen).values())
    # Both legs bridged: the agent's phone with the stand-in, and the stand-in's other half with
    # the caller's phone (the two halves of the Local channel carry the audio between them).
    (agent_bridge,) = [b for b in by_bridge if standin in b]
    assert len(agent_bridge) == 2
    (agent_phone,) = agent_bridge - {standin}
    assert agent_phone.startswith("Local/a1@cb-test-agents-") and agent_phone.endswith(";1")
    (caller_bridge,) = [b for b in by_bridge if other_half in b]
    (caller_phone,) = caller_bridge - {other_half}
    assert caller_phone.startswith("Local/09121234567@cb-callee-answer-")
    # The caller heard the greeting first, on their own channel.
    played = [
        e.get("AppData")
        for e in seen
        if e.name == "Newexten"
        and e.get("Channel") == caller_phone
        and e.get("Application") == "Playback"
    ]
    assert played == ["ivr124/callback_call-greeting"]
    (stored,) = rig.service.attempts_of(callback.id)
    assert stored.outcome == "answered" and stored.agent == "Agent a1"
    assert stored.detail is not None and stored.detail.startswith("DIALSTATUS=ANSWER")
    assert stored.connected_at is not None and stored.ended_at is not None
    assert rig.service.get(callback.id).attempts == 0  # type: ignore[union-attr]


def test_live_callers_and_a_callback_are_served_in_entry_order(rig: Rig, ami: AmiClient):
    """One agent. Caller 1 joins, then a callback whose entry time lies between, then caller 2:
    the agent takes caller 1, the callback, caller 2 — not the callback first, nor last."""
    rig.talk_times(agent=8, callee=4)  # every call keeps the agent 8 s
    rig.add_agent("a1")
    with ami.events("AgentConnect") as events:
        first_busy = rig.join_live()  # keeps the agent busy while the others line up
        events.get("AgentConnect", timeout=10, Uniqueid=first_busy)
        caller_1 = rig.join_live()
        time.sleep(2.0)  # entry times are read in whole seconds of waiting
        callback = rig.service.request("09121234567", "qom", utcnow())
        time.sleep(2.0)
        caller_2 = rig.join_live()
        assert rig.wait_waiting([caller_1, caller_2]) == [caller_1, caller_2]
        rig.start_loop()
        taken = connected_order(events, 3)
    assert callback.id is not None
    (attempt,) = rig.service.attempts_of(callback.id)
    assert taken == [caller_1, attempt.external_id, caller_2]
    assert rig.wait_status(callback.id, CallbackStatus.DONE) == CallbackStatus.DONE


def test_two_free_agents_and_five_callbacks_make_two_calls_at_once(rig: Rig, ami: AmiClient):
    rig.talk_times(agent=60, callee=5)  # each call lasts as long as the caller stays
    rig.add_agent("a1")
    rig.add_agent("a2")
    ids = []
    for i in range(5):
        row = rig.service.request(f"0912123456{i}", "qom", utcnow())
        assert row.id is not None
        ids.append(row.id)
    callers: set[str] = set()
    most_callers = most_in_progress = 0
    lock = threading.Lock()

    def count(event: AmiEvent) -> None:
        nonlocal most_callers
        channel = event.get("Channel")
        if not (channel.startswith("Local/0912") and channel.endswith(";1")):
            return
        with lock:
            (callers.add if event.name == "Newchannel" else callers.discard)(channel)
            most_callers = max(most_callers, len(callers))

    handle = ami.add_listener(count, "Newchannel", "Hangup")
    try:
        rig.start_loop()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            statuses = [rig.status(i) for i in ids]
            most_in_progress = max(most_in_progress, statuses.count(CallbackStatus.IN_PROGRESS))
            if all(s == CallbackStatus.DONE for s in statuses):
                break
            time.sleep(0.1)
    finally:
        ami.remove_listener(handle)
    assert [rig.status(i) for i in ids] == [CallbackStatus.DONE] * 5
    assert most_in_progress == 2
    assert most_callers == 2  # never more callers rung or talking than agents
    agents = {rig.service.attempts_of(i)[0].agent for i in ids}
    assert agents == {"Agent a1", "Agent a2"}
    assert all(len(rig.service.attempts_of(i)) == 1 for i in ids)  # each placed once


class SteppedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_a_number_that_never_answers_gets_three_spaced_attempts_inside_hours(
    pbx: TestPbx, ami: AmiClient, tmp_path: Path, sounds: None
):
    """Saturday 15:40 Tehran: attempts at 15:40 and 15:50; the third falls due at 16:00, when
    agents have gone home, so it waits for Sunday 08:00; then the callback has failed. Real
    calls each time: the agent answers the stand-in, the caller's phone rings 2 s, no answer."""
    from ivr.calendar import WorkCalendar
    from ivr.calendar.agent_hours import load_agent_hours
    from ivr.clock import TEHRAN

    start = datetime(2026, 5, 16, 15, 40, tzinfo=TEHRAN)  # Saturday, no holiday
    clock = SteppedClock(start)
    hours = AgentHours(load_agent_hours(), WorkCalendar())
    rig = Rig(
        pbx,
        ami,
        tmp_path / "ivr.db",
        clock=clock,
        hours=hours,
        dial="Local/{number}@cb-callee-noanswer/n",
        ring_seconds=2,
    )
    try:
        rig.talk_times(agent=60, callee=1)
        rig.add_agent("a1")
        callback = rig.service.request("09121234567", "qom", clock.now)
        assert callback.id is not None
        rung: list[str] = []
        handle = ami.add_listener(
            lambda e: (
                rung.append(e.get("Channel"))
                if e.get("Channel").startswith("Local/09121234567@cb-callee-noanswer")
                and e.get("Channel").endswith(";1")
                else None
            ),
            "Newchannel",
        )
        placed_at = []
        try:
            moment = start
            while moment <= datetime(2026, 5, 17, 8, 30, tzinfo=TEHRAN):
                clock.now = moment
                report = rig.dispatcher.dispatch_once()
                if report.placed:
                    placed_at.append(moment.strftime("%a %H:%M"))
                    rig.wait_status(callback.id, "pending", "failed", timeout=30)
                moment += (
                    timedelta(minutes=5) if moment.hour in (15, 16, 7, 8) else timedelta(hours=1)
                )
        finally:
            ami.remove_listener(handle)
        assert placed_at == ["Sat 15:40", "Sat 15:50", "Sun 08:00"]
        row = rig.service.get(callback.id)
        assert row is not None and row.status == CallbackStatus.FAILED and row.attempts == 3
        attempts = rig.service.attempts_of(callback.id)
        assert [a.outcome for a in attempts] == ["no_answer"] * 3
        assert all((a.detail or "").startswith("DIALSTATUS=NOANSWER") for a in attempts)
        assert len(rung) == 3  # the caller's phone rang three times, no more
    finally:
        rig.close()


def test_a_dispatcher_that_dies_mid_attempt_does_not_make_the_next_one_call_twice(
    rig: Rig, ami: AmiClient
):
    """The leader dies while the stand-in waits. The call goes on without it: the agent takes
    the stand-in, the caller answers and hangs up, while no controller listens. The next
    leader finds the outcome Asterisk kept (AstDB) instead of calling the caller again."""
    rig.talk_times(agent=3, callee=6)
    rig.add_agent("a1")
    with ami.events("AgentConnect", "Hangup", "Newchannel") as events:
        busy_with = rig.join_live()
        events.get("AgentConnect", timeout=10, Uniqueid=busy_with)
        callback = rig.service.request("09121234567", "qom", utcnow())
        assert callback.id is not None
        rig.dispatcher.dispatch_once()
        (attempt,) = rig.service.attempts_of(callback.id)
        rig.kill_dispatcher()
        events.get("Hangup", timeout=30, Uniqueid=attempt.external_id[:-1] + "1")
        rung = [
            e for e in events.collected("Newchannel") if e.get("Channel").startswith("Local/0912")
        ]
    assert rig.status(callback.id) == CallbackStatus.QUEUED  # nobody heard how it went
    later = SteppedClock(utcnow() + timedelta(minutes=5))  # past the lease
    rig.clock = later
    rig.service.clock = later
    rig.dispatcher = rig.new_dispatcher()
    report = rig.dispatcher.dispatch_once()
    assert report.recovered == [attempt.id] and report.interrupted == []
    assert rig.status(callback.id) == CallbackStatus.DONE
    (stored,) = rig.service.attempts_of(callback.id)
    assert stored.outcome == "answered" and (stored.detail or "").startswith("DIALSTATUS=ANSWER")
    assert len([e for e in rung if e.get("Channel").endswith(";1")]) == 1


def test_a_new_leader_keeps_an_attempt_whose_call_is_still_going(rig: Rig, ami: AmiClient):
    """The leader dies while the caller talks to the agent. The next one sees the call alive,
    renews its lease instead of interrupting it, and records the outcome when it ends."""
    rig.talk_times(agent=60, callee=8)
    rig.add_agent("a1")
    callback = rig.service.request("09121234567", "qom", utcnow())
    assert callback.id is not None
    with ami.events("BridgeEnter") as events:
        rig.dispatcher.dispatch_once()
        (attempt,) = rig.service.attempts_of(callback.id)
        events.get("BridgeEnter", timeout=20, Uniqueid=attempt.external_id[:-1] + "1")
    rig.kill_dispatcher()
    later = SteppedClock(utcnow() + timedelta(minutes=5))
    rig.clock = later
    rig.service.clock = later
    rig.dispatcher = rig.new_dispatcher()
    report = rig.dispatcher.dispatch_once()
    assert report.renewed == [attempt.id] and report.interrupted == []
    assert rig.status(callback.id) == CallbackStatus.IN_PROGRESS
    assert rig.wait_status(callback.id, CallbackStatus.DONE, timeout=20) == CallbackStatus.DONE
    assert len(rig.service.attempts_of(callback.id)) == 1


def test_cancelling_a_waiting_callback_takes_its_stand_in_out_of_the_queue(
    rig: Rig, ami: AmiClient
):
    rig.talk_times(agent=20, callee=5)
    rig.add_agent("a1")
    with ami.events("AgentConnect", "Newchannel") as events:
        busy_with = rig.join_live()
        events.get("AgentConnect", timeout=10, Uniqueid=busy_with)
        callback = rig.service.request("09121234567", "qom", utcnow())
        assert callback.id is not None
        rig.dispatcher.dispatch_once()
        (attempt,) = rig.service.attempts_of(callback.id)
        assert rig.wait_waiting([attempt.external_id]) == [attempt.external_id]
        rig.service.cancel(callback.id)
        report = rig.dispatcher.dispatch_once()
        assert report.withdrawn == [attempt.id]
        assert rig.wait_waiting([]) == []
        rung = [e for e in events.collected("Newchannel") if "cb-callee" in e.get("Channel")]
    assert rung == []
    assert rig.status(callback.id) == CallbackStatus.CANCELLED
    (stored,) = rig.service.attempts_of(callback.id)
    assert stored.outcome == "withdrawn"


def test_the_schedulers_job_places_callbacks_through_the_pbx(
    pbx: TestPbx, ami: AmiClient, tmp_path: Path, sounds: None, monkeypatch: pytest.MonkeyPatch
):
    """The scheduler's callback job (``run_job(CALLBACK_JOB)``) on a leader: settings → AMI →
    Originate → done.
    Only the agents' hours are replaced (the test runs on any day, at any hour)."""
    from ivr import scheduler as sched
    from ivr.callbacks import job
    from ivr.leader import make_leader
    from ivr.services import build_services
    from ivr.settings import Settings

    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    settings = Settings(
        storage_dir=tmp_path,
        database_url=url,
        node_name="leader-1",
        ami_port=pbx.ami_port,
        ami_username=pbx.ami_user,
        ami_secret=pbx.ami_secret,
        agent_queue=QUEUE,
        callback_dial="Local/{number}@cb-callee-answer/n",
        callback_ring_seconds=10,
    )
    leader = make_leader(url, settings.node_name, tmp_path)
    assert leader.try_acquire()
    services = build_services(settings)
    monkeypatch.setattr(sched, "_runtime", sched._Runtime(settings, leader, services))
    monkeypatch.setattr(job, "AgentHours", lambda table, calendar: AlwaysOpen())
    interface = "Local/j1@cb-test-agents/n"
    ami.action("Setvar", Variable="CB_AGENT_TALK", Value="20")
    ami.action("Setvar", Variable="CB_CALLEE_TALK", Value="5")
    ami.action("QueueAdd", Queue=QUEUE, Interface=interface, MemberName="Agent j1")
    service = CallbackService(make_engine(url))
    try:
        callback = service.request("09121234567", "qom", utcnow())
        assert callback.id is not None
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            sched.run_job(sched.CALLBACK_JOB)
            if service.get(callback.id).status == CallbackStatus.DONE:  # type: ignore[union-attr]
                break
            time.sleep(0.5)
        (attempt,) = service.attempts_of(callback.id)
        assert service.get(callback.id).status == CallbackStatus.DONE  # type: ignore[union-attr]
        assert (attempt.node, attempt.dialer, attempt.agent) == ("leader-1", "asterisk", "Agent j1")
        assert attempt.outcome == "answered"
    finally:
        job.close()
        ami.action("QueueRemove", Queue=QUEUE, Interface=interface)
        leader.release()
        services.tickets.engine.dispose()
        service.engine.dispose()
