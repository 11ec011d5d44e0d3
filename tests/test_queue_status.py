"""AMI QueueStatus into a queue snapshot, the resume marker of a call back from the queue, and
`ivr queue status` without a reachable AMI (the real-Asterisk side: tests/asterisk)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from pathlib import Path

from ivr.devtools.testpbx import free_port
from ivr.flow.resume import QueueReturn, ReturnReason
from ivr.telephony.ami import AmiEvent
from ivr.telephony.asterisk import queue_return
from ivr.telephony.queue_status import AgentState, parse


def ev(name: str, **fields: str) -> AmiEvent:
    return AmiEvent(name, {"ActionID": "x", **fields})


def test_parse_queue_status_answer():
    events = [
        ev(
            "QueueParams",
            Queue="124-agents",
            Max="30",
            Strategy="leastrecent",
            Calls="2",
            Holdtime="95",
            TalkTime="240",
            Completed="7",
            Abandoned="1",
        ),
        ev(
            "QueueMember",
            Queue="124-agents",
            Name="Agent 101",
            Location="PJSIP/agent101",
            Membership="dynamic",
            CallsTaken="4",
            LastCall="1764571200",
            InCall="1",
            Status="2",
            Paused="0",
            PausedReason="",
        ),
        ev(
            "QueueMember",
            Queue="124-agents",
            Name="Agent 102",
            Location="PJSIP/agent102",
            Membership="static",
            CallsTaken="0",
            LastCall="0",
            InCall="0",
            Status="1",
            Paused="1",
            PausedReason="lunch",
        ),
        ev(
            "QueueMember",
            Queue="124-agents",
            Name="Agent 103",
            Location="PJSIP/agent103",
            Membership="dynamic",
            CallsTaken="0",
            LastCall="0",
            InCall="0",
            Status="5",
            Paused="0",
        ),
        ev(
            "QueueEntry",
            Queue="124-agents",
            Position="2",
            Channel="PJSIP/trunk-2",
            Uniqueid="2.2",
            CallerIDNum="<unknown>",
            Wait="40",
        ),
        ev(
            "QueueEntry",
            Queue="124-agents",
            Position="1",
            Channel="PJSIP/trunk-1",
            Uniqueid="1.1",
            CallerIDNum="09121234567",
            Wait="75",
        ),
        ev(
            "QueueParams",
            Queue="other",
            Max="0",
            Strategy="ringall",
            Holdtime="0",
            TalkTime="0",
            Completed="0",
            Abandoned="0",
        ),
    ]
    queues = parse(events)
    assert list(queues) == ["124-agents", "other"]
    q = queues["124-agents"]
    assert (q.max_callers, q.strategy, q.holdtime_s, q.completed, q.abandoned) == (
        30,
        "leastrecent",
        95,
        7,
        1,
    )
    assert [(c.position, c.caller_id, c.wait_s) for c in q.callers] == [
        (1, "09121234567", 75),
        (2, "", 40),
    ]
    assert q.longest_wait_s == 75
    a101, a102, a103 = q.agents
    assert (a101.state, a101.dynamic, a101.calls_taken) == (AgentState.BUSY, True, 4)
    assert a101.last_call == datetime.datetime(2025, 12, 1, 6, 40, tzinfo=datetime.UTC)
    assert (a102.state, a102.paused_reason, a102.last_call) == (AgentState.PAUSED, "lunch", None)
    assert a103.state is AgentState.UNAVAILABLE
    assert q.free_agents == 0
    assert queues["other"].agents == () and queues["other"].longest_wait_s == 0


def test_resume_marker_from_the_agi_path():
    marker = queue_return(
        "ivr124?resume=callback&queue=124-agents&status=EXITWITHKEY"
        "&entered=2026-12-01T06:40:00.250Z&position=3&waited=95"
    )
    assert marker == QueueReturn(
        reason=ReturnReason.CALLBACK,
        queue="124-agents",
        status="EXITWITHKEY",
        entered_at=datetime.datetime(2026, 12, 1, 6, 40, 0, 250000, tzinfo=datetime.UTC),
        position=3,
        waited_s=95,
    )
    empty = queue_return(
        "ivr124?resume=no_agent&queue=124-agents&status=JOINEMPTY"
        "&entered=2026-12-01T06:40:00.250Z&position=&waited="
    )
    assert empty is not None and empty.reason is ReturnReason.NO_AGENT
    assert (empty.position, empty.waited_s) == (None, None)
    odd = queue_return(  # "²" is a digit to str.isdigit but not to int; a count too long
        "ivr124?resume=no_agent&queue=124-agents&status=TIMEOUT&position=%C2%B2&waited=" + "9" * 40
    )
    assert odd is not None and (odd.position, odd.waited_s) == (None, None)


def test_a_new_call_or_an_unknown_marker_is_a_new_call():
    assert queue_return("ivr124") is None
    assert queue_return("") is None
    assert queue_return("ivr124?resume=teleport") is None


def run_ivr(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    return subprocess.run(
        [str(Path(sys.executable).with_name("ivr")), "queue", "status", "--timeout", "1"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_cli_without_ami_settings_says_so():
    out = run_ivr({})
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "ivr queue status: AMI is not configured: set IVR_AMI_USERNAME and IVR_AMI_SECRET"
        " (manager.conf)"
    ]


def test_cli_with_nothing_listening_says_so():
    port = free_port()
    out = run_ivr({"IVR_AMI_USERNAME": "x", "IVR_AMI_SECRET": "y", "IVR_AMI_PORT": str(port)})
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"ivr queue status: cannot ask Asterisk at 127.0.0.1:{port}"
    )
