"""dialplans/extensions.conf and queues.conf as an operator would include them: what the
ivr-124 context does with the channel variables the IVR sets, and without the IVR."""

from __future__ import annotations

import pytest

from ivr.telephony.agi import AgiCall


def test_transfer_puts_the_caller_in_the_agents_queue(agi, ami, dial):
    def handler(call: AgiCall) -> None:
        call.set_variable("IVR_ACTION", "transfer")

    agi.serve(handler)
    with ami.events("QueueCallerJoin", "AgentConnect", "Hangup") as events:
        d = dial()
        _call, error = agi.finished()
        assert error is None, error
        ivr_leg = d.originated.uniqueid
        joined = events.get("QueueCallerJoin", timeout=10, Uniqueid=ivr_leg)
        assert joined["Queue"] == "124-agents"
        connected = events.get("AgentConnect", timeout=10, Uniqueid=ivr_leg)
        assert connected["MemberName"] == "Test Agent"
        d.hang_up()
        events.get("Hangup", timeout=10, Uniqueid=ivr_leg)


def test_the_ivr_may_name_another_queue(agi, ami, dial):
    scripts: list[str] = []

    def handler(call: AgiCall) -> None:
        scripts.append(call.script)
        if "resume=" in call.script:  # back from the queue: the IVR ends the call
            call.set_variable("IVR_ACTION", "hangup")
            return
        call.set_variable("IVR_ACTION", "transfer")
        call.set_variable("IVR_QUEUE", "no-such-queue")

    agi.serve(handler)
    with ami.events("VarSet", "QueueCallerJoin", "Hangup") as events:
        d = dial()
        agi.finished()
        # Queue() on an unknown queue returns at once (QUEUESTATUS=UNKNOWN); the call goes
        # back to the IVR, which ends it.
        status = events.get(
            "VarSet", timeout=10, Uniqueid=d.originated.uniqueid, Variable="QUEUESTATUS"
        )
        assert status["Value"] == "UNKNOWN"
        events.get("Hangup", timeout=10, Uniqueid=d.originated.uniqueid)
    assert scripts[0] == "ivr124"
    assert scripts[1].startswith("ivr124?resume=no_agent&queue=no-such-queue&status=UNKNOWN&")


def test_without_a_transfer_the_call_ends(agi, ami, dial):
    agi.serve(lambda call: call.set_variable("IVR_ACTION", "hangup"))
    with ami.events("QueueCallerJoin", "Hangup") as events:
        d = dial()
        agi.finished()
        events.get("Hangup", timeout=10, Uniqueid=d.originated.uniqueid)
        assert events.collected("QueueCallerJoin") == []


def test_an_unreachable_ivr_sends_callers_to_the_agents(ami, dial):
    # No FastAGI server on the port: AGI() fails with AGISTATUS=FAILURE and no IVR_ACTION.
    with ami.events("QueueCallerJoin", "Hangup") as events:
        d = dial()
        joined = events.get("QueueCallerJoin", timeout=10, Uniqueid=d.originated.uniqueid)
        assert joined["Queue"] == "124-agents"
        d.hang_up()
        events.get("Hangup", timeout=10, Uniqueid=d.originated.uniqueid)


@pytest.mark.parametrize(
    ("exten", "dialled"),
    [
        ("086124", "086124"),  # 124 with an area code, sent on with Goto(ivr-124,${EXTEN},1)
        ("+9825124", "+9825124"),  # an E.164 number from a trunk
        ("124", "124"),
        ("s", "124"),  # no dialled number: what the jump to 124 leaves
    ],
)
def test_the_dialled_number_reaches_the_ivr_as_its_argument(agi, dial, exten, dialled):
    """Every way into ivr-124 ends at its one copy of the steps (agi_extension 124) and the
    IVR still learns what was dialled: the AGI's first argument."""
    seen: dict[str, object] = {}

    def handler(call: AgiCall) -> None:
        seen.update(args=call.args, extension=call.extension)
        call.set_variable("IVR_ACTION", "hangup")

    agi.serve(handler)
    dial(exten=exten)
    _call, error = agi.finished()
    assert error is None, error
    assert seen == {"args": [dialled], "extension": "124"}
