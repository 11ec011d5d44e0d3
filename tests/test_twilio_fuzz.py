"""Property-based: any signed form on any Twilio route of a real ``ivr serve`` gets a defined
answer (TwiML, 204 or 400), never a 500, and the server logs no unhandled exception.

The number of cases that ran is printed at the end of the module (``pytest -s``) and checked.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from twilio_phone import parse_twiml

if TYPE_CHECKING:
    from conftest import IvrServer

ROUTES = (
    "/twilio/voice",
    "/twilio/gather",
    "/twilio/timeout",
    "/twilio/recorded",
    "/twilio/status",
    "/twilio/queue/wait",
    "/twilio/queue/key",
    "/twilio/queue/done",
    "/twilio/queue/callback",
    "/twilio/queue/callback/done",
    "/twilio/queue/callback/status",
    "/twilio/agent",
    "/twilio/agent/pin",
    "/twilio/agent/next",
    "/twilio/agent/status",
    "/twilio/agent/connect",
)
FIELDS = (
    "CallSid", "AccountSid", "From", "To", "Caller", "Called", "CallStatus", "Digits",
    "RecordingUrl", "RecordingSid", "RecordingDuration", "ParentCallSid", "Direction",
    "QueuePosition", "AvgQueueTime", "QueueTime", "QueueResult", "QueueSid", "CallDuration",
)  # fmt: skip
QUERIES = ("turn", "attempt", "agent")
"""What the server's own TwiML URLs carry: a turn, a callback's attempt, an agent's id."""
RAN = {"cases": 0, "by_status": {}}
CASES = 600

values = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="0123456789*#", max_size=70),
    st.sampled_from(["", "1", "#", "hangup", "completed", "in-progress", "CA" + "a" * 32]),
    st.text(alphabet="abcdef0123456789", min_size=30, max_size=34).map(lambda t: "CA" + t),
    st.just("x" * 5000),
)
forms = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=70)), values, max_size=14
)
numbers = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=10**7).map(str),
    st.text(max_size=8),
    st.sampled_from(["²", "١٢", "۳", "9" * 25]),  # digits to isdigit, some to int; past a row id
)


@pytest.fixture(scope="module")
def client(server: IvrServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as made:
        yield made
    print(f"\nTwilio route fuzzing: {RAN['cases']} cases, answers by status {RAN['by_status']}")
    assert RAN["cases"] >= CASES


@settings(max_examples=CASES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    route=st.sampled_from(ROUTES), form=forms, query=st.sampled_from(QUERIES), number=numbers,
    known=st.booleans(),
)  # fmt: skip
def test_any_signed_form_gets_a_defined_answer(
    server: IvrServer, client: httpx.Client, route: str, form: dict[str, str], query: str,
    number: str | None, known: bool,
) -> None:  # fmt: skip
    if known:  # half the cases for the call the other half keeps reaching
        form = form | {"CallSid": "CA" + "f" * 32}
    url = server.base_url + route
    if number is not None:
        url += "?" + urllib.parse.urlencode({query: number})
    assert server.token is not None
    signature = RequestValidator(server.token).compute_signature(url, form)
    answer = client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    RAN["cases"] += 1
    RAN["by_status"][answer.status_code] = RAN["by_status"].get(answer.status_code, 0) + 1
    assert answer.status_code in (200, 204, 400), (answer.status_code, answer.text[:300])
    if answer.status_code == 200:
        assert answer.headers["content-type"].startswith("application/xml")
        parse_twiml(answer.text)  # TwiML Twilio accepts (an empty one for a call that ended)


def test_the_server_logged_no_unhandled_error(server: IvrServer, client: httpx.Client) -> None:
    assert server.alive()
    assert "Exception in ASGI application" not in server.stderr()
