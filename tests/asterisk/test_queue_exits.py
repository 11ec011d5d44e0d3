"""Leaving the queue on the real Asterisk, through the production dialplan: an empty queue (no
agent, or every agent paused) and a caller pressing 1 both come back to the IVR with a resume
marker instead of being hung up on; AMI QueueAdd/QueuePause/QueueRemove and QueueStatus as the
desk and `ivr queue status` use them."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from queue_helpers import TEST_QUEUE, agent_interface, call_into_queue, ivr_on, wait_played

from ivr.devtools.testpbx import TestPbx
from ivr.flow.resume import ReturnReason
from ivr.prompts import install_asterisk
from ivr.telephony.ami import AmiClient
from ivr.telephony.queue_status import AgentState, queue_status


@pytest.fixture
def agents(ami: AmiClient) -> Iterator[list[str]]:
    """Interfaces a test logs in to the test queue; all logged out afterwards."""
    added: list[str] = []
    yield added
    for interface in added:
        try:
            ami.queue_remove(TEST_QUEUE, interface)
        except Exception:
            continue


def log_in(ami: AmiClient, agents: list[str], name: str, *, paused: bool = False) -> str:
    interface = agent_interface(name)
    ami.queue_add(TEST_QUEUE, interface, f"Agent {name}", paused=paused)
    agents.append(interface)
    return interface


def test_no_agent_logged_in_goes_back_to_the_ivr(pbx: TestPbx, ami: AmiClient):
    with ivr_on(pbx) as ivr, ami.events("QueueCallerJoin", "Hangup") as events:
        caller, _ = call_into_queue(ami, events, joins=False)
        uniqueid, marker, script = ivr.next_return()
        assert uniqueid == caller.ivr_uniqueid  # the same call, not a new one
        assert marker is not None and marker.reason is ReturnReason.NO_AGENT
        assert (marker.queue, marker.status) == (TEST_QUEUE, "JOINEMPTY")
        assert marker.position is None  # never joined
        assert events.collected("QueueCallerJoin") == []
        assert script.startswith("ivr124?resume=no_agent&")


def test_every_agent_paused_is_an_empty_queue(pbx: TestPbx, ami: AmiClient, agents):
    log_in(ami, agents, "p1", paused=True)
    with ivr_on(pbx) as ivr, ami.events("QueueCallerJoin") as events:
        call_into_queue(ami, events, joins=False)
        _, marker, _ = ivr.next_return()
        assert marker is not None and marker.status == "JOINEMPTY"


def test_a_waiting_caller_whose_last_agent_pauses_goes_back(pbx, ami: AmiClient, agents):
    busy = log_in(ami, agents, "l1")
    with (
        ivr_on(pbx) as ivr,
        ami.events("QueueCallerJoin", "AgentConnect", "QueueCallerLeave") as events,
    ):
        first, _ = call_into_queue(ami, events)
        events.get("AgentConnect", timeout=15, Uniqueid=first.ivr_uniqueid)
        waiting, joined = call_into_queue(ami, events, "09120000002")
        assert joined is not None and joined["Position"] == "1"
        ami.queue_pause(TEST_QUEUE, busy, True, "lunch")  # on the phone, then on a break
        uniqueid, marker, _ = ivr.next_return()
        assert uniqueid == waiting.ivr_uniqueid
        assert marker is not None and marker.reason is ReturnReason.NO_AGENT
        assert (marker.status, marker.position) == ("LEAVEEMPTY", 1)
        first.hang_up()
        waiting.hang_up()


def test_pressing_1_in_the_queue_asks_for_a_callback_and_keeps_the_place(
    pbx: TestPbx, ami: AmiClient, agents
):
    log_in(ami, agents, "k1")
    with (
        ivr_on(pbx) as ivr,
        ami.events("QueueCallerJoin", "AgentConnect", "QueueCallerLeave") as events,
    ):
        first, _ = call_into_queue(ami, events)
        events.get("AgentConnect", timeout=15, Uniqueid=first.ivr_uniqueid)
        ahead, _ = call_into_queue(ami, events, "09120000002")
        before = datetime.datetime.now(datetime.UTC)
        caller, joined = call_into_queue(ami, events, "09120000003")
        assert joined is not None and joined["Position"] == "2"
        wait_played(pbx, caller.ivr_leg, "queue-thankyou")
        caller.press("5")  # not an exit: the caller keeps waiting
        time.sleep(1.0)
        left = [
            e
            for e in events.collected("QueueCallerLeave")
            if e.matches(Uniqueid=caller.ivr_uniqueid)
        ]
        assert left == []
        caller.press("1")
        uniqueid, marker, _ = ivr.next_return()
        assert uniqueid == caller.ivr_uniqueid
        assert marker is not None and marker.reason is ReturnReason.CALLBACK
        assert (marker.queue, marker.status, marker.position) == (TEST_QUEUE, "EXITWITHKEY", 2)
        # The entry time is the caller's original place in line (to the millisecond).
        assert marker.entered_at is not None
        assert before - datetime.timedelta(seconds=2) <= marker.entered_at
        assert marker.entered_at <= datetime.datetime.now(datetime.UTC)
        assert marker.waited_s is not None and marker.waited_s >= 1
        left = events.get("QueueCallerLeave", timeout=5, Uniqueid=caller.ivr_uniqueid)
        assert left["Position"] == "2"
        for c in (first, ahead, caller):
            c.hang_up()


def test_nobody_to_answer_and_no_ivr_is_a_persian_goodbye(
    pbx: TestPbx, ami: AmiClient, prompts_built
):
    install_asterisk(prompts_built, pbx.sounds_dir)
    with ivr_on(pbx) as ivr, ami.events("QueueCallerJoin", "Hangup") as events:
        # The IVR sends the caller to an empty queue, then goes away before they come back.
        original = ivr.handle

        def once(call) -> None:
            original(call)
            ivr.server.shutdown()

        ivr.server.handler = once  # type: ignore[attr-defined]
        caller, _ = call_into_queue(ami, events, joins=False)
        events.get("Hangup", timeout=20, Uniqueid=caller.ivr_uniqueid)
    heard = [s.name for s in wait_played(pbx, caller.ivr_leg, "ivr124/queue-closed")]
    assert heard[-1] == "ivr124/queue-closed"


def test_queue_members_and_callers_over_ami(pbx: TestPbx, ami: AmiClient, agents):
    busy = log_in(ami, agents, "s1")
    idle = log_in(ami, agents, "s2", paused=True)
    snapshot = queue_status(ami, TEST_QUEUE)[TEST_QUEUE]
    states = {a.interface: a for a in snapshot.agents}
    assert states[busy].state is AgentState.FREE and states[busy].dynamic
    assert states[idle].state is AgentState.PAUSED
    assert snapshot.callers == ()
    with ivr_on(pbx), ami.events("QueueCallerJoin", "AgentConnect") as events:
        first, _ = call_into_queue(ami, events)
        events.get("AgentConnect", timeout=15, Uniqueid=first.ivr_uniqueid)
        waiting, _ = call_into_queue(ami, events, "09120000002")
        time.sleep(1.1)
        ami.queue_pause(TEST_QUEUE, idle, True, "training")
        snapshot = queue_status(ami, TEST_QUEUE)[TEST_QUEUE]
        states = {a.interface: a for a in snapshot.agents}
        assert states[busy].state is AgentState.BUSY
        assert (states[idle].state, states[idle].paused_reason) == (AgentState.PAUSED, "training")
        assert [(c.position, c.caller_id) for c in snapshot.callers] == [(1, "09120000002")]
        assert snapshot.longest_wait_s >= 1
        assert snapshot.free_agents == 0

        out = run_cli(pbx, "queue", "status", "--queue", TEST_QUEUE)
        assert out.returncode == 0, out.stderr
        assert f"{TEST_QUEUE}: 1 caller(s) waiting" in out.stdout
        assert "09120000002" in out.stdout and "training" in out.stdout
        as_json = run_cli(pbx, "queue", "status", "--queue", TEST_QUEUE, "--json")
        data = json.loads(as_json.stdout)
        assert data[0]["callers_waiting"] == 1
        assert {a["state"] for a in data[0]["agents"]} == {"busy", "paused"}
        first.hang_up()
        waiting.hang_up()
    ami.queue_remove(TEST_QUEUE, busy)
    agents.remove(busy)
    assert [a.interface for a in queue_status(ami, TEST_QUEUE)[TEST_QUEUE].agents] == [idle]


def test_cli_names_a_missing_queue(pbx: TestPbx):
    out = run_cli(pbx, "queue", "status", "--queue", "no-such-queue")
    assert out.returncode == 1
    assert out.stderr.strip() == "ivr queue status: Asterisk has no queue 'no-such-queue'"


def run_cli(pbx: TestPbx, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env.update(
        IVR_AMI_HOST="127.0.0.1",
        IVR_AMI_PORT=str(pbx.ami_port),
        IVR_AMI_USERNAME=pbx.ami_user,
        IVR_AMI_SECRET=pbx.ami_secret,
    )
    ivr = Path(sys.executable).with_name("ivr")
    return subprocess.run(
        [str(ivr), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_a_caller_pressing_0_with_no_agent_logged_in_hears_the_no_agent_menu(
    pbx: TestPbx, ami: AmiClient, prompts_built, tmp_path: Path, monkeypatch
):
    # The production handler (ivr serve's) on the second AGI of a call the queue gave back
    # (JOINEMPTY: nobody logged in): it reads the marker, hands it to the session, and the
    # caller hears that nobody can answer and the "no agent" menu, not the greeting, not
    # silence, not a hang-up.
    from ivr.services import build_services
    from ivr.session import CallSession
    from ivr.settings import Settings
    from ivr.telephony.asterisk import AsteriskCalls
    from ivr.tickets.db import upgrade

    install_asterisk(prompts_built, pbx.sounds_dir)
    settings = Settings(storage_dir=tmp_path, database_url="", prompts_dir=prompts_built)
    upgrade(settings.db_url)
    production = AsteriskCalls(build_services(settings), settings)
    started: list[object] = []
    real_start = CallSession.start.__func__  # type: ignore[attr-defined]

    def spy(cls, *args, **kwargs):
        started.append(kwargs.get("resume"))
        return real_start(cls, *args, **kwargs)

    monkeypatch.setattr(CallSession, "start", classmethod(spy))
    with ivr_on(pbx) as ivr, ami.events("QueueCallerJoin", "AGIExecStart") as events:
        first_call = ivr.handle

        def handler(call) -> None:
            if "resume=" in call.script:
                production(call)
            else:
                first_call(call)

        ivr.server.handler = handler  # type: ignore[attr-defined]
        caller, _ = call_into_queue(ami, events, joins=False)
        events.get(
            "AGIExecStart",
            timeout=15,
            Uniqueid=caller.ivr_uniqueid,
            where=lambda e: "ivr124/no_agent-busy" in e.get("Command"),
        )
        events.get(
            "AGIExecStart",
            timeout=15,
            Uniqueid=caller.ivr_uniqueid,
            where=lambda e: "ivr124/no_agent-menu" in e.get("Command"),
        )
        caller.hang_up()
    assert len(started) == 1
    marker = started[0]
    assert marker is not None
    assert (marker.reason, marker.status) == (ReturnReason.NO_AGENT, "JOINEMPTY")  # type: ignore[attr-defined]
