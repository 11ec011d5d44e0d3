"""Agents as users (the real ``ivr users`` CLI) and the agents' Twilio line through a real
``ivr serve``: an unknown number is refused, a wrong PIN three times ends the call, the right
PIN dials the queue, and the connect URL (played to the waiting caller) tells them an agent
answers."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from argon2 import PasswordHasher
from desk_helpers import post_login
from desk_sse import SseReader
from twilio_phone import TwilioPhone, parse_twiml

if TYPE_CHECKING:
    from conftest import IvrServer

AGENT_PHONE = "+989121110000"
AGENT_NATIONAL = "09121110000"
PIN = "4826"
CALLER = "+989351234567"


IVR = str(Path(sys.executable).with_name("ivr"))
"""The venv's console script (as conftest finds it)."""


def users(
    server: IvrServer, *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The real ``ivr users`` CLI on the server's storage; ``stdin`` None: no input at all."""
    done = subprocess.run(
        [IVR, "users", *args],
        env=server.env,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def agent(server: IvrServer) -> str:
    users(server, "add", "sara", "--role", "agent", "--province", "qom",
          "--extension", "PJSIP/201", "--phone", "0912 111 0000", "--password-stdin",
          stdin="correct horse battery\n")  # fmt: skip
    users(server, "pin", "sara", "--pin-stdin", stdin="۴۸۲۶\n")  # Persian digits typed
    return "sara"


@pytest.fixture
def phone(server: IvrServer, agent: str) -> Iterator[TwilioPhone]:
    with TwilioPhone(server.base_url, server.token, from_number=AGENT_PHONE) as p:
        yield p


def stems(verbs: list[ET.Element]) -> list[str]:
    out = []
    for verb in verbs:
        for play in [verb, *verb] if verb.tag == "Gather" else [verb]:
            if play.tag == "Play":
                path = urllib.parse.urlsplit((play.text or "").strip()).path
                out.append(path.rsplit("/", 1)[-1].removesuffix(".wav"))
    return out


def post(phone: TwilioPhone, url: str, **params: str) -> list[ET.Element]:
    response = phone._request(phone.url_for(url), "POST", params)
    assert response.status_code == 200, response.text
    return parse_twiml(response.text, url)


# --- the users commands ------------------------------------------------------------------------


def test_users_are_stored_with_argon2id_hashes(server: IvrServer, agent: str) -> None:
    rows = server.sql("SELECT * FROM app_user WHERE name = ?", (agent,))
    assert len(rows) == 1
    row = rows[0]
    assert (row["role"], row["province"], row["extension"], row["phone"]) == (
        "agent", "qom", "PJSIP/201", AGENT_NATIONAL,
    )  # fmt: skip
    assert row["active"] == 1
    assert row["password_hash"].startswith("$argon2id$")
    assert row["pin_hash"].startswith("$argon2id$") and PIN not in row["pin_hash"]
    assert PasswordHasher().verify(row["password_hash"], "correct horse battery")
    assert PasswordHasher().verify(row["pin_hash"], PIN)
    listed = users(server, "list").stdout
    assert "sara" in listed and "PJSIP/201" in listed and AGENT_NATIONAL in listed


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "x1", "--role", "boss", "--password-stdin"), "longenough\n", "unknown role"),
        (("add", "x2", "--role", "agent", "--password-stdin"), "longenough\n", "--province"),
        (
            ("add", "x3", "--role", "agent", "--province", "nowhere", "--password-stdin"),
            "longenough\n",
            "unknown province",
        ),
        (("add", "x4", "--role", "admin", "--password-stdin"), "short\n", "at least 8"),
        (
            ("add", "x5", "--role", "admin", "--phone", "12345", "--password-stdin"),
            "longenough\n",
            "not an Iranian phone number",
        ),
        (("add", "Bad Name", "--role", "admin", "--password-stdin"), "longenough\n", "user name"),
        (("add", "sara", "--role", "admin", "--password-stdin"), "longenough\n", "already"),
        (("add", "x6", "--role", "admin"), "", "--password-stdin"),  # no terminal to ask on
        (("pin", "sara", "--pin-stdin"), "12\n", "4 to 8 digits"),
        (("pin", "sara", "--pin-stdin"), "12ab\n", "4 to 8 digits"),
        (("pin", "nobody", "--pin-stdin"), "1234\n", "no user"),
        (("disable", "nobody"), None, "no user"),
        (("password", "sara", "--password-stdin"), "short\n", "at least 8"),
    ],
)
def test_users_wrong_input_is_one_line(
    server: IvrServer, agent: str, args: tuple[str, ...], stdin: str | None, message: str
) -> None:
    done = users(server, *args, stdin=stdin, check=False)
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not server.sql("SELECT 1 FROM app_user WHERE name LIKE 'x%'")


def test_password_change_and_disable(server: IvrServer) -> None:
    users(server, "add", "omid", "--role", "national", "--password-stdin", stdin="first-secret\n")
    before = server.sql("SELECT password_hash FROM app_user WHERE name = 'omid'")[0][0]
    users(server, "password", "omid", "--password-stdin", stdin="second-secret\n")
    after = server.sql("SELECT password_hash FROM app_user WHERE name = 'omid'")[0][0]
    assert before != after and PasswordHasher().verify(after, "second-secret")
    users(server, "disable", "omid")
    assert server.sql("SELECT active FROM app_user WHERE name = 'omid'")[0][0] == 0
    assert "(disabled)" in users(server, "list").stdout


