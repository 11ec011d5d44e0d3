"""The /try JSON transport through a real ``ivr serve`` over HTTP, for every path the Twilio tests
walk (their key scripts and checks are reused): the same keys make the same tickets as Twilio
and ``ivr call --keys``, with channel ``web``. Then who may use it: the switch, the rate
limits, the request types another site cannot send, upload bounds and foreign call ids.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from browser_phone import BrowserPhone, BrowserTurn, next_loopback_address
from needs import need
from test_terminal_call import COMPARED, SAME_KEYS, national_id, terminal_call
from test_twilio_calls import NEW_REQUEST, assert_report
from twilio_phone import TwilioPhone

from ivr.tickets.tracking import tracking_from_sequence
from ivr.web import try_

REPO = Path(__file__).resolve().parents[1]

if TYPE_CHECKING:
    from conftest import AudioFiles, CallHelpers, IvrServer

CALLER = "09121234567"
"""What the page sends by default: a valid mobile, then accepted as the callback number."""
STRANGER = "09351112233"


@dataclass
class Registration:
    tracking: str
    phone: BrowserPhone
    ticket: dict


def frames(path: Path) -> tuple[tuple[int, int, int], bytes]:
    with wave.open(str(path)) as wav:
        shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
        return shape, wav.readframes(wav.getnframes())


def stems(calls: CallHelpers, turn: BrowserTurn) -> list[str]:
    return calls.stems(turn.plays)


@pytest.fixture(scope="module")
def registration(server: IvrServer, recording_wav: Path, calls: CallHelpers) -> Registration:
    with BrowserPhone(server.base_url, recording=recording_wav) as phone:
        phone.dial()
        last = phone.drive(NEW_REQUEST)
        tracking = calls.tracking(last.plays)
        assert last.tracking == tracking  # the page shows it as well as saying it
        assert phone.hangup().status_code == 200
    ticket = json.loads(server.ivr("tickets", "show", tracking, "--json").stdout)
    return Registration(tracking, phone, ticket)


@pytest.fixture
def phones(server: IvrServer, recording_wav: Path) -> Iterator[Callable[..., BrowserPhone]]:
    made: list[BrowserPhone] = []

    def make(caller: str | None = CALLER, **options: object) -> BrowserPhone:
        options.setdefault("recording", recording_wav)
        phone = BrowserPhone(server.base_url, caller=caller, **options)
        made.append(phone)
        return phone

    yield make
    for phone in made:
        phone.close()


def call_row(server: IvrServer, call_id: str) -> dict | None:
    rows = server.sql("SELECT * FROM call WHERE external_id = ?", (call_id,))
    return dict(rows[0]) if rows else None


def ticket_count(server: IvrServer) -> int:
    return server.sql("SELECT count(*) FROM ticket")[0][0]


def follow_up(phone: BrowserPhone, calls: CallHelpers, tracking: str) -> BrowserTurn:
    phone.dial()
    entry = phone.press("2")
    assert stems(calls, entry) == ["followup-enter"]
    assert entry.gather is not None and entry.gather["finish_on_key"] == "#"
    return phone.drive([tracking + "#"])


# --- a new request from start to ticket --------------------------------------------------------


def test_new_request_registers_ticket(
    server: IvrServer, registration: Registration, recording_wav: Path, calls: CallHelpers
) -> None:
    phone, ticket = registration.phone, registration.ticket
    turns = [stems(calls, t) for t in phone.turns]
    assert turns[0] == ["greeting", "main-menu"]
    assert turns[1] == ["category-menu"]
    assert turns[2][0] == "place-intro" and "place-qom-alghadir" in turns[2]
    assert turns[3] == ["describe-instructions"] and phone.turns[3].waiting_for == "record"
    assert phone.turns[3].record == {
        "type": "record",
        "max_s": 120,
        "finish_on_key": "#",
        "beep": True,
    }
    assert turns[4] == ["describe-review"]
    assert turns[5][0] == "callback-your_number" and turns[5][-1] == "callback-confirm_menu"
    assert calls.spoken_digits(turns[5]) == CALLER
    nid = phone.turns[6].gather
    assert turns[6] == ["nid-enter"] and nid is not None and nid["allow_empty"] is True
    assert (nid["max_digits"], nid["finish_on_key"], nid["timeout_s"]) == (11, "#", 5)
    assert turns[7] == ["summary-intro", "category-industry", "place-qom-alghadir", "summary-menu"]
    assert turns[8][-1] == "registered-menu"
    # The Persian text of each prompt comes with it, for the page to show as it plays.
    # The page shows the catalogue's own text (read here from the file, not through the app).
    catalog = tomllib.loads((REPO / "prompts" / "catalog.toml").read_text(encoding="utf-8"))
    assert phone.turns[1].texts == [catalog["category"]["menu"]["text"]]

    tracking = registration.tracking
    assert len(tracking) == 10 and tracking.isdigit()
    expected = {
        "tracking": tracking,
        "status": "registered",
        "agency": None,
        "channel": "web",
        "province": "qom",
        "category": "industry",
        "place": "alghadir",
        "callback_number": CALLER,
        "caller_number": CALLER,
    }
    assert {key: ticket[key] for key in expected} == expected
    assert ticket["due_at"] > ticket["created_at"]
    assert [(h["kind"], h["new_value"], h["actor"]) for h in ticket["history"]] == [
        ("created", "registered", "caller")
    ]

    recording = Path(ticket["recording_path"])
    assert recording.parent == server.recordings
    assert recording.name.startswith(f"{phone.call_id}-")
    assert frames(recording) == frames(recording_wav)  # 8 kHz mono 16-bit, the same samples
    assert not list(server.recordings.glob(".*"))  # no upload left behind

    call = call_row(server, phone.call_id or "")
    assert call is not None
    assert (call["channel"], call["caller"], call["called"]) == ("web", CALLER, "124")
    assert call["outcome"] == "ticket" and call["ended_at"] is not None
    stored = server.sql("SELECT id, national_id FROM ticket WHERE tracking = ?", (tracking,))
    assert call["ticket_id"] == stored[0]["id"] and stored[0]["national_id"] is None


def test_registered_menu_repeats_and_hands_over(
    phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    registered = phone.drive(NEW_REQUEST)
    tracking = calls.tracking(registered.plays)
    again = phone.press("1")
    assert calls.tracking(again.plays) == tracking
    agent = phone.press("0")
    assert agent.waiting_for == "enqueue" and agent.queue == "124-agents"
    assert agent.data["ended"] is True


@pytest.mark.parametrize("container", ["webm", "ogg", "m4a", "wav-44k-stereo"])
def test_browser_recordings_are_converted_to_the_prompts_format(
    server: IvrServer,
    phones: Callable[..., BrowserPhone],
    calls: CallHelpers,
    tmp_path: Path,
    container: str,
) -> None:
    """What MediaRecorder gives (WebM/Opus in Chrome, Ogg in Firefox, MP4 in Safari) or a
    chosen file becomes 8 kHz mono 16-bit WAV, the format every prompt has."""
    need("ffmpeg", "ffmpeg")
    codec = {
        "webm": ["-c:a", "libopus"],
        "ogg": ["-c:a", "libopus"],
        "m4a": ["-c:a", "aac"],
        "wav-44k-stereo": ["-ar", "44100", "-ac", "2", "-c:a", "pcm_s16le"],
    }[container]
    source = tmp_path / f"voice.{container.split('-')[0]}"
    tone = ["-f", "lavfi", "-i", "sine=frequency=300:duration=3"]
    subprocess.run(["ffmpeg", "-loglevel", "error", *tone, *codec, str(source)], check=True)
    phone = phones(recording=source)
    phone.dial()
    phone.drive(["1", "3", "2"])  # trade → describe → (record) → confirm
    assert stems(calls, phone.turns[3]) == ["describe-review"]
    registered = phone.drive(["1", "#", "1"])
    ticket = json.loads(server.ivr("tickets", "show", registered.tracking or "", "--json").stdout)
    shape, samples = frames(Path(ticket["recording_path"]))
    assert shape == (8000, 1, 2)
    assert len(samples) / 2 / 8000 == pytest.approx(3.0, abs=0.1)


# --- follow-up ---------------------------------------------------------------------------------


def test_followup_from_callback_number_hears_report(
    server: IvrServer,
    registration: Registration,
    phones: Callable[..., BrowserPhone],
    calls: CallHelpers,
) -> None:
    phone = phones(CALLER)
    report = follow_up(phone, calls, registration.tracking)
    assert_report(calls, server, report, registration.ticket)
    assert stems(calls, phone.press("1")) == stems(calls, report)
    assert stems(calls, phone.press("*")) == ["main-menu"]


def test_followup_from_another_number_needs_last_four(
    server: IvrServer,
    registration: Registration,
    phones: Callable[..., BrowserPhone],
    calls: CallHelpers,
) -> None:
    phone = phones(STRANGER)
    verify = follow_up(phone, calls, registration.tracking)
    assert stems(calls, verify) == ["followup-verify"]
    assert verify.gather is not None and verify.gather["max_digits"] == 5
    wrong = phone.press("1111#")
    assert stems(calls, wrong) == ["followup-mismatch", "followup-verify"]
    right = phone.press(CALLER[-4:] + "#")
    assert_report(calls, server, right, registration.ticket)


def test_followup_wrong_check_digit_is_refused_at_once(
    registration: Registration, phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    tracking = registration.tracking
    wrong = tracking[:-1] + str((int(tracking[-1]) + 1) % 10)
    phone = phones(CALLER)
    refused = follow_up(phone, calls, wrong)
    assert stems(calls, refused) == ["followup-invalid", "followup-enter"]


def test_unknown_tracking_sounds_exactly_like_wrong_digits(
    server: IvrServer,
    registration: Registration,
    phones: Callable[..., BrowserPhone],
    calls: CallHelpers,
) -> None:
    unknown = tracking_from_sequence(987_654)
    assert server.ivr("tickets", "show", unknown, check=False).returncode == 1
    heard = []
    for tracking in (unknown, registration.tracking):
        phone = phones(STRANGER)
        follow_up(phone, calls, tracking)
        last = phone.press("1111#")
        assert last.waiting_for == "gather"
        heard.append(calls.stems(phone.heard))
    assert heard[0] == heard[1]
    assert heard[0][-2:] == ["followup-mismatch", "followup-verify"]


# --- agents and failures -----------------------------------------------------------------------


def test_zero_goes_to_agents(
    server: IvrServer, phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    agent = phone.press("0")
    assert agent.waiting_for == "enqueue" and agent.queue == "124-agents"
    assert stems(calls, agent) == ["agent-transfer"]
    assert [a["type"] for a in agent.data["actions"]] == ["play", "transfer"]
    call = call_row(server, phone.call_id or "")
    assert call is not None and call["outcome"] == "transferred"


def test_three_silences_go_to_agents(
    phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    assert stems(calls, phone.silence()) == ["retry-no_input", "main-menu"]
    assert phone.silence().waiting_for == "gather"
    third = phone.silence()
    assert third.waiting_for == "enqueue" and third.queue == "124-agents"
    assert stems(calls, third) == ["retry-too_many", "agent-transfer"]


def test_finish_key_alone_in_a_menu_is_a_wrong_key_and_in_an_entry_silence(
    phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    assert stems(calls, phone.press("#")) == ["retry-invalid", "main-menu"]
    phone.press("2")
    assert stems(calls, phone.press("#")) == ["retry-no_input", "followup-enter"]


# --- the caller's recording --------------------------------------------------------------------


def test_listen_plays_own_recording_to_its_caller_only(
    server: IvrServer,
    phones: Callable[..., BrowserPhone],
    recording_wav: Path,
    calls: CallHelpers,
) -> None:
    phone = phones()
    phone.dial()
    phone.drive(["1", "3"])
    review = phone.record()
    assert stems(calls, review) == ["describe-review"]
    listen = phone.press("1")
    prompts = listen.data["actions"][0]["prompts"]
    assert prompts[0]["recording"] is True and prompts[0]["id"] is None
    assert stems(calls, listen)[1:] == ["describe-review"]
    url = listen.plays[0]
    name = url.rsplit("/", 1)[1]
    assert url == f"{server.base_url}/try/calls/{phone.call_id}/recordings/{name}"

    with httpx.Client(timeout=10) as client:
        audio = client.get(url)
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        played = server.recordings / name
        assert audio.content == played.read_bytes()
        assert frames(played) == frames(recording_wav)

        other = BrowserPhone(server.base_url)
        other.dial()
        other.close()
        for stranger in (
            f"{server.base_url}/try/calls/{other.call_id}/recordings/{name}",
            f"{server.base_url}/try/calls/{phone.call_id}/recordings/other.wav",
            f"{server.base_url}/try/calls/{phone.call_id}/recordings/..%2F{name}",
            f"{server.base_url}/try/calls/{phone.call_id}/recordings/{name[:-4]}",
        ):
            assert client.get(stranger).status_code == 404, stranger

    again = phone.press("3")
    assert stems(calls, again) == ["describe-instructions"] and again.waiting_for == "record"


def test_short_empty_or_broken_recording_is_asked_again(
    server: IvrServer,
    phones: Callable[..., BrowserPhone],
    audio_files: AudioFiles,
    calls: CallHelpers,
) -> None:
    phone = phones(recording=audio_files.directory / "short.wav")
    phone.dial()
    phone.drive(["1", "3"])
    again = ["describe-too_short", "describe-instructions"]
    short = phone.record()
    assert stems(calls, short) == again and short.waiting_for == "record"
    empty = phone.send({"type": "recording"})  # the caller pressed # without a microphone
    assert stems(calls, empty) == again and empty.waiting_for == "record"
    broken = phone.post_audio(b"not audio at all", "audio/webm")  # the third failure
    assert stems(calls, broken) == ["retry-too_many_unrecorded", "agent-transfer"]
    assert not list(server.recordings.glob(f"*{phone.call_id}*"))  # nothing kept

    phone = phones()
    phone.dial()
    phone.drive(["1", "3"])
    fake = phone.post_audio(b"OggS" + b"\0" * 64, "audio/ogg")  # looks like Ogg, is not
    assert stems(calls, fake) == again and fake.waiting_for == "record"
    assert stems(calls, phone.record()) == ["describe-review"]
    assert len(list(server.recordings.glob(f"*{phone.call_id}*"))) == 1  # the good one only


def test_audio_outside_a_recording_step_is_not_kept(
    server: IvrServer, phones: Callable[..., BrowserPhone], recording_wav: Path, calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    turn = phone.post_audio(recording_wav.read_bytes(), "audio/wav")
    assert stems(calls, turn) == ["main-menu"]  # the menu again, as for any stray event
    assert not list(server.recordings.glob(f"{phone.call_id}-*"))


def test_caller_without_usable_number_types_a_callback(
    server: IvrServer, phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    phone = phones("")  # the caller ID field left empty: an anonymous call
    phone.dial()
    enter = phone.drive(["1", "5", "2"])
    assert stems(calls, enter) == ["callback-enter"]
    entered = phone.drive(["02537123456#"])
    said = stems(calls, entered)
    assert said[0] == "callback-entered" and said[-1] == "callback-confirm_menu"
    assert calls.spoken_digits(said) == "02537123456"
    registered = phone.drive(["1", "#", "1"])
    ticket = json.loads(
        server.ivr("tickets", "show", calls.tracking(registered.plays), "--json").stdout
    )
    assert (ticket["category"], ticket["place"]) == ("permits", None)
    assert (ticket["caller_number"], ticket["callback_number"]) == (None, "02537123456")


def test_every_prompt_url_is_audio(
    server: IvrServer,
    registration: Registration,
    phones: Callable[..., BrowserPhone],
    audio_files: AudioFiles,
    calls: CallHelpers,
) -> None:
    heard: list[str] = list(registration.phone.heard)

    long_way = phones(recording=audio_files.directory / "short.wav")
    long_way.dial()
    long_way.drive(["1", "1", "8", "*", "2"])
    long_way.record()  # too short
    long_way.recording = audio_files.directory / "description.wav"
    long_way.drive(["1", "3", "2"])
    long_way.drive(["2", "123#", "09351112233#", "1"])
    long_way.drive(["1234567890#", "7731689956#", "*", "1", "1", "0"])
    assert long_way.current.queue == "124-agents"
    heard += long_way.heard

    follow = phones(STRANGER)
    tracking = registration.tracking
    follow_up(follow, calls, tracking[:-1] + str((int(tracking[-1]) + 1) % 10))
    follow.drive([tracking + "#", "1111#", CALLER[-4:] + "#", "1", "0"])
    heard += follow.heard

    lost = phones()
    lost.dial()
    lost.drive(["9", "_", "_"])
    heard += lost.heard

    said = set(calls.stems(heard))
    for expected in (
        "zone-intro",
        "place-qom-dastjerd",
        "describe-too_short",
        "callback-invalid",
        "callback-entered",
        "nid-invalid",
        "followup-invalid",
        "followup-mismatch",
        "followup-due",
        "retry-invalid",
        "retry-too_many",
        "registered-menu",
    ):
        assert expected in said
    distinct = sorted(set(heard))
    assert len(distinct) > 60
    with httpx.Client(timeout=10) as client:
        for url in distinct:
            reply = client.get(url)
            assert reply.status_code == 200, url
            assert reply.headers["content-type"].startswith("audio/"), url
            assert reply.content[:4] == b"RIFF" and reply.content[8:12] == b"WAVE", url


# --- hang-ups ----------------------------------------------------------------------------------


def test_hangup_halfway_leaves_no_ticket_and_late_events_are_harmless(
    server: IvrServer, phones: Callable[..., BrowserPhone], recording_wav: Path, calls: CallHelpers
) -> None:
    listed = server.ivr("tickets", "list", "--json", "--limit", "1000").stdout
    phone = phones()
    phone.dial()
    summary = phone.drive(["1", "4", "2", "1", "#"])
    assert stems(calls, summary)[-1] == "summary-menu"
    assert phone.hangup().status_code == 200
    call = call_row(server, phone.call_id or "")
    assert call is not None and call["outcome"] == "abandoned" and call["ended_at"] is not None

    late = phone.send({"type": "digits", "digits": "1"})  # "register", too late
    assert late.data["actions"] == [] and late.data["ended"] is True
    assert phone.send({"type": "timeout"}).data["actions"] == []
    reply = phone.client.post(
        phone.events_url or "",
        content=recording_wav.read_bytes(),
        headers={"Content-Type": "audio/wav"},
    )
    assert reply.status_code == 200 and reply.json()["actions"] == []
    assert phone.hangup().status_code == 200  # twice: the page's pagehide may repeat it

    assert server.ivr("tickets", "list", "--json", "--limit", "1000").stdout == listed
    call = call_row(server, phone.call_id or "")
    assert call is not None and call["outcome"] == "abandoned" and call["ticket_id"] is None
    # the description recorded before the hang-up, and not the late upload
    assert len(list(server.recordings.glob(f"{phone.call_id}-*"))) == 1
    assert server.alive()


# --- the same keys, the same ticket ------------------------------------------------------------


def test_same_keys_make_the_same_ticket_as_the_terminal_and_twilio(
    server: IvrServer,
    recording_wav: Path,
    recording_url: str,
    calls: CallHelpers,
) -> None:
    by_terminal, transcript = terminal_call(
        server, SAME_KEYS, recording_wav, caller="+989121234567"
    )
    assert by_terminal is not None, transcript
    with TwilioPhone(
        server.base_url, server.token, from_number="+989121234567", recording_url=recording_url
    ) as twilio:
        twilio.dial()
        by_twilio = calls.tracking(calls.drive(twilio, SAME_KEYS).plays)
        twilio.hangup()
    with BrowserPhone(server.base_url, caller="+989121234567", recording=recording_wav) as page:
        page.dial()
        by_browser = calls.tracking(page.drive(SAME_KEYS).plays)
        page.hangup()

    tickets = {
        name: json.loads(server.ivr("tickets", "show", number, "--json").stdout)
        for name, number in (("terminal", by_terminal), ("twilio", by_twilio), ("web", by_browser))
    }
    assert len({by_terminal, by_twilio, by_browser}) == 3
    assert {name: t["channel"] for name, t in tickets.items()} == {
        "terminal": "terminal",
        "twilio": "twilio",
        "web": "web",
    }
    expected = {k: tickets["terminal"][k] for k in COMPARED}
    assert expected["place"] == "siro" and expected["callback_number"] == STRANGER
    for ticket in tickets.values():
        assert {k: ticket[k] for k in COMPARED} == expected
        assert [h["kind"] for h in ticket["history"]] == ["created"]
        assert frames(Path(ticket["recording_path"])) == frames(recording_wav)
    for number in (by_terminal, by_twilio, by_browser):
        assert national_id(server, number) == "7731689956"


def test_persian_digits_from_the_page(
    server: IvrServer, phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    phone = phones("۰۹۱۲۱۲۳۴۵۶۷")
    phone.dial()
    keys = ["۱", "۴", "۲", "۲", "۰۹۳۵۱۱۱۲۲۳۳#", "۱", "۷۷۳۱۶۸۹۹۵۶#", "۱"]
    tracking = calls.tracking(phone.drive(keys).plays)
    ticket = json.loads(server.ivr("tickets", "show", tracking, "--json").stdout)
    assert (ticket["category"], ticket["callback_number"]) == ("consumer", STRANGER)
    assert ticket["caller_number"] == CALLER
    assert national_id(server, tracking) == "7731689956"


# --- who may use it ----------------------------------------------------------------------------


def test_try_is_closed_when_switched_off(start_server: Callable[..., IvrServer]) -> None:
    closed = start_server(try_enabled="false")
    with httpx.Client(base_url=closed.base_url, timeout=10) as client:
        assert client.get("/try").status_code == 404
        assert client.get("/try/flow").status_code == 404
        assert client.post("/try/calls", json={}).status_code == 404
        events = f"/try/calls/web-{'0' * 32}/events"
        assert client.post(events, json={"type": "timeout"}).status_code == 404
        assert client.get("/healthz").status_code == 200  # closed, not down
    assert closed.sql("SELECT count(*) FROM call")[0][0] == 0


def test_the_real_bind_address_decides_not_the_setting(
    start_server: Callable[..., IvrServer],
) -> None:
    """IVR_WEB_HOST says every interface, but ``ivr serve --host 127.0.0.1`` binds loopback
    alone: the page is open, since nobody else can reach it."""
    local = start_server(web_host="0.0.0.0")
    with httpx.Client(base_url=local.base_url, timeout=10) as client:
        page = client.get("/try")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<html dir="rtl" lang="fa">' in page.text
        assert client.get("/static/fonts/Vazirmatn-Regular.woff2").status_code == 200


def test_calls_are_rate_limited_per_address(server: IvrServer) -> None:
    crowded, other = next_loopback_address(), next_loopback_address()
    with httpx.Client(
        base_url=server.base_url,
        timeout=10,
        transport=httpx.HTTPTransport(local_address=crowded),
    ) as client:
        for _ in range(try_.CALLS_PER_WINDOW):
            assert client.post("/try/calls", json={}).status_code == 201
        refused = client.post("/try/calls", json={})
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= try_.WINDOW_S
    with BrowserPhone(server.base_url, address=other) as phone:
        assert phone.dial().waiting_for == "gather"  # another address is not held back


def test_events_are_rate_limited_per_address(server: IvrServer) -> None:
    address = next_loopback_address()
    events = f"/try/calls/web-{'0' * 32}/events"  # well formed, unknown: cheap to refuse
    with httpx.Client(
        base_url=server.base_url, timeout=10, transport=httpx.HTTPTransport(local_address=address)
    ) as client:
        codes = [
            client.post(events, json={"type": "timeout"}).status_code
            for _ in range(try_.EVENTS_PER_WINDOW + 1)
        ]
    assert codes[:-1] == [404] * try_.EVENTS_PER_WINDOW
    assert codes[-1] == 429


def test_requests_another_site_could_send_are_refused(
    server: IvrServer, phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    """A form or text/plain post needs no CORS preflight, so a foreign page could send one:
    nothing but JSON or audio changes anything."""
    calls_before = server.sql("SELECT count(*) FROM call")[0][0]
    phone = phones()
    simple = [
        ("text/plain", '{"caller": "09121234567"}'),
        ("application/x-www-form-urlencoded", "caller=09121234567"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--',
        ),
    ]
    for kind, body in simple:
        reply = phone.client.post("/try/calls", content=body, headers={"Content-Type": kind})
        assert reply.status_code == 415, kind
    assert server.sql("SELECT count(*) FROM call")[0][0] == calls_before

    phone.dial()
    state = call_row(server, phone.call_id or "")
    for kind, _body in simple:
        reply = phone.client.post(
            phone.events_url or "",
            content='{"type": "digits", "digits": "1"}',
            headers={"Content-Type": kind},
        )
        assert reply.status_code == 415, kind
    assert call_row(server, phone.call_id or "") == state
    assert stems(calls, phone.press("1")) == ["category-menu"]  # the call itself goes on


def test_bad_events_and_bodies_are_refused(
    server: IvrServer, phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    for event in (
        {"type": "dance"},
        {"type": "digits", "digits": "1; DROP TABLE"},
        {"type": "digits", "digits": "1" * 40},
        {"digits": "1"},
    ):
        assert phone.post_event(event).status_code == 422, event
    for raw in (b"[1, 2]", b"{not json", b'"text"'):
        reply = phone.client.post(
            phone.events_url or "", content=raw, headers={"Content-Type": "application/json"}
        )
        assert reply.status_code == 422, raw
    huge = phone.client.post(
        phone.events_url or "",
        content=b"{" + b" " * try_.MAX_JSON_BYTES + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    bad_caller = phone.client.post("/try/calls", json={"caller": "0" * 40})
    assert bad_caller.status_code == 422
    assert stems(calls, phone.press("*")) == ["main-menu"]  # none of it moved the call


def test_uploads_are_bounded(
    server: IvrServer, phones: Callable[..., BrowserPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    phone.drive(["1", "3"])
    assert phone.current.waiting_for == "record"
    too_big = b"RIFF" + b"\0" * try_.MAX_UPLOAD_BYTES
    reply = phone.client.post(
        phone.events_url or "", content=too_big, headers={"Content-Type": "audio/wav"}
    )
    assert reply.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(try_.MAX_UPLOAD_BYTES // (1 << 20) + 1):
            yield b"\0" * (1 << 20)

    streamed = phone.client.post(
        phone.events_url or "", content=chunks(), headers={"Content-Type": "audio/webm"}
    )
    assert streamed.status_code == 413
    assert not list(server.recordings.glob(f"*{phone.call_id}*"))
    assert stems(calls, phone.record()) == ["describe-review"]  # the call waited for a real one


def test_other_calls_cannot_be_driven_from_the_page(
    server: IvrServer, token: str, calls: CallHelpers
) -> None:
    """Only ids this transport made: a Twilio call's sid, however well known, is not one."""
    with TwilioPhone(server.base_url, token) as twilio:
        twilio.dial()
        before = call_row(server, twilio.call_sid)
        assert before is not None
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for call_id in (
                twilio.call_sid,
                f"web-{'0' * 32}",
                "web-../../etc",
                "..%2F..%2Fhealthz",
            ):
                reply = client.post(
                    f"/try/calls/{call_id}/events", json={"type": "digits", "digits": "0"}
                )
                assert reply.status_code == 404, call_id
        assert call_row(server, twilio.call_sid) == before
        assert calls.stems(twilio.press("*").plays) == ["main-menu"]
