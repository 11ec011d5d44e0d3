"""Tests for the fake Twilio phone against a tiny signature-checking FastAPI app."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from twilio.request_validator import RequestValidator
from twilio_phone import TwilioPhone, free_port, parse_twiml, serve_app, serve_files

TOKEN = "test-auth-token-0123456789abcdef"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'


@dataclass
class Seen:
    """One webhook the test server received."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    signature: str | None
    valid: bool


@dataclass
class Server:
    """The running test app and everything it received."""

    base_url: str
    seen: list[Seen] = field(default_factory=list)
    downloads: list[bytes] = field(default_factory=list)

    def paths(self) -> list[str]:
        """Paths of the accepted webhooks, in order."""
        return [s.path for s in self.seen if s.valid]


def twiml(body: str, status: int = 200, media_type: str = "text/xml") -> Response:
    """Wrap TwiML verbs in a <Response> document."""
    return Response(f"{XML_HEAD}<Response>{body}</Response>", status, media_type=media_type)


def build_app(server: Server) -> FastAPI:
    """Gather -> Redirect -> Gather -> Record -> Enqueue, plus broken endpoints."""
    validator = RequestValidator(TOKEN)

    async def check_signature(request: Request) -> None:
        form = {k: str(v) for k, v in (await request.form()).items()}
        signature = request.headers.get("X-Twilio-Signature")
        valid = signature is not None and validator.validate(str(request.url), form, signature)
        seen = Seen(
            request.method, request.url.path, dict(request.query_params), form, signature, valid
        )
        server.seen.append(seen)
        if not valid and not request.url.path.startswith("/open/"):
            raise HTTPException(403, "bad signature")

    app = FastAPI(dependencies=[Depends(check_signature)])

    @app.post("/twilio/voice")
    async def voice(request: Request) -> Response:
        return twiml(
            "<Play>https://cdn.example/welcome.wav</Play>"
            '<Gather action="menu?step=1" numDigits="1" timeout="5">'
            "<Play>https://cdn.example/menu.wav</Play><Say>press</Say></Gather>"
            "<Play>https://cdn.example/no-input.wav</Play>"
            "<Redirect>voice?retry=1</Redirect>"
        )

    @app.post("/twilio/menu")
    async def menu(request: Request) -> Response:
        digits = (await request.form())["Digits"]
        if digits == "9":
            return twiml('<Gather action="/twilio/got" method="GET" numDigits="2"/>')
        return twiml('<Redirect method="POST">/twilio/step2?from=menu</Redirect>')

    @app.get("/twilio/got")
    async def got(request: Request) -> Response:
        return twiml("<Hangup/>")

    @app.post("/twilio/step2")
    async def step2(request: Request) -> Response:
        return twiml(
            '<Gather action="/twilio/code?kind=national" finishOnKey="#" timeout="5" '
            'actionOnEmptyResult="true"><Play>https://cdn.example/enter-code.wav</Play></Gather>'
        )

    @app.post("/twilio/code")
    async def code(request: Request) -> Response:
        if (await request.form())["Digits"] == "":
            return twiml("<Play>https://cdn.example/empty.wav</Play><Redirect>step2</Redirect>")
        return twiml(
            "<Play>https://cdn.example/after-beep.wav</Play>"
            '<Record action="recorded?code=1" maxLength="60" finishOnKey="#" playBeep="true" '
            'timeout="5"/>'
            "<Play>https://cdn.example/no-recording.wav</Play><Hangup/>"
        )

    @app.post("/twilio/recorded")
    def recorded(request: Request) -> Response:
        form = server.seen[-1].form
        server.downloads.append(httpx.get(form["RecordingUrl"]).content)
        return twiml("<Play>https://cdn.example/thanks.wav</Play><Enqueue>support</Enqueue>")

    @app.post("/twilio/status")
    async def status(request: Request) -> Response:
        return Response(status_code=204)

    @app.post("/twilio/loop")
    async def loop(request: Request) -> Response:
        return twiml("<Redirect>loop</Redirect>")

    @app.post("/twilio/broken")
    async def broken(request: Request) -> Response:
        return Response(f"{XML_HEAD}<Response><Play>x.wav</Response>", media_type="text/xml")

    @app.post("/twilio/json")
    async def json_body(request: Request) -> Response:
        return Response("<Response/>", media_type="application/json")

    @app.post("/twilio/error")
    async def error(request: Request) -> Response:
        return twiml("<Say>oops</Say>", status=500)

    @app.post("/twilio/dial")
    async def dial(request: Request) -> Response:
        return twiml("<Pay />")  # a real verb this phone does not run

    @app.post("/twilio/badgather")
    async def bad_gather(request: Request) -> Response:
        return twiml('<Gather numDigits="one"><Say>x</Say></Gather>')

    @app.post("/open/echo")
    async def echo(request: Request) -> Response:
        return twiml("")

    return app


@pytest.fixture(scope="module")
def running() -> Iterator[Server]:
    server = Server("")
    base_url, stop = serve_app(build_app(server))
    server.base_url = base_url
    yield server
    stop()