# --- the agents' line --------------------------------------------------------------------------


def test_unknown_number_is_refused(server: IvrServer, agent: str) -> None:
    with TwilioPhone(server.base_url, server.token, from_number=CALLER) as stranger:
        turn = stranger.dial("/twilio/agent")
    assert [s.rsplit("/", 1)[-1] for s in turn.plays] == ["agent_line-refused.wav"]
    assert turn.waiting_for == "hangup"


def test_right_pin_dials_the_queue(phone: TwilioPhone, server: IvrServer) -> None:
    first = phone.dial("/twilio/agent")
    assert first.waiting_for == "gather" and first.gather["finishOnKey"] == "#"
    assert [s.rsplit("/", 1)[-1] for s in first.plays] == ["agent_line-pin.wav"]
    turn = phone.press(PIN + "#")
    assert turn.waiting_for == "dial"
    dial = ET.fromstring(turn.xml).find("Dial")
    assert dial is not None
    queue = dial.find("Queue")
    assert queue is not None and queue.text == "124-agents"
    sara = server.sql("SELECT id FROM app_user WHERE name = 'sara'")[0][0]
    assert queue.get("url") == f"{server.base_url}/twilio/agent/connect?agent={sara}"


def test_wrong_pin_three_times_ends_the_call(phone: TwilioPhone) -> None:
    phone.dial("/twilio/agent")
    second = phone.press("1111#")
    assert second.waiting_for == "gather"
    assert [s.rsplit("/", 1)[-1] for s in second.plays] == [
        "agent_line-wrong_pin.wav",
        "agent_line-pin.wav",
    ]
    assert phone.press("2222#").waiting_for == "gather"
    last = phone.press("3333#")
    assert last.waiting_for == "hangup"
    assert "Dial" not in last.xml
    assert [s.rsplit("/", 1)[-1] for s in last.plays] == [
        "agent_line-wrong_pin.wav",
        "agent_line-goodbye.wav",
    ]


def test_the_third_try_may_be_right(phone: TwilioPhone) -> None:
    phone.dial("/twilio/agent")
    phone.press("1111#")
    phone.press("2222#")
    assert phone.press(PIN + "#").waiting_for == "dial"


def test_disabled_agent_is_refused(server: IvrServer) -> None:
    users(server, "add", "reza", "--role", "agent", "--province", "qom", "--phone",
          "09121119999", "--password-stdin", stdin="longenough\n")  # fmt: skip
    users(server, "pin", "reza", "--pin-stdin", stdin="9999\n")
    users(server, "disable", "reza")
    with TwilioPhone(server.base_url, server.token, from_number="+989121119999") as gone:
        turn = gone.dial("/twilio/agent")
    assert [s.rsplit("/", 1)[-1] for s in turn.plays] == ["agent_line-refused.wav"]


def test_connect_tells_the_waiting_caller_an_agent_answers(server: IvrServer, agent: str) -> None:
    """Twilio runs the ``<Queue url>`` on the queued caller's leg (CallSid is theirs): they hear
    that an agent answers, never their own number read back."""
    with TwilioPhone(server.base_url, server.token, from_number=CALLER) as caller:
        caller.dial()
        assert caller.press("0").waiting_for == "enqueue"
        verbs = post(caller, "/twilio/agent/connect", CallSid=caller.call_sid)
    assert stems(verbs) == ["agent_line-connected"]


def test_connect_for_an_unknown_call(server: IvrServer, agent: str) -> None:
    with TwilioPhone(server.base_url, server.token, from_number="anonymous") as line:
        verbs = post(line, "/twilio/agent/connect", CallSid="CA" + "9" * 32)
    assert stems(verbs) == ["agent_line-connected"]


# --- the agents' line as the callback dispatcher sees it -----------------------------------------


def line_rows(server: IvrServer, call_sid: str) -> list[tuple[str, str, str | None]]:
    rows = server.sql("SELECT * FROM agent_line WHERE call_sid = ?", (call_sid,))
    return [(r["agent"], r["state"], r["caller_sid"]) for r in rows]


