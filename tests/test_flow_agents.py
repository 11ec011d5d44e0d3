"""The way to a person: agents checked first, the "no agent" menu with the next opening, and the
callback step (key 1 in the queue, Twilio's Leave, key 2 in the "no agent" menu).

Every event goes through ``flow_helpers.Call`` (purity, JSON round trip, catalogue ids, one wait
per answer). The three moments the issue names (a Wednesday evening, a Thursday, the eve of
Nowruz) are checked with the real agents' hours and the seeded calendar at a fixed clock.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flow_helpers import AVAILABLE, CLOSED, LANDLINE, MOBILE, OTHER_MOBILE, Call, prompts_of

from ivr.availability import AgentAvailability
from ivr.calendar import WorkCalendar, seed_holidays
from ivr.calendar.agent_hours import AgentHours, load_agent_hours
from ivr.calendar.store import parse_moment
from ivr.flow.actions import CheckAgents, Gather, HangUp, Play, RequestCallback, Transfer
from ivr.flow.events import AgentsChecked, CallbackFiled, Digits, QueueLeft, Timeout
from ivr.flow.outcomes import StepOutcome

ENTERED = datetime(2024, 5, 15, 9, 12, 30, tzinfo=UTC)
CLOSED_SAID = (
    "no_agent.closed",
    "no_agent.opens",
    "weekday.0",
    "hour.8",
    "no_agent.opens_end",
    "no_agent.menu",
)
FILED = (Play(("recall.filed",)), HangUp())


def no_agent_call(caller: str | None = MOBILE, answer: AgentsChecked = CLOSED) -> Call:
    call = Call(caller, agents=answer)
    call.press("0")
    assert call.node == "no_agent"
    return call


def test_zero_asks_whether_agents_answer_before_the_queue():
    call = Call(agents=None)
    result = call.press("0")
    assert result.actions == (CheckAgents("qom", "twilio"),)
    assert result.outcome is StepOutcome.TRANSFER_REQUESTED  # the key's step keeps the cause
    result = call.send(AVAILABLE)
    assert result.actions == (Play(("agent.transfer",)), Transfer("124-agents"))
    assert result.outcome is StepOutcome.AGENTS_AVAILABLE
    assert call.node == "agent"


def test_outside_the_hours_the_caller_hears_when_agents_answer_then_the_menu():
    call = Call(agents=None)
    call.press("0")
    result = call.send(CLOSED)
    assert result.outcome is StepOutcome.NO_AGENT
    assert result.actions == (Gather(CLOSED_SAID, 1, None, 5),)


def test_inside_the_hours_with_nobody_free_the_caller_hears_so_without_an_opening():
    call = no_agent_call(answer=AgentsChecked(False))
    assert call.said == ("no_agent.busy", "no_agent.menu")


def test_an_opening_more_than_a_week_ahead_is_said_with_its_date():
    nowruz = AgentsChecked(False, datetime(2026, 3, 25, 4, 30, tzinfo=UTC), 7)
    call = no_agent_call(answer=nowruz)
    assert call.said[2:6] == ("weekday.4", "ord.5", "month.1", "hour.8")


def test_an_opening_at_half_past_is_said_with_its_minutes():
    half_past = AgentsChecked(False, datetime(2024, 5, 18, 5, 0, tzinfo=UTC), 1)
    call = no_agent_call(answer=half_past)
    assert call.said[2:6] == ("weekday.0", "hour.8-o", "num.30", "hour.minutes")


def test_no_agent_one_is_a_new_request():
    call = no_agent_call()
    call.press("1")
    assert call.node == "category"


def test_no_agent_star_is_the_main_menu():
    call = no_agent_call()
    call.press("*")
    assert call.node == "main"


def test_no_agent_two_confirms_the_caller_id_then_files_a_callback_from_now():
    call = no_agent_call()
    call.press("2")
    assert call.node == "recall.confirm_caller"
    assert call.said[0] == "callback.your_number"
    result = call.press("1")
    assert result.actions == (RequestCallback(MOBILE, "qom", None),)
    result = call.send(CallbackFiled(12))
    assert result.actions == FILED
    assert result.outcome is StepOutcome.CALLBACK_FILED
    assert call.state.callback is None  # the callback service keeps the number now


@pytest.mark.parametrize(
    ("how", "prompt"), [("9", "retry.too_many_invalid"), (None, "retry.too_many")]
)
def test_three_failures_in_the_no_agent_menu_end_politely_instead_of_looping(how, prompt):
    call = no_agent_call()
    for _ in range(2):
        call.send(Timeout() if how is None else Digits(how))
        assert call.node == "no_agent"
    result = call.send(Timeout() if how is None else Digits(how))
    assert result.actions == (Play((prompt, "no_agent.goodbye")), HangUp())
    assert result.outcome is StepOutcome.GAVE_UP
    assert call.send(Digits("1")).outcome is StepOutcome.IGNORED  # said goodbye: nothing more


def test_the_queue_key_one_confirms_the_number_and_keeps_the_entry_time():
    call = Call(MOBILE, resume="callback", queue_entered_at=ENTERED)
    assert call.node == "recall.confirm_caller"
    assert "greeting" not in call.said  # not greeted like a new call
    assert call.last.outcome is StepOutcome.QUEUE_LEFT
    call.press("2")
    assert call.node == "recall.enter"
    call.press(OTHER_MOBILE)
    assert call.node == "recall.confirm_entered"
    result = call.press("1")
    assert result.actions == (RequestCallback(OTHER_MOBILE, "qom", ENTERED.isoformat()),)
    assert call.send(CallbackFiled(3)).actions == FILED


@pytest.mark.parametrize("caller", [None, "anonymous", "+4930123456"])
def test_an_unusable_caller_id_types_the_number_for_the_callback(caller):
    call = Call(caller, resume="callback", queue_entered_at=ENTERED)
    assert call.node == "recall.enter"
    call.press("0912123")  # too short
    assert call.said[0] == "callback.invalid"
    call.press(LANDLINE)
    call.press("1")
    assert call.actions == (RequestCallback(LANDLINE, "qom", ENTERED.isoformat()),)


def test_a_call_the_queue_gave_back_hears_the_no_agent_menu_even_inside_the_hours():
    call = Call(MOBILE, resume="no_agent", agents=AVAILABLE)
    assert call.node == "no_agent"
    assert call.said == ("no_agent.busy", "no_agent.menu")
    assert call.last.outcome is StepOutcome.STARTED


def test_twilio_leave_goes_to_the_callback_step_with_the_queue_time():
    call = Call(MOBILE)
    call.press("0")
    assert call.node == "agent"
    result = call.send(QueueLeft("leave", ENTERED))
    assert call.node == "recall.confirm_caller"
    assert result.outcome is StepOutcome.QUEUE_LEFT
    call.press("1")
    assert call.actions == (RequestCallback(MOBILE, "qom", ENTERED.isoformat()),)


def test_a_full_twilio_queue_goes_to_the_no_agent_menu():
    call = Call(MOBILE)
    call.press("0")
    call.send(QueueLeft("queue-full"))
    assert call.node == "no_agent"


@pytest.mark.parametrize("result", ["bridged", "hangup"])
def test_a_queue_visit_that_ended_ends_the_call(result):
    call = Call(MOBILE)
    call.press("0")
    assert call.send(QueueLeft(result)).actions == (HangUp(),)
    assert call.state.ended


def test_three_failures_elsewhere_check_the_agents_too():
    call = Call(MOBILE, agents=CLOSED)
    for _ in range(3):
        call.press("9")
    assert call.node == "no_agent"
    assert prompts_of(call.actions)[0] == "retry.too_many_invalid"
    assert call.last.outcome is StepOutcome.TRANSFER_AFTER_FAILURES


# --- the next opening at three moments, with the real hours and the seeded calendar -------------

AVAILABILITY = AgentAvailability(
    AgentHours(load_agent_hours(), WorkCalendar(seed_holidays(1404) + seed_holidays(1405)))
)


@pytest.mark.parametrize(
    ("moment", "said"),
    [
        # Wednesday 1405/02/23 evening: Thursday closed, Friday off → Saturday at eight.
        ("1405/02/23 18:30", ("weekday.0", "hour.8")),
        # Thursday 1405/02/24 morning: closed by the default decree → Saturday at eight.
        ("1405/02/24 09:00", ("weekday.0", "hour.8")),
        # The eve of Nowruz (Wednesday 1404/12/27 17:00): back on Wednesday 5 Farvardin,
        # a week ahead, so its date is said too.
        ("1404/12/27 17:00", ("weekday.4", "ord.5", "month.1", "hour.8")),
    ],
    ids=["wednesday-evening", "thursday", "nowruz-eve"],
)
def test_the_next_opening_is_spoken_right(moment, said):
    answer = AVAILABILITY.check("qom", "twilio", parse_moment(moment))
    assert not answer.available
    call = no_agent_call(answer=answer)
    assert call.said == (
        "no_agent.closed",
        "no_agent.opens",
        *said,
        "no_agent.opens_end",
        "no_agent.menu",
    )


def test_inside_the_hours_agents_are_available_unless_the_pbx_says_nobody_is_logged_in():
    moment = parse_moment("1405/02/23 10:00")
    assert AVAILABILITY.check("qom", "twilio", moment) == AgentsChecked(True)
    hours = AVAILABILITY.hours
    nobody = AgentAvailability(hours, {"asterisk": lambda: False})
    assert nobody.check("qom", "asterisk", moment) == AgentsChecked(False, None)
    assert nobody.check("qom", "twilio", moment) == AgentsChecked(True)  # Twilio: hours only
    unknown = AgentAvailability(hours, {"asterisk": lambda: None})
    assert unknown.check("qom", "asterisk", moment) == AgentsChecked(True)


# --- through the session, on a real database -----------------------------------------------------


def test_a_callback_from_the_queue_is_filed_with_its_entry_time_and_recorded(tmp_path):
    from sqlmodel import Session, select

    from ivr.callbacks.models import Callback
    from ivr.flow.resume import QueueReturn, ReturnReason
    from ivr.services import build_services
    from ivr.session import CallSession
    from ivr.settings import Settings
    from ivr.tickets.models import Call as CallRow

    settings = Settings(storage_dir=tmp_path, database_url="")
    services = build_services(settings)
    back = QueueReturn(ReturnReason.CALLBACK, "124-agents", "EXITWITHKEY", ENTERED, 3, 95)
    ids = []
    for external_id in ("pbx-1", "pbx-2"):  # the same number asks twice: one callback
        session, actions = CallSession.start(
            services,
            channel="asterisk",
            external_id=external_id,
            caller=MOBILE,
            called="124",
            default_province="qom",
            resume=back,
        )
        assert prompts_of(actions)[0] == "callback.your_number"
        assert session.feed(Digits("1")) == FILED
        ids.append(session.call_id)
    engine = services.calls.engine
    with Session(engine) as db:
        callbacks = db.exec(select(Callback)).all()
        assert len(callbacks) == 1
        assert callbacks[0].number == MOBILE and callbacks[0].status == "pending"
        assert callbacks[0].entered_at.replace(tzinfo=UTC) == ENTERED
        assert callbacks[0].call_id == ids[0]
        row = db.get(CallRow, ids[1])
        assert (row.outcome, row.ended_by) == ("callback", "ivr")
