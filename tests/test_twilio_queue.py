"""The agents' queue on Twilio through a real ``ivr serve``: what the wait URL says, the callback
key, and the ``<Enqueue action>`` that records the queue and goes on with the flow.

Requests are signed as Twilio signs them (``TwilioPhone``); the TwiML is checked with the same
strict parser as the calls' tests.
"""

from __future__ import annotations

import io
import urllib.parse
import wave
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from twilio_phone import TwilioPhone, parse_twiml

from ivr.prompts import read_wav_info

if TYPE_CHECKING:
    from conftest import CallHelpers, IvrServer

CALLER = "+989121234567"
CALLBACK = "09121234567"


@pytest.fixture
def phones(server: IvrServer) -> Iterator[Callable[..., TwilioPhone]]:
    made: list[TwilioPhone] = []

    def make(from_number: str = CALLER) -> TwilioPhone:
        phone = TwilioPhone(server.base_url, server.token, from_number=from_number)
        made.append(phone)
        return phone

    yield make
    for phone in made:
        phone.close()


def post(phone: TwilioPhone, path: str, **params: str) -> list[ET.Element]:
    """A signed webhook as Twilio sends it for this call; its TwiML's verbs, checked."""
    url = phone.url_for(path)
    response: httpx.Response = phone._request(url, "POST", params)
    assert response.status_code == 200, response.text
    return parse_twiml(response.text, url)


def stems(verbs: list[ET.Element]) -> list[str]:
    """The prompt stems and other URLs every <Play> reaches, nested ones included."""
    out = []
    for verb in verbs:
        for play in [verb, *verb] if verb.tag == "Gather" else [verb]:
            if play.tag == "Play":
                path = urllib.parse.urlsplit((play.text or "").strip()).path
                out.append(path.rsplit("/", 1)[-1].removesuffix(".wav"))
    return out


def wait(phone: TwilioPhone, position: int, average_s: int = 0, n: int = 0) -> list[ET.Element]:
    return post(
        phone,
        f"/twilio/queue/wait?n={n}",
        QueuePosition=str(position),
        AvgQueueTime=str(average_s),
        QueueTime="12",
        CurrentQueueSize=str(max(position, 1)),
        QueueSid="QU" + "0" * 32,
    )


def test_enqueue_carries_the_wait_and_action_urls(
    phones: Callable[..., TwilioPhone], server: IvrServer
) -> None:
    phone = phones()
    phone.dial()
    agent = phone.press("0")
    assert agent.waiting_for == "enqueue" and agent.enqueue == "124-agents"
    enqueue = ET.fromstring(agent.xml).find("Enqueue")
    assert enqueue is not None
    assert enqueue.get("waitUrl") == f"{server.base_url}/twilio/queue/wait"
    assert enqueue.get("action") == f"{server.base_url}/twilio/queue/done"
    assert (enqueue.get("waitUrlMethod"), enqueue.get("method")) == ("POST", "POST")


def test_position_one_is_next_with_music_and_no_offer(phones: Callable[..., TwilioPhone]) -> None:
    verbs = wait(phones(), position=1, average_s=30, n=3)
    assert stems(verbs) == ["queue-youarenext", "hold-music"]  # under a minute: no wait said
    assert [v.tag for v in verbs] == ["Play", "Play", "Redirect"]
    assert verbs[-1].text.endswith("/twilio/queue/wait?n=4")


def test_position_two_first_announcement_has_no_offer(phones: Callable[..., TwilioPhone]) -> None:
    verbs = wait(phones(), position=2, average_s=185, n=0)
    assert stems(verbs) == [
        "queue-thereare",
        "num-2",
        "queue-callswaiting",
        "queue-holdtime",
        "num-3",
        "queue-minutes",
        "hold-music",
    ]
    assert "Gather" not in [v.tag for v in verbs]
    assert verbs[-1].tag == "Redirect" and verbs[-1].text.endswith("/twilio/queue/wait?n=1")


def test_position_ten_second_announcement_offers_the_callback(
    phones: Callable[..., TwilioPhone], server: IvrServer
) -> None:
    verbs = wait(phones(), position=10, average_s=25 * 60 + 10, n=1)
    assert stems(verbs) == [
        "queue-thereare",
        "num-10",
        "queue-callswaiting",
        "queue-holdtime",
        "num-20-o",
        "num-5",
        "queue-minutes",
        "queue-periodic-announce",
        "hold-music",
    ]
    gather = next(v for v in verbs if v.tag == "Gather")
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == f"{server.base_url}/twilio/queue/key?n=1"


