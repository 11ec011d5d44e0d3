"""Callbacks placed on Twilio: the queue view (Twilio's Queues REST API and the agents' line) and
the scheduler's job, against a local HTTP server standing in for Twilio's REST API that records
every request it receives."""

from __future__ import annotations

import base64
import email.utils
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from ivr.calendar import WorkCalendar
from ivr.calendar.agent_hours import AgentHours, load_agent_hours
from ivr.callbacks import job
from ivr.callbacks.agent_line import AgentLine
from ivr.callbacks.dispatcher import Dispatcher
from ivr.callbacks.models import Outcome
from ivr.callbacks.queue_view import QueueViewError
from ivr.callbacks.service import CallbackService
from ivr.callbacks.twilio import TwilioDialer
from ivr.callbacks.twilio_view import MAX_BODY, QUIET, TwilioQueueView, TwilioRest
from ivr.settings import Settings
from ivr.tickets.db import make_engine, upgrade

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-test-token"
FROM = "+982512345678"
PUBLIC = "https://ivr.example.org"
QUEUE_SID = "QU" + "a" * 32
T0 = datetime(2026, 5, 16, 5, 30, tzinfo=UTC)  # Saturday 09:00 Tehran: agents answer
NIGHT = datetime(2026, 5, 16, 17, 30, tzinfo=UTC)  # Saturday 21:00 Tehran: they do not


@dataclass
class StandIn:
    """Twilio's Queues, Members and Calls resources, as much as the callbacks use."""

    base_url: str = ""
    members: list[dict[str, Any]] = field(default_factory=list)
    calls: dict[str, str] = field(default_factory=dict)
    """CallSid → status, for GET Calls/{sid}.json."""
    created: list[dict[str, str]] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)
    """(method, path, query, Authorization) of every request."""
    queues_status: int = 200
    huge: bool = False

    def paths(self, method: str = "GET") -> list[str]:
        return [path for m, path, _, _ in self.requests if m == method]


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    account = f"/2010-04-01/Accounts/{SID}"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            if state.huge:
                data = b'{"queues": [' + b'{"a": 1},' * (MAX_BODY // 9) + b"{}]}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, method: str) -> str:
            split = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(split.query))
            state.requests.append((method, split.path, query, self.headers["Authorization"]))
            return split.path

        def do_GET(self) -> None:
            path = self._record("GET")
            if path == f"{account}/Queues.json":
                if state.queues_status != 200:
                    return self._send(state.queues_status, {"message": "down"})
                queue = {"sid": QUEUE_SID, "friendly_name": "124-agents", "max_size": 100}
                other = {"sid": "QU" + "b" * 32, "friendly_name": "other", "max_size": 5}
                return self._send(200, {"queues": [other, queue]})
            if path == f"{account}/Queues/{QUEUE_SID}/Members.json":
                return self._send(200, {"queue_members": state.members})
            sid = path.removeprefix(f"{account}/Calls/").removesuffix(".json")
            if sid in state.calls:
                return self._send(200, {"sid": sid, "status": state.calls[sid]})
            self._send(404, {"code": 20404, "message": "not found", "status": 404})

        def do_POST(self) -> None:
            path = self._record("POST")
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if path != f"{account}/Calls.json":
                return self._send(404, {"code": 20404, "message": "not found", "status": 404})
            state.created.append(form)
            sid = f"CA{len(state.created):032d}"
            state.calls[sid] = "queued"
            self._send(201, {"sid": sid, "account_sid": SID, "status": "queued"})

    return Handler


@pytest.fixture
def twilio_api() -> Iterator[StandIn]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    made = make_engine(url)
    yield made
    made.dispose()


def member(call_sid: str, position: int, entered: datetime) -> dict[str, Any]:
    return {
        "call_sid": call_sid,
        "position": position,
        "date_enqueued": email.utils.format_datetime(entered, usegmt=True),
        "wait_time": 1,
        "queue_sid": QUEUE_SID,
    }


def view_on(api: StandIn, engine: Engine, now: datetime = T0) -> TwilioQueueView:
    rest = TwilioRest(api.base_url, SID, TOKEN, timeout=3)
    return TwilioQueueView(
        rest, AgentLine(engine, clock=lambda: now), "124-agents", clock=lambda: now
    )


def dispatcher_on(api: StandIn, engine: Engine, now: datetime = T0) -> Dispatcher:
    dialer = TwilioDialer(
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        public_url=PUBLIC,
        api_base=api.base_url,
        timeout=3,
    )
    hours = AgentHours(load_agent_hours(), WorkCalendar())
    service = CallbackService(engine, clock=lambda: now)
    return Dispatcher(service, hours, view_on(api, engine, now), dialer, clock=lambda: now)


