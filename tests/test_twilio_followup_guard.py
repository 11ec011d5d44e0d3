"""The follow-up guessing limit through a real ``ivr serve``, called as Twilio calls (signed).

One number guesses the last 4 digits of a ticket over several calls until the ticket is closed
to the IVR; another number then gets no try at all, the ticket's own number still hears its
report, and the guesser is stopped on other tickets too once its own tries are used up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from twilio_phone import Turn, TwilioPhone

if TYPE_CHECKING:
    from conftest import CallHelpers, IvrServer

OWNER = "+989121234567"
GUESSER = "+989351112233"
ANOTHER = "+989127654321"
NEW_REQUEST = ("1", "1", "2", "2", "1", "#", "1")
PER_TICKET, PER_CALLER = 3, 4


@pytest.fixture
def guarded(start_server: Callable[..., IvrServer]) -> IvrServer:
    """A server of its own, with low limits (the other modules' servers set them high)."""
    return start_server(
        followup_tries_per_ticket=str(PER_TICKET), followup_tries_per_caller=str(PER_CALLER)
    )


@pytest.fixture
def phones(guarded: IvrServer, recording_url: str) -> Iterator[Callable[[str], TwilioPhone]]:
    made: list[TwilioPhone] = []

    def make(number: str) -> TwilioPhone:
        phone = TwilioPhone(
            guarded.base_url, guarded.token, from_number=number, recording_url=recording_url
        )
        made.append(phone)
        return phone

    yield make
    for phone in made:
        phone.close()


def register(phones: Callable[[str], TwilioPhone], calls: CallHelpers) -> str:
    phone = phones(OWNER)
    phone.dial()
    tracking = calls.tracking(calls.drive(phone, NEW_REQUEST).plays)
    phone.hangup()
    return tracking


def follow_up(phone: TwilioPhone, calls: CallHelpers, tracking: str) -> Turn:
    phone.dial()
    assert calls.stems(phone.press("2").plays) == ["followup-enter"]
    return calls.drive(phone, [tracking + "#"])


def failed_tries(server: IvrServer) -> list[tuple]:
    return [tuple(r) for r in server.sql("SELECT tracking, caller, kind FROM followup_try")]


def test_a_guesser_closes_the_ticket_and_another_number_gets_no_try(
    guarded: IvrServer, phones: Callable[[str], TwilioPhone], calls: CallHelpers
) -> None:
    tracking = register(phones, calls)

    first = phones(GUESSER)
    assert calls.stems(follow_up(first, calls, tracking).plays) == ["followup-verify"]
    assert calls.stems(first.press("1111#").plays) == ["followup-mismatch", "followup-verify"]
    assert calls.stems(first.press("2222#").plays) == ["followup-mismatch", "followup-verify"]
    first.hangup()

    second = phones(GUESSER)  # a new call: the in-a-row count starts again, the limit does not
    assert calls.stems(follow_up(second, calls, tracking).plays) == ["followup-verify"]
    stopped = second.press("3333#")  # the ticket's third failed try
    assert calls.stems(stopped.plays) == ["followup-too_many_tries", "agent-transfer"]
    assert stopped.waiting_for == "enqueue"
    second.hangup()

    other = phones(ANOTHER)  # a fresh number: the ticket is only open through an agent
    refused = follow_up(other, calls, tracking)
    assert calls.stems(refused.plays) == ["followup-too_many_tries", "agent-transfer"]
    assert refused.waiting_for == "enqueue"
    other.hangup()

    owner = phones(OWNER)  # the ticket's own number is never asked, so never refused
    report = follow_up(owner, calls, tracking)
    assert calls.stems(report.plays)[0] == "followup-registered_on"
    owner.hangup()

    assert failed_tries(guarded) == [(tracking, "09351112233", "mismatch")] * PER_TICKET
    log = guarded.stderr()
    assert f"ticket {tracking} has {PER_TICKET} failed tries" in log
    assert "refused a follow-up: ticket" in log and "caller 09127654321" in log  # named
    refused_steps = guarded.sql(
        "SELECT s.node, s.outcome FROM call_step s JOIN call c ON c.id = s.call_id"
        " WHERE c.external_id = ? ORDER BY s.id",
        (other.call_sid,),
    )
    assert ("followup.guard", "too_many_tries") in [tuple(r) for r in refused_steps]
    saved = json.loads(
        guarded.sql("SELECT state FROM call WHERE external_id = ?", (other.call_sid,))[0][0]
    )
    assert saved["ticket"] is None and saved["tracking"] is None


def test_the_guesser_is_then_stopped_on_every_ticket(
    guarded: IvrServer, phones: Callable[[str], TwilioPhone], calls: CallHelpers
) -> None:
    first, second = register(phones, calls), register(phones, calls)
    phone = phones(GUESSER)
    follow_up(phone, calls, first)
    calls.drive(phone, ["1111#", "2222#"])
    phone.hangup()
    phone = phones(GUESSER)
    assert calls.stems(follow_up(phone, calls, second).plays) == ["followup-verify"]
    assert calls.stems(phone.press("3333#").plays) == ["followup-mismatch", "followup-verify"]
    last = phone.press("4444#")  # the guesser's PER_CALLER-th failed try; the ticket's 2nd
    assert calls.stems(last.plays) == ["followup-too_many_tries", "agent-transfer"]
    phone.hangup()
    again = phones(GUESSER)
    assert calls.stems(follow_up(again, calls, second).plays) == [
        "followup-too_many_tries",
        "agent-transfer",
    ]
    # Another number still gets its tries on that ticket (two failed of three).
    other = phones(ANOTHER)
    assert calls.stems(follow_up(other, calls, second).plays) == ["followup-verify"]
    assert len(failed_tries(guarded)) == PER_CALLER