def test_hold_music_is_served(server: IvrServer) -> None:
    reply = httpx.get(f"{server.base_url}/twilio/queue/hold-music.wav")
    assert reply.status_code == 200 and reply.headers["content-type"] == "audio/wav"
    assert reply.content[:4] == b"RIFF" and len(reply.content) > 8000 * 2 * 20  # ≥ 20 s


def music_seconds_asked(verbs: list[ET.Element]) -> int:
    """The ``s`` of the hold-music URL a wait answer plays (in or outside its Gather)."""
    plays = [p for v in verbs for p in ([v, *v] if v.tag == "Gather" else [v]) if p.tag == "Play"]
    music = [p.text or "" for p in plays if "hold-music" in (p.text or "")]
    assert len(music) == 1, music
    return int(urllib.parse.parse_qs(urllib.parse.urlsplit(music[0]).query)["s"][0])


def spoken_seconds(server: IvrServer, verbs: list[ET.Element]) -> float:
    """What the prompts of a wait answer last, from the rendered files the server plays."""
    folder = Path(server.env["IVR_GENERATED_PROMPTS_DIR"]) / "fa"
    total = 0.0
    for stem in stems(verbs):
        if stem != "hold-music":
            total += read_wav_info(folder / f"{stem}.wav").duration
    return total


def test_music_fills_the_announcement_interval(
    phones: Callable[..., TwilioPhone], server: IvrServer
) -> None:
    for position, n in ((1, 0), (2, 0), (10, 1)):
        verbs = wait(phones(), position=position, average_s=185, n=n)
        spoken = spoken_seconds(server, verbs)
        assert 1 < spoken < 25, spoken
        assert music_seconds_asked(verbs) == round(30 - spoken)  # the default interval


def test_announcement_interval_is_a_setting(
    start_server: Callable[..., IvrServer], token: str
) -> None:
    running = start_server(token=token, twilio_queue_announce_seconds="75")
    phone = TwilioPhone(running.base_url, running.token, from_number=CALLER)
    try:
        verbs = wait(phone, position=3, average_s=0, n=0)
    finally:
        phone.close()
    assert music_seconds_asked(verbs) == round(75 - spoken_seconds(running, verbs))
    seven = httpx.get(f"{running.base_url}/twilio/queue/hold-music.wav?s=7")
    assert seven.status_code == 200 and seven.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(seven.content)) as cut:
        assert cut.getnframes() == 7 * cut.getframerate()  # looped or cut to exactly 7 s


def test_a_wrong_announcement_interval_stops_the_server(ivr_cli: Callable[..., Any]) -> None:
    done = ivr_cli("serve", "--port", "1", check=False, twilio_queue_announce_seconds="3")
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("ivr: bad setting IVR_TWILIO_QUEUE_ANNOUNCE_SECONDS='3'"), line


def test_other_keys_go_back_to_waiting(phones: Callable[..., TwilioPhone]) -> None:
    verbs = post(phones(), "/twilio/queue/key?n=2", Digits="5")
    assert [v.tag for v in verbs] == ["Redirect"] and verbs[0].text.endswith("wait?n=3")


def test_unsigned_queue_webhooks_are_refused(phones: Callable[..., TwilioPhone]) -> None:
    phone = phones()
    for path in ("/twilio/queue/wait", "/twilio/queue/key", "/twilio/queue/done"):
        assert phone.post_raw(path, {"CallSid": phone.call_sid}, "bad").status_code == 403