# --- the view --------------------------------------------------------------------------------


def test_the_view_reads_the_queue_from_twilio_and_the_agents_from_the_line(
    twilio_api: StandIn, engine: Engine
) -> None:
    line = AgentLine(engine, clock=lambda: T0)
    line.idle("CAagent1", "sara")
    line.idle("CAagent2", "omid")
    line.idle("CAagent3", "leila")
    line.talking("CAagent2", "CAcaller9")
    twilio_api.members = [
        member("CAlive2", 2, T0 - timedelta(minutes=1)),
        member("CAlive1", 1, T0 - timedelta(minutes=4)),
    ]
    snapshot = view_on(twilio_api, engine).snapshot()
    assert (snapshot.agents_logged_in, snapshot.agents_free) == (3, 2)
    assert snapshot.serving == frozenset({"CAcaller9"})
    assert [e.channel for e in snapshot.waiting] == ["CAlive1", "CAlive2"]
    assert snapshot.waiting[0].entered_at == T0 - timedelta(minutes=4)
    assert all(e.attempt_id is None for e in snapshot.waiting)  # real callers, never stand-ins
    assert snapshot.max_len == 100
    # What the stand-in received: the queue looked up by name, then its members, one page each,
    # with the account's credentials; nothing else.
    account = f"/2010-04-01/Accounts/{SID}"
    assert twilio_api.paths() == [
        f"{account}/Queues.json",
        f"{account}/Queues/{QUEUE_SID}/Members.json",
    ]
    assert twilio_api.requests[0][2] == {"PageSize": "100"}
    assert twilio_api.requests[1][2] == {"PageSize": "1000"}
    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert {auth for *_, auth in twilio_api.requests} == {f"Basic {credentials}"}


def test_the_queue_sid_is_looked_up_once(twilio_api: StandIn, engine: Engine) -> None:
    view = view_on(twilio_api, engine)
    view.snapshot()
    view.snapshot()
    assert [p.rsplit("/", 1)[-1] for p in twilio_api.paths()] == [
        "Queues.json",
        "Members.json",
        "Members.json",
    ]


def test_an_agent_not_heard_of_for_long_is_asked_about_and_dropped_when_gone(
    twilio_api: StandIn, engine: Engine
) -> None:
    early = T0 - QUIET - timedelta(seconds=1)
    old = AgentLine(engine, clock=lambda: early)
    old.idle("CAstill", "sara")
    old.idle("CAended", "omid")
    AgentLine(engine, clock=lambda: T0).idle("CAfresh", "leila")
    twilio_api.calls.update({"CAstill": "in-progress", "CAended": "completed"})
    snapshot = view_on(twilio_api, engine).snapshot()
    assert (snapshot.agents_logged_in, snapshot.agents_free) == (2, 2)
    asked = [p.rsplit("/", 1)[-1] for p in twilio_api.paths() if "/Calls/" in p]
    assert sorted(asked) == ["CAended.json", "CAstill.json"]  # not the fresh one
    assert sorted(r.call_sid for r in AgentLine(engine).present()) == ["CAfresh", "CAstill"]


def test_twilio_down_or_too_talkative_is_a_view_error(twilio_api: StandIn, engine: Engine) -> None:
    twilio_api.queues_status = 500
    with pytest.raises(QueueViewError, match="HTTP 500"):
        view_on(twilio_api, engine).snapshot()
    twilio_api.queues_status = 200
    twilio_api.huge = True
    with pytest.raises(QueueViewError, match="bytes"):
        view_on(twilio_api, engine).snapshot()
    with pytest.raises(QueueViewError):
        TwilioQueueView(
            TwilioRest("http://127.0.0.1:9", SID, TOKEN, timeout=1), AgentLine(engine), "q"
        ).snapshot()


def test_a_queue_nobody_joined_yet_is_empty(twilio_api: StandIn, engine: Engine) -> None:
    rest = TwilioRest(twilio_api.base_url, SID, TOKEN, timeout=3)
    snapshot = TwilioQueueView(rest, AgentLine(engine), "never-used").snapshot()
    assert snapshot.waiting == () and snapshot.agents_logged_in == 0


# --- the dispatcher on Twilio ------------------------------------------------------------------