@pytest.fixture
def server(running: Server) -> Server:
    running.seen.clear()
    running.downloads.clear()
    return running


@pytest.fixture
def audio(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "rec.wav").write_bytes(b"RIFF-fake-audio")
    base_url, stop = serve_files(tmp_path)
    yield f"{base_url}/rec.wav"
    stop()


def test_full_call_gather_redirect_gather_record_enqueue(server: Server, audio: str) -> None:
    phone = TwilioPhone(server.base_url, TOKEN, recording_url=audio)
    first = phone.dial()
    assert first.waiting_for == "gather"
    assert first.plays == ["https://cdn.example/welcome.wav", "https://cdn.example/menu.wav"]
    assert first.says == ["press"]
    assert first.gather == {"action": "menu?step=1", "numDigits": "1", "timeout": "5"}

    second = phone.press("2")
    assert second.waiting_for == "gather"
    assert second.plays == ["https://cdn.example/enter-code.wav"]
    assert second.url == f"{server.base_url}/twilio/step2?from=menu"

    third = phone.press("1234#")
    assert third.waiting_for == "record"
    assert third.record is not None and third.record["maxLength"] == "60"
    assert third.plays == ["https://cdn.example/after-beep.wav"]

    last = phone.record(duration=7)
    assert last.waiting_for == "enqueue"
    assert last.enqueue == "support"
    assert last.plays == ["https://cdn.example/thanks.wav"]

    assert all(s.valid for s in server.seen)
    assert server.paths() == [
        "/twilio/voice",
        "/twilio/menu",
        "/twilio/step2",
        "/twilio/code",
        "/twilio/recorded",
    ]
    voice, menu, step2, code, recorded = server.seen
    assert menu.query == {"step": "1"} and menu.form["Digits"] == "2"
    assert step2.query == {"from": "menu"} and "Digits" not in step2.form
    assert code.query == {"kind": "national"} and code.form["Digits"] == "1234"
    assert recorded.query == {"code": "1"}
    assert recorded.form["RecordingUrl"] == audio
    assert recorded.form["RecordingDuration"] == "7"
    assert recorded.form["Digits"] == "#"
    assert (
        recorded.form["RecordingSid"].startswith("RE") and len(recorded.form["RecordingSid"]) == 34
    )
    assert server.downloads == [b"RIFF-fake-audio"]

    sids = {s.form["CallSid"] for s in server.seen}
    assert (
        sids == {phone.call_sid} and phone.call_sid.startswith("CA") and len(phone.call_sid) == 34
    )
    assert voice.form == {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": phone.call_sid,
        "CallStatus": "ringing",
        "Called": "124",
        "Caller": "+989121234567",
        "Direction": "inbound",
        "From": "+989121234567",
        "To": "124",
    }
    assert menu.form["CallStatus"] == "in-progress"
    assert [t.url.split("/twilio/")[1] for t in phone.turns] == [
        "voice",
        "menu?step=1",
        "step2?from=menu",
        "code?kind=national",
        "recorded?code=1",
    ]
    assert phone.turns[1].waiting_for == "redirect"


def test_wrong_token_is_rejected(server: Server) -> None:
    phone = TwilioPhone(server.base_url, "not-the-token")
    with pytest.raises(AssertionError, match="HTTP 403"):
        phone.dial()
    assert server.seen[-1].signature is not None and not server.seen[-1].valid


def test_unsigned_phone_sends_no_signature(server: Server) -> None:
    phone = TwilioPhone(server.base_url, None)
    assert phone.dial("/open/echo").waiting_for == "end"
    assert server.seen[-1].signature is None
    with pytest.raises(AssertionError, match="HTTP 403"):
        TwilioPhone(server.base_url, None).dial()


def test_post_raw_forged_and_signed(server: Server) -> None:
    phone = TwilioPhone(server.base_url, TOKEN)
    params = phone.base_params()
    assert phone.post_raw("/twilio/voice", params, None).status_code == 403
    assert phone.post_raw("/twilio/voice", params, "Zm9yZ2Vk").status_code == 403
    forged = dict(params, From="+989000000000")
    signature = phone.sign(phone.url_for("/twilio/voice"), params)
    assert phone.post_raw("/twilio/voice", forged, signature).status_code == 403
    good = phone.post_raw("/twilio/voice", params, signature)
    assert good.status_code == 200 and "<Gather" in good.text
    assert phone.turns == []


def test_silence_falls_through_to_next_verb(server: Server) -> None:
    phone = TwilioPhone(server.base_url, TOKEN)
    phone.dial()
    again = phone.silence()
    assert again.waiting_for == "gather"
    assert server.paths() == ["/twilio/voice", "/twilio/voice"]
    assert server.seen[-1].query == {"retry": "1"}
    assert "Digits" not in server.seen[-1].form
    assert phone.turns[0].plays[-1] == "https://cdn.example/menu.wav"  # only what was reached
    assert again.plays == ["https://cdn.example/welcome.wav", "https://cdn.example/menu.wav"]
    assert phone.heard == [
        "https://cdn.example/welcome.wav",
        "https://cdn.example/menu.wav",
        "https://cdn.example/no-input.wav",  # the verbs after <Gather> ran on timeout
        "https://cdn.example/welcome.wav",
        "https://cdn.example/menu.wav",
    ]


