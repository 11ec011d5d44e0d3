"""One callback from the caller's first key to the bridge, through the real Asterisk.

The production IVR (``AsteriskCalls`` on a FastAGI server, the session, the flow) answers a
caller who dials 124 and presses ``0`` while the only agent is busy; the caller waits in the
queue (``cb-agents``, the production options), presses ``1``, the IVR reads the caller ID back,
``1`` confirms, «درخواست تماس مجدد شما ثبت شد» and the call ends. Then the production
dispatcher (``Dispatcher`` with ``AsteriskDialer``/``AsteriskQueueView`` over its own AMI login,
on the IVR's database) holds the callback's place with a stand-in; the agent becomes free and
takes it, the caller's phone is rung, hears «تماس از سامانه ۱۲۴، بنا به درخواست شما» and is
bridged (AMI BridgeEnter); the outcome is stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import test_callbacks_asterisk as callback_tests
from queue_helpers import ivr_on
from test_callbacks_asterisk import Rig, bridges

from ivr.callbacks.models import CallbackStatus
from ivr.devtools.testpbx import TestPbx
from ivr.flow.menus import AGENT_QUEUE
from ivr.prompts import install_asterisk
from ivr.services import build_services
from ivr.settings import Settings
from ivr.telephony.agi import AgiCall
from ivr.telephony.ami import AmiClient, AmiEvent
from ivr.telephony.asterisk import AsteriskCalls
from ivr.tickets.db import upgrade

NUMBER = "09121234567"
TEST_QUEUE = "124-test"
"""The production queue's options (the exit key included) with no member: the test PBX's
124-agents has an always-answering static member, so nobody would ever wait there."""


class IntoTestQueue:
    """The production AGI handler's call, with its transfer to 124-agents sent to 124-test."""

    def __init__(self, call: AgiCall) -> None:
        self._call = call

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)

    def set_variable(self, name: str, value: str) -> Any:
        if name == "IVR_QUEUE" and value == AGENT_QUEUE:
            value = TEST_QUEUE
        return self._call.set_variable(name, value)


def _agi_plays(stem: str) -> Callable[[AmiEvent], bool]:
    """An AGI command that plays ivr124/<stem> (STREAM FILE or GET DATA)."""

    def match(event: AmiEvent) -> bool:
        command = event.get("Command")
        words = command.split()
        return len(words) > 2 and words[2] == f"ivr124/{stem}"

    return match


def test_zero_queue_one_confirm_then_called_back_and_bridged(
    pbx: TestPbx,
    ami: AmiClient,
    tmp_path: Path,
    prompts_built: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(callback_tests, "QUEUE", TEST_QUEUE)  # the Rig's agents and dialer
    install_asterisk(prompts_built, pbx.sounds_dir)  # what the IVR and the callback play
    settings = Settings(
        storage_dir=tmp_path,
        database_url="",
        prompts_dir=prompts_built,
        agent_queue=TEST_QUEUE,
        agents_always_open=True,  # the flow sends `0` to the queue whatever the wall clock
    )
    upgrade(settings.db_url)
    rig = Rig(pbx, ami, tmp_path / "ivr.db")
    production = AsteriskCalls(build_services(settings), settings)
    phones: list[str] = []
    try:
        rig.talk_times(agent=30, callee=8)  # the agent's first call outlasts the IVR steps
        rig.add_agent("a1")
        with (
            ivr_on(pbx, TEST_QUEUE) as ivr,
            ami.events() as events,
        ):
            ivr.server.handler = lambda call: production(IntoTestQueue(call))  # type: ignore[attr-defined]

            def dial_and_press_0(number: str) -> tuple[str, str]:
                """A caller dials 124 and presses `0` at the main menu; (IVR leg, phone)."""
                called = ami.originate_local(
                    "test-caller", "ivr-124", "124", {"TEST_WAIT": "7200"}, caller_id=number
                )
                menu = _agi_plays("main-menu")
                events.get("AGIExecStart", timeout=20, Uniqueid=called.uniqueid, where=menu)
                phone = ami.channel_name(called.other_uniqueid)
                phones.append(phone)
                ami.play_dtmf(phone, "0", duration_ms=120)
                return called.uniqueid, phone

            # Another caller reached the only agent first: every agent is busy.
            first_leg, _ = dial_and_press_0("09120000001")
            events.get("AgentConnect", timeout=20, Uniqueid=first_leg)

            before = datetime.now(UTC)
            ivr_leg, phone = dial_and_press_0(NUMBER)
            joined = events.get("QueueCallerJoin", timeout=20, Uniqueid=ivr_leg)
            assert joined.get("Queue") == TEST_QUEUE and joined.get("Position") == "1"
            # In the queue: the caller asks to be called back.
            ami.play_dtmf(phone, "1", duration_ms=120)
            events.get("QueueCallerLeave", timeout=10, Uniqueid=ivr_leg)
            # Back in the IVR: the number is read back, `1` confirms it.
            events.get(
                "AGIExecStart",
                timeout=20,
                Uniqueid=ivr_leg,
                where=_agi_plays("callback-confirm_menu"),
            )
            ami.play_dtmf(phone, "1", duration_ms=120)
            events.get(
                "AGIExecStart", timeout=20, Uniqueid=ivr_leg, where=_agi_plays("recall-filed")
            )
            events.get("Hangup", timeout=20, Uniqueid=ivr_leg)  # the IVR ends the call

            (callback,) = rig.service.list()
            assert callback.id is not None
            assert (callback.number, callback.status) == (NUMBER, CallbackStatus.PENDING)
            entered = callback.entered_at.replace(tzinfo=UTC)
            assert before - timedelta(seconds=2) <= entered <= datetime.now(UTC)  # its place

            # The dispatcher holds the place; the agent becomes free and takes the stand-in.
            rig.start_loop()
            rig.wait_status(callback.id, CallbackStatus.QUEUED, timeout=15)
            (attempt,) = rig.service.attempts_of(callback.id)
            assert attempt.external_id is not None
            events.get("AgentConnect", timeout=40, Uniqueid=attempt.external_id)
            rig.wait_status(callback.id, CallbackStatus.DONE, timeout=40)
            other_half_uid = attempt.external_id[:-1] + "1"
            events.get("Hangup", timeout=15, Uniqueid=other_half_uid)
            seen = events.collected()
        names = {e.get("Uniqueid"): e.get("Channel") for e in seen if e.name == "Newchannel"}
        standin, other_half = names[attempt.external_id], names[other_half_uid]
        by_bridge = list(bridges(seen).values())
        (agent_bridge,) = [b for b in by_bridge if standin in b]
        (agent_phone,) = agent_bridge - {standin}
        assert agent_phone.startswith("Local/a1@cb-test-agents-")
        (caller_bridge,) = [b for b in by_bridge if other_half in b]
        (caller_phone,) = caller_bridge - {other_half}
        assert caller_phone.startswith(f"Local/{NUMBER}@cb-callee-answer-")
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
    finally:
        for phone in phones:  # nobody stays on the line for the next test
            with contextlib.suppress(Exception):
                ami.hangup(phone)
        rig.close()