def test_free_agents_bound_the_calls_placed_in_entry_order(
    twilio_api: StandIn, engine: Engine
) -> None:
    line = AgentLine(engine, clock=lambda: T0)
    line.idle("CAagent1", "sara")
    line.idle("CAagent2", "omid")
    service = CallbackService(engine, clock=lambda: T0)
    numbers = [f"0912123456{i}" for i in range(5)]
    for i, number in enumerate(numbers):  # entered in the order 4, 3, 2, 1, 0 minutes ago
        service.request(number, "qom", T0 - timedelta(minutes=10 - i))
    dispatcher = dispatcher_on(twilio_api, engine)
    first = dispatcher.dispatch_once()
    assert len(first.placed) == 2
    assert [c["To"] for c in twilio_api.created] == ["+989121234560", "+989121234561"]
    sent = twilio_api.created[0]
    assert sent["From"] == FROM
    assert sent["Url"] == f"{PUBLIC}/twilio/queue/callback?attempt={first.placed[0]}"
    assert sent["StatusCallback"].endswith(
        f"/twilio/queue/callback/status?attempt={first.placed[0]}"
    )
    # Both agents are promised: the next pass places nothing, though five wait.
    assert dispatcher.dispatch_once().placed == []
    # The first caller is now talking to sara (the connect URL); omid is still promised.
    line.talking("CAagent1", f"CA{1:032d}")
    assert dispatcher.dispatch_once().placed == []
    # That call ends (its status callback closes the attempt) and sara waits again: one agent
    # free for one more callback, the next in entry order.
    dispatcher.service.finish(first.placed[0], Outcome.ANSWERED, "CallStatus=completed")
    line.idle("CAagent1", "sara")
    third = dispatcher.dispatch_once()
    assert len(third.placed) == 1 and twilio_api.created[-1]["To"] == "+989121234562"
    assert len(twilio_api.created) == 3


def test_a_live_caller_who_entered_earlier_goes_first(twilio_api: StandIn, engine: Engine) -> None:
    AgentLine(engine, clock=lambda: T0).idle("CAagent1", "sara")
    service = CallbackService(engine, clock=lambda: T0)
    service.request("09121234567", "qom", T0 - timedelta(minutes=2))
    twilio_api.members = [member("CAlive", 1, T0 - timedelta(minutes=3))]
    assert dispatcher_on(twilio_api, engine).dispatch_once().placed == []
    assert twilio_api.created == []
    twilio_api.members = [member("CAlive", 1, T0 - timedelta(minutes=1))]  # entered later
    assert len(dispatcher_on(twilio_api, engine).dispatch_once().placed) == 1


def test_nothing_is_placed_outside_the_agents_hours(twilio_api: StandIn, engine: Engine) -> None:
    AgentLine(engine, clock=lambda: NIGHT).idle("CAagent1", "sara")
    CallbackService(engine, clock=lambda: NIGHT).request("09121234567", "qom", NIGHT)
    assert dispatcher_on(twilio_api, engine, NIGHT).dispatch_once().placed == []
    assert twilio_api.created == []


def test_one_number_is_called_once_at_a_time(twilio_api: StandIn, engine: Engine) -> None:
    line = AgentLine(engine, clock=lambda: T0)
    for i in range(3):
        line.idle(f"CAagent{i}", f"agent{i}")
    service = CallbackService(engine, clock=lambda: T0)
    first = service.request("09121234567", "qom", T0 - timedelta(minutes=3))
    again = service.request("09121234567", "qom", T0 - timedelta(minutes=1))
    assert first.id == again.id
    dispatcher = dispatcher_on(twilio_api, engine)
    dispatcher.dispatch_once()
    dispatcher.dispatch_once()
    assert [c["To"] for c in twilio_api.created] == ["+989121234567"]


# --- the scheduler's job ------------------------------------------------------------------------


def test_the_job_places_twilio_callbacks(
    twilio_api: StandIn, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ivr.clock import utcnow

    monkeypatch.setattr(job, "_said", set())
    AgentLine(engine).idle("CAagent1", "sara")
    CallbackService(engine).request("09121234567", "qom", utcnow())
    settings = Settings(
        database_url=str(engine.url),
        callback_dialer="twilio",
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        twilio_from=FROM,
        twilio_api_base=twilio_api.base_url,
        public_url=PUBLIC,
    )
    try:
        hours_open = AgentHours(load_agent_hours(), WorkCalendar()).is_open("qom", utcnow())
        report = job.run(engine, settings)
        assert report is not None and report.error is None
        expected = ["+989121234567"] if hours_open else []
        assert [c["To"] for c in twilio_api.created] == expected
        assert any(p.endswith("/Members.json") for p in twilio_api.paths())
    finally:
        job.close()


def test_the_job_without_twilio_credentials_says_so_once(
    engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    monkeypatch.setattr(job, "_said", set())
    settings = Settings(database_url=str(engine.url), callback_dialer="twilio")
    try:
        with caplog.at_level(logging.WARNING, logger="ivr.callbacks.job"):
            assert job.run(engine, settings) is None
            assert job.run(engine, settings) is None
        assert caplog.text.count("Twilio callbacks are off") == 1
        assert "IVR_TWILIO_ACCOUNT_SID" in caplog.text
    finally:
        job.close()