def test_finish_on_key_alone_is_like_silence(server: Server) -> None:
    phone = TwilioPhone(server.base_url, TOKEN)
    phone.dial()
    assert phone.press("#").waiting_for == "gather"
    assert server.paths() == ["/twilio/voice", "/twilio/voice"]


def test_action_on_empty_result_posts_empty_digits(server: Server) -> None:
    phone = TwilioPhone(server.base_url, TOKEN)
    phone.dial()
    phone.press("2")
    again = phone.silence()
    assert again.waiting_for == "gather"
    assert again.url == f"{server.base_url}/twilio/step2"
    code = [s for s in server.seen if s.path == "/twilio/code"]
    assert len(code) == 1 and code[0].form["Digits"] == ""
    assert phone.turns[-2].plays == ["https://cdn.example/empty.wav"]


def test_empty_recording_skips_action(server: Server, audio: str) -> None:
    phone = TwilioPhone(server.base_url, TOKEN, recording_url=audio)
    phone.dial()
    phone.press("2")
    phone.press("55")
    end = phone.record(duration=0)
    assert end.waiting_for == "hangup"
    assert end.plays == ["https://cdn.example/no-recording.wav"]
    assert "/twilio/recorded" not in server.paths()
    assert phone.call_status == "completed"


def test_record_clamps_to_max_length_and_checks_key(server: Server, audio: str) -> None:
    phone = TwilioPhone(server.base_url, TOKEN, recording_url=audio)
    phone.dial()
    phone.press("2")
    phone.press("7#")
    with pytest.raises(AssertionError, match="does not end this <Record>"):
        phone.record(digits="*")
    assert phone.record(duration=500).waiting_for == "enqueue"
    assert server.seen[-1].form["RecordingDuration"] == "60"


def test_gather_with_get_method_signs_query(server: Server) -> None:
    phone = TwilioPhone(server.base_url, TOKEN)
    phone.dial()
    phone.press("9")
    end = phone.press("42")
    assert end.waiting_for == "hangup"
    got = server.seen[-1]
    assert got.method == "GET" and got.valid
    assert got.query["Digits"] == "42" and got.query["CallSid"] == phone.call_sid


def test_press_rules(server: Server) -> None:
    phone = TwilioPhone(server.base_url, TOKEN)
    with pytest.raises(AssertionError, match="not at a <Gather>"):
        phone.press("1")
    phone.dial()
    with pytest.raises(AssertionError, match="after the <Gather> finished"):
        phone.press("12")
    with pytest.raises(ValueError):
        phone.press("1a")
    with pytest.raises(AssertionError, match="not at a <Record>"):
        phone.record()


def test_hangup_posts_status_callback(server: Server) -> None:
    phone = TwilioPhone(server.base_url, TOKEN)
    phone.dial()
    response = phone.hangup()
    assert response.status_code == 204
    status = server.seen[-1]
    assert status.path == "/twilio/status" and status.valid
    assert status.form["CallStatus"] == "completed"
    assert status.form["CallSid"] == phone.call_sid
    assert status.form["CallbackSource"] == "call-progress-events"
    assert int(status.form["CallDuration"]) >= 1


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/twilio/broken", "malformed TwiML"),
        ("/twilio/json", "not XML"),
        ("/twilio/error", "HTTP 500"),
        ("/twilio/loop", "more than 20 <Redirect> hops"),
        ("/twilio/dial", "unsupported TwiML verb <Pay>"),
        ("/twilio/badgather", "is not an integer"),
    ],
)
def test_fails_loudly(server: Server, path: str, message: str) -> None:
    phone = TwilioPhone(server.base_url, TOKEN)
    with pytest.raises(AssertionError, match=message) as info:
        phone.dial(path)
    if path != "/twilio/json":
        assert "--- TwiML ---" in str(info.value)


def test_parse_twiml_rules() -> None:
    assert [v.tag for v in parse_twiml("<Response><Say>hi</Say><Hangup/></Response>")] == [
        "Say",
        "Hangup",
    ]
    for bad in (
        "<Reply/>",
        "<Response>text<Hangup/></Response>",
        "<Response><Gather><Record/></Gather></Response>",
        '<Response><Gather finishOnKey="##"/></Response>',
        "<Response><Redirect/></Response>",
        "<Response><Play/></Response>",
        "<Response><Enqueue/></Response>",
    ):
        with pytest.raises(AssertionError):
            parse_twiml(bad)


def test_serve_files_and_free_port(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("salam")
    base_url, stop = serve_files(tmp_path)
    try:
        assert httpx.get(f"{base_url}/a.txt").text == "salam"
        assert httpx.get(f"{base_url}/missing.txt").status_code == 404
    finally:
        stop()
    port = free_port()
    assert 0 < port < 65536
