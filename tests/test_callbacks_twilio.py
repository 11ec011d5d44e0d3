"""Callbacks on Twilio: ``calls.create`` from the twilio library, received by a local HTTP server
standing in for Twilio's REST API (IVR_TWILIO_API_BASE points the client at it)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from callback_fakes import StaticQueue

from ivr.calendar import WorkCalendar
from ivr.calendar.agent_hours import AgentHours, load_agent_hours
from ivr.callbacks.dialing import ALIVE, AttemptOrder, DialError, Ended
from ivr.callbacks.dispatcher import Dispatcher
from ivr.callbacks.models import Outcome
from ivr.callbacks.queue_view import QueueSnapshot
from ivr.callbacks.service import CallbackService, OpenAttempt
from ivr.callbacks.twilio import TwilioDialer, twilio_outcome
from ivr.settings import Settings
from ivr.tickets.db import make_engine, upgrade

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-test-token"
FROM = "+982512345678"
PUBLIC = "https://ivr.example.org"
T0 = datetime(2026, 5, 16, 5, 30, tzinfo=UTC)  # Saturday 09:00 Tehran


@dataclass
class FakeTwilio:
    """Twilio's Calls resource, as much of it as the dialer uses, checking what it is sent."""

    base_url: str = ""
    created: list[dict[str, str]] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)


def _handler(state: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    calls = f"/2010-04-01/Accounts/{SID}/Calls"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            state.auth.append(self.headers.get("Authorization", ""))
            length = int(self.headers.get("Content-Length", "0"))
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            if self.path != f"{calls}.json":
                return self._send(404, {"code": 20404, "message": "not found", "status": 404})
            sent = {key: values[-1] for key, values in form.items()}
            state.created.append(sent)
            sid = f"CA{len(state.created):032d}"
            state.statuses[sid] = "queued"
            self._send(201, {"sid": sid, "account_sid": SID, "status": "queued", "to": sent["To"]})

        def do_GET(self) -> None:
            state.auth.append(self.headers.get("Authorization", ""))
            sid = self.path.removeprefix(f"{calls}/").removesuffix(".json")
            if sid not in state.statuses:
                return self._send(404, {"code": 20404, "message": "not found", "status": 404})
            self._send(200, {"sid": sid, "account_sid": SID, "status": state.statuses[sid]})

    return Handler


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    state = FakeTwilio()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def dialer_for(api_base: str, timeout: float = 5.0) -> TwilioDialer:
    return TwilioDialer(
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        public_url=PUBLIC + "/",
        api_base=api_base,
        timeout=timeout,
        ring_seconds=25,
    )


def order(attempt_id: int = 7) -> AttemptOrder:
    return AttemptOrder(attempt_id, 3, "09121234567", "qom", T0, position=1)


def open_attempt(attempt_id: int, sid: str | None) -> OpenAttempt:
    return OpenAttempt(
        attempt_id, 3, 1, "09121234567", "qom", T0, "in_progress", "twilio", sid, T0, T0, T0
    )


def test_calls_create_reaches_twilio_with_to_from_and_the_urls(twilio_api: FakeTwilio) -> None:
    sid = dialer_for(twilio_api.base_url).place(order(7))
    (sent,) = twilio_api.created
    assert sent["To"] == "+989121234567"
    assert sent["From"] == FROM
    assert sent["Url"] == f"{PUBLIC}/twilio/queue/callback?attempt=7"
    assert sent["StatusCallback"] == f"{PUBLIC}/twilio/queue/callback/status?attempt=7"
    assert sent["Timeout"] == "25"
    assert sid == "CA" + "1".zfill(32)
    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert twilio_api.auth == [f"Basic {credentials}"]


def test_the_dispatcher_places_twilio_callbacks_for_free_agents_only(
    twilio_api: FakeTwilio, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        service = CallbackService(engine, clock=lambda: T0)
        for i in range(3):
            service.request(f"0912123456{i}", "qom", T0 - timedelta(minutes=5 - i))
        hours = AgentHours(load_agent_hours(), WorkCalendar())
        view = StaticQueue(QueueSnapshot(agents_logged_in=3, agents_free=2))
        dispatcher = Dispatcher(service, hours, view, dialer_for(twilio_api.base_url))
        report = dispatcher.dispatch_once()
        assert [c["To"] for c in twilio_api.created] == ["+989121234560", "+989121234561"]
        assert len(report.placed) == 2
        attempts = [service.attempts_of(c.id)[0] for c in service.list()[:2]]  # type: ignore[arg-type]
        assert [a.external_id for a in attempts] == [f"CA{1:032d}", f"CA{2:032d}"]
        assert [a.dialer for a in attempts] == ["twilio", "twilio"]
        assert [c.status for c in service.list()] == ["in_progress", "in_progress", "pending"]
    finally:
        engine.dispose()


def test_check_asks_twilio_how_a_call_went(twilio_api: FakeTwilio) -> None:
    dialer = dialer_for(twilio_api.base_url)
    ringing, answered, busy = (dialer.place(order(n)) for n in (1, 2, 3))
    twilio_api.statuses[ringing] = "in-progress"
    twilio_api.statuses[answered] = "completed"
    twilio_api.statuses[busy] = "busy"
    attempts = [
        open_attempt(1, ringing),
        open_attempt(2, answered),
        open_attempt(3, busy),
        open_attempt(4, "CA" + "9" * 32),  # Twilio never heard of it
        open_attempt(5, None),  # calls.create never returned
    ]
    found = dialer.check(attempts)
    assert found == {
        1: ALIVE,
        2: Ended(2, Outcome.ANSWERED, "CallStatus=completed"),
        3: Ended(3, Outcome.BUSY, "CallStatus=busy"),
    }


def test_a_silent_twilio_is_given_up_on_within_the_timeout() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections, never answers
    try:
        dialer = dialer_for(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(DialError, match=r"calls\.create"):
            dialer.place(order())
        assert time.monotonic() - started < 5
    finally:
        listener.close()


def test_an_unreachable_twilio_is_a_dial_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DialError):
        dialer_for(f"http://127.0.0.1:{port}").place(order())


def test_twilio_callbacks_need_their_settings() -> None:
    with pytest.raises(ValueError, match=r"IVR_TWILIO_FROM.*IVR_PUBLIC_URL"):
        TwilioDialer(account_sid=SID, auth_token=TOKEN, from_number="", public_url="")


def test_the_api_base_is_a_setting_with_twilios_default() -> None:
    assert Settings().twilio_api_base == "https://api.twilio.com"


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("completed", Outcome.ANSWERED),
        ("busy", Outcome.BUSY),
        ("no-answer", Outcome.NO_ANSWER),
        ("failed", Outcome.FAILED),
        ("canceled", Outcome.FAILED),
        ("ringing", None),
        ("in-progress", None),
        ("queued", None),
    ],
)
def test_twilio_call_statuses_as_outcomes(status: str, outcome: Outcome | None) -> None:
    assert twilio_outcome(status) == outcome