def test_the_line_knows_when_an_agent_is_free_talking_or_gone(
    phone: TwilioPhone, server: IvrServer
) -> None:
    phone.dial("/twilio/agent")
    assert line_rows(server, phone.call_sid) == []  # no PIN yet: not on the line
    turn = phone.press(PIN + "#")
    dial = ET.fromstring(turn.xml).find("Dial")
    assert dial is not None
    assert dial.get("action") == f"{server.base_url}/twilio/agent/next"
    assert dial.get("timeout") == "600"
    assert line_rows(server, phone.call_sid) == [("sara", "idle", None)]
    # A caller is dequeued to the agent: Twilio's connect request names both calls.
    caller_sid = "CA" + "7" * 32
    post(phone, "/twilio/agent/connect", CallSid=caller_sid, DequeingCallSid=phone.call_sid)
    assert line_rows(server, phone.call_sid) == [("sara", "talking", caller_sid)]
    # That call ends; the Dial's action dials the queue again and the agent is free again.
    verbs = post(phone, "/twilio/agent/next", DialCallStatus="completed", CallStatus="in-progress")
    assert verbs[0].tag == "Dial"
    assert verbs[0].find("Queue") is not None
    assert line_rows(server, phone.call_sid) == [("sara", "idle", None)]
    # The agent hangs up: the agents' number's status callback takes them off the line.
    response = phone._request(
        phone.url_for("/twilio/agent/status"), "POST", {"CallStatus": "completed"}
    )
    assert response.status_code == 204
    assert line_rows(server, phone.call_sid) == []


def test_an_agent_hanging_up_during_the_dial_leaves_the_line(
    phone: TwilioPhone, server: IvrServer
) -> None:
    phone.dial("/twilio/agent")
    phone.press(PIN + "#")
    assert line_rows(server, phone.call_sid) == [("sara", "idle", None)]
    verbs = post(phone, "/twilio/agent/next", DialCallStatus="no-answer", CallStatus="completed")
    assert "Dial" not in [v.tag for v in verbs]
    assert line_rows(server, phone.call_sid) == []


def test_line_webhooks_must_be_signed(phone: TwilioPhone) -> None:
    for path in ("/twilio/agent/next", "/twilio/agent/status"):
        assert phone.post_raw(path, {"CallSid": phone.call_sid}, "bad").status_code == 403


def desk_client(server: IvrServer, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=server.base_url, timeout=30)
    assert post_login(client, name, password).status_code == 303
    return client


def test_the_connect_moment_pops_the_call_up_on_that_agents_desk(
    server: IvrServer, agent: str
) -> None:
    """The agent who typed the PIN is named in the connect URL Twilio signs; when Twilio
    fetches it (the call connects), that agent's open desk — and only that agent's — gets the
    screen pop over /desk/events, within a second."""
    users(server, "add", "leila", "--role", "agent", "--province", "qom", "--phone",
          "09121112222", "--password-stdin", stdin="longenough\n")  # fmt: skip
    sara_desk = desk_client(server, agent, "correct horse battery")
    leila_desk = desk_client(server, "leila", "longenough")
    with (
        SseReader(sara_desk) as sara_pops,
        SseReader(leila_desk) as leila_pops,
        TwilioPhone(server.base_url, server.token, from_number=CALLER) as caller,
    ):
        caller.dial()
        assert caller.press("0").waiting_for == "enqueue"
        with TwilioPhone(server.base_url, server.token, from_number=AGENT_PHONE) as line:
            line.dial("/twilio/agent")
            turn = line.press(PIN + "#")
            queue = ET.fromstring(turn.xml).find("Dial/Queue")
            assert queue is not None
            connect = queue.get("url", "").removeprefix(server.base_url)
            asked = time.monotonic()
            verbs = post(line, connect, CallSid=caller.call_sid)
        pop = sara_pops.next(timeout=2.0)
        assert pop.received - asked < 1.0
        assert (pop.data["channel"], pop.data["external_id"]) == ("twilio", caller.call_sid)
        assert pop.data["number"] == "09351234567"
        # This call's path: the caller pressed 0 for a person.
        assert "transfer_requested" in [s["outcome"] for s in pop.data["steps"]]
        assert leila_pops.nothing(within=0.8)
    assert stems(verbs) == ["agent_line-connected"]
    pops = server.sql(
        "SELECT u.name, e.channel, e.external_id FROM desk_event e "
        "JOIN app_user u ON u.id = e.user_id"
    )
    assert [tuple(p) for p in pops] == [("sara", "twilio", caller.call_sid)]


def test_a_twilio_queue_call_is_recorded_as_the_reports_count_it(
    server: IvrServer, agent: str
) -> None:
    """Who answered (from the connect URL), how long they talked (the agent's Dial action,
    DialCallDuration) and the queue's result in the words AMI gives on Asterisk (bridged →
    connected), so the nightly report counts Twilio's queue calls like Asterisk's."""
    with (
        TwilioPhone(server.base_url, server.token, from_number=CALLER) as caller,
        TwilioPhone(server.base_url, server.token, from_number=AGENT_PHONE) as line,
    ):
        caller.dial()
        assert caller.press("0").waiting_for == "enqueue"
        line.dial("/twilio/agent")
        line.press(PIN + "#")
        post(
            caller, "/twilio/agent/connect", CallSid=caller.call_sid, DequeingCallSid=line.call_sid
        )
        post(line, "/twilio/agent/next", DialCallStatus="completed", DialCallDuration="95",
             CallStatus="in-progress")  # fmt: skip
        post(caller, "/twilio/queue/done", QueueResult="bridged", QueueTime="12")
    (row,) = server.sql(
        "SELECT agent, queue_talk_s, queue_outcome, queue_wait_s FROM call WHERE external_id = ?",
        (caller.call_sid,),
    )
    assert tuple(row) == ("sara", 95.0, "connected", 12.0)
