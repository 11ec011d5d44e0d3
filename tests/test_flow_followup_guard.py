"""The follow-up guessing limit in the engine: where the guard's answers lead (pure, no DB).

The session's side (counting in the database) is in tests/test_followup_guard.py; whole Twilio
calls hitting the limit in tests/test_twilio_followup_guard.py.
"""

from __future__ import annotations

from flow_helpers import AVAILABLE, CLOSED, MOBILE, OTHER_MOBILE, TRACKING, Call, ticket

from ivr.flow import advance
from ivr.flow.actions import (
    CheckAgents,
    CheckFollowup,
    CountFailedFollowup,
    Gather,
    Play,
    Transfer,
)
from ivr.flow.events import FollowupChecked, TicketLookedUp
from ivr.flow.menus import AGENT_QUEUE, MENU_TIMEOUT_S
from ivr.flow.outcomes import StepOutcome


def looked_up(caller_id: str | None = MOBILE, found: bool = True) -> Call:
    """A caller who typed TRACKING; the ticket's callback number is OTHER_MOBILE's (or none)."""
    call = Call(caller_id, agents=None, tries_left=None)
    call.run(["2", TRACKING])
    call.send(TicketLookedUp(ticket(callback=OTHER_MOBILE) if found else None))
    return call


def test_the_guard_is_asked_before_the_last_four_with_the_callers_national_number():
    call = looked_up("+989121234567")
    assert call.node == "followup.guard"
    assert call.actions == (CheckFollowup(TRACKING, MOBILE),)
    call.send(FollowupChecked(True))
    assert call.node == "followup.verify"
    assert call.actions == (Gather(("followup.verify",), 4 + 1, "#", MENU_TIMEOUT_S),)
    assert call.last.outcome is StepOutcome.TRIES_LEFT


def test_a_caller_without_caller_id_is_counted_as_such():
    call = looked_up(None)
    assert call.actions == (CheckFollowup(TRACKING, None),)


def test_the_tickets_own_number_is_never_asked_about_tries():
    call = Call(OTHER_MOBILE, tries_left=None)
    call.run(["2", TRACKING])
    call.send(TicketLookedUp(ticket(callback=OTHER_MOBILE)))
    assert call.node == "followup.report"
    assert not any(isinstance(a, CheckFollowup) for a in call.all_actions())


def test_past_the_limit_the_caller_hears_why_and_goes_to_an_agent():
    call = looked_up()
    call.send(FollowupChecked(False))
    assert call.node == "agent.check"
    assert call.last.outcome is StepOutcome.TOO_MANY_TRIES
    assert call.actions == (Play(("followup.too_many_tries",)), CheckAgents("qom", "twilio"))
    assert call.state.ticket is None and call.state.tracking is None  # nothing kept
    call.send(CLOSED)  # nobody answers now: the "no agent" menu, which ends politely
    assert call.node == "no_agent"


def test_the_blocked_caller_reaches_the_queue_when_agents_answer():
    call = looked_up()
    call.agents = AVAILABLE  # the session asks at once, as in a real call
    call.send(FollowupChecked(False))
    assert call.actions == (
        Play(("followup.too_many_tries", "agent.transfer")),
        Transfer(AGENT_QUEUE),
    )


def test_a_wrong_last_four_is_counted_then_asked_again():
    call = looked_up()
    call.send(FollowupChecked(True))
    call.press("0000")
    assert call.node == "followup.refused"
    assert call.actions == (CountFailedFollowup(TRACKING, MOBILE, found=True),)
    assert call.last.outcome is StepOutcome.REJECTED
    call.send(FollowupChecked(True))
    assert call.node == "followup.verify"
    assert call.actions == (
        Gather(("followup.mismatch", "followup.verify"), 4 + 1, "#", MENU_TIMEOUT_S),
    )
    assert call.last.outcome is StepOutcome.TRIES_LEFT
    assert call.state.failures == 1


def test_a_number_naming_no_ticket_is_counted_as_not_found_and_sounds_the_same():
    missing, found = looked_up(found=False), looked_up()
    for call in (missing, found):
        call.send(FollowupChecked(True))
        call.press("1234")
    assert missing.actions == (CountFailedFollowup(TRACKING, MOBILE, found=False),)
    assert found.actions == (CountFailedFollowup(TRACKING, MOBILE, found=True),)
    for call in (missing, found):
        call.send(FollowupChecked(True))
    assert missing.said == found.said == ("followup.mismatch", "followup.verify")


def test_the_wrong_answer_that_uses_up_the_tries_ends_the_follow_up():
    call = looked_up()
    call.send(FollowupChecked(True))
    call.press("0000")
    call.send(FollowupChecked(False))
    assert call.node == "agent.check"
    assert call.said == ("followup.too_many_tries",)
    assert call.last.outcome is StepOutcome.TOO_MANY_TRIES
    assert call.state.ticket is None


def test_three_wrong_in_a_row_still_go_to_an_agent_with_their_own_words():
    call = looked_up()
    call.send(FollowupChecked(True))
    for digits in ("0000", "1111"):
        call.press(digits)
        call.send(FollowupChecked(True))
    call.press("9999")
    call.send(FollowupChecked(True))
    assert call.node == "agent.check"
    assert call.said == ("retry.too_many_mismatch",)
    assert call.last.outcome is StepOutcome.TRANSFER_AFTER_FAILURES


def test_the_right_last_four_after_a_wrong_one_opens_the_ticket():
    call = looked_up()
    call.send(FollowupChecked(True))
    call.press("0000")
    call.send(FollowupChecked(True))
    call.press(OTHER_MOBILE[-4:])
    assert call.node == "followup.report"


def test_silence_at_the_last_four_is_not_a_guess():
    call = looked_up()
    call.send(FollowupChecked(True))
    call.timeout()
    assert call.node == "followup.verify"
    assert not any(isinstance(a, CountFailedFollowup) for a in call.all_actions())


def test_a_stray_event_at_the_guard_is_ignored():
    call = looked_up()
    result = advance(call.state, TicketLookedUp(None))
    assert result.actions == () and result.outcome is StepOutcome.IGNORED
    assert result.state == call.state