def test_callback_key_leaves_into_the_callback_step_and_keeps_the_place(
    phones: Callable[..., TwilioPhone], server: IvrServer, calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    assert phone.press("0").waiting_for == "enqueue"
    assert [v.tag for v in post(phone, "/twilio/queue/key?n=1", Digits="1")] == ["Leave"]

    waited = 95
    before = datetime.now(UTC)
    done = phone._fetch(
        phone.url_for("/twilio/queue/done"),
        "POST",
        {"QueueResult": "leave", "QueueTime": str(waited), "QueueSid": "QU" + "0" * 32},
    )
    confirm = phone._settle(done)
    heard = calls.stems(confirm.plays)
    assert heard[0] == "callback-your_number" and heard[-1] == "callback-confirm_menu", heard
    assert calls.spoken_digits(heard) == CALLBACK
    filed = phone.press("1")
    assert calls.stems(filed.plays) == ["recall-filed"] and filed.waiting_for == "hangup"

    call = server.sql("SELECT * FROM call WHERE external_id = ?", (phone.call_sid,))[0]
    assert (call["queue_outcome"], call["queue_wait_s"]) == ("left", waited)
    assert call["queue"] == "124-agents" and call["outcome"] == "callback"
    rows = server.sql("SELECT * FROM callback WHERE call_id = ?", (call["id"],))
    assert len(rows) == 1
    row = rows[0]
    assert (row["number"], row["status"]) == (CALLBACK, "pending")
    entered = datetime.fromisoformat(row["entered_at"]).replace(tzinfo=UTC)
    expected = before - timedelta(seconds=waited)
    assert abs((entered - expected).total_seconds()) < 5, (entered, expected)


def test_bridged_and_hangup_end_quietly(
    phones: Callable[..., TwilioPhone], server: IvrServer
) -> None:
    for result, recorded in (("bridged", "connected"), ("hangup", "abandoned")):
        phone = phones()
        phone.dial()
        phone.press("0")
        verbs = post(phone, "/twilio/queue/done", QueueResult=result, QueueTime="40")
        assert [v.tag for v in verbs] == ["Hangup"]
        call = server.sql("SELECT * FROM call WHERE external_id = ?", (phone.call_sid,))[0]
        assert (call["queue_outcome"], call["queue_wait_s"]) == (recorded, 40)
        assert call["outcome"] == "transferred"


def test_queue_full_goes_to_the_no_agent_menu(phones: Callable[..., TwilioPhone]) -> None:
    phone = phones()
    phone.dial()
    phone.press("0")
    verbs = post(phone, "/twilio/queue/done", QueueResult="queue-full", QueueTime="0")
    heard = stems(verbs)
    assert heard[-1] == "no_agent-menu", heard


# --- callbacks on Twilio ----------------------------------------------------------------------


def open_attempt(server: IvrServer, number: str) -> int:
    """A callback with one attempt placed on Twilio, through the real CLI's database."""
    from ivr.callbacks.service import CallbackService
    from ivr.tickets.db import make_engine

    engine = make_engine(f"sqlite:///{server.db_path}")
    try:
        service = CallbackService(engine)
        row = service.request(number, "qom", datetime.now(UTC))
        assert row.id is not None
        attempt = service.claim(row.id, "test", "twilio")
        assert attempt is not None and attempt.id is not None
        service.placed(attempt.id, "CA" + "5" * 32)
        return attempt.id
    finally:
        engine.dispose()


def attempt_row(server: IvrServer, attempt_id: int) -> Any:
    return server.sql("SELECT * FROM callback_attempt WHERE id = ?", (attempt_id,))[0]


def test_a_called_back_caller_hears_the_greeting_and_joins_the_queue(
    phones: Callable[..., TwilioPhone], server: IvrServer
) -> None:
    attempt = open_attempt(server, "09121230001")
    verbs = post(phones(), f"/twilio/queue/callback?attempt={attempt}")
    assert [v.tag for v in verbs] == ["Play", "Enqueue"]
    assert stems(verbs) == ["callback_call-greeting"]
    enqueue = verbs[1]
    assert enqueue.text == "124-agents"
    assert enqueue.get("waitUrl") == f"{server.base_url}/twilio/queue/wait"
    assert (
        enqueue.get("action") == f"{server.base_url}/twilio/queue/callback/done?attempt={attempt}"
    )


def test_the_status_callback_closes_the_attempt(
    phones: Callable[..., TwilioPhone], server: IvrServer
) -> None:
    attempt = open_attempt(server, "09121230002")
    phone = phones()
    ringing = phone._request(
        phone.url_for(f"/twilio/queue/callback/status?attempt={attempt}"),
        "POST",
        {"CallStatus": "ringing"},
    )
    assert ringing.status_code == 204 and attempt_row(server, attempt)["ended_at"] is None
    done = phone._request(
        phone.url_for(f"/twilio/queue/callback/status?attempt={attempt}"),
        "POST",
        {"CallStatus": "no-answer"},
    )
    assert done.status_code == 204
    row = attempt_row(server, attempt)
    assert (row["outcome"], row["detail"]) == ("no_answer", "CallStatus=no-answer")
    callback = server.sql("SELECT * FROM callback WHERE id = ?", (row["callback_id"],))[0]
    assert (callback["status"], callback["attempts"]) == ("pending", 1)  # tried again later


def test_a_full_queue_fails_the_attempt_with_a_goodbye(
    phones: Callable[..., TwilioPhone], server: IvrServer
) -> None:
    attempt = open_attempt(server, "09121230003")
    verbs = post(
        phones(), f"/twilio/queue/callback/done?attempt={attempt}", QueueResult="queue-full"
    )
    assert stems(verbs) == ["no_agent-goodbye"] and verbs[-1].tag == "Hangup"
    assert attempt_row(server, attempt)["outcome"] == "failed"
    bridged = open_attempt(server, "09121230004")
    verbs = post(phones(), f"/twilio/queue/callback/done?attempt={bridged}", QueueResult="bridged")
    assert [v.tag for v in verbs] == ["Hangup"]
    assert attempt_row(server, bridged)["ended_at"] is None  # the status callback closes it
