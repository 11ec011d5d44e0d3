"""Whole calls through a real ``ivr serve`` over HTTP, driven by ``TwilioPhone`` as Twilio would.

One server serves the module (its tickets accumulate, so tests compare counts before and after
rather than absolute numbers); servers with other settings (no token, the development switch, a
public URL behind a proxy) are started where a test needs one.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import httpx
import pytest
from twilio_phone import Turn, TwilioPhone, parse_twiml

from ivr.tickets.tracking import tracking_from_sequence

if TYPE_CHECKING:
    from conftest import AudioFiles, CallHelpers, IvrServer, SecondProvince

CALLER = "+989121234567"
"""Calls from the mobile it then accepts as its callback number."""
CALLBACK = "09121234567"
STRANGER = "+989351112233"
"""Another mobile: not the ticket's callback number."""
PUBLIC_URL = "https://ivr.example.org"
WEBHOOKS = (
    "/twilio/voice",
    "/twilio/gather",
    "/twilio/timeout",
    "/twilio/recorded",
    "/twilio/status",
)
NEW_REQUEST = ("1", "1", "2", "2", "1", "#", "1")
"""New request, industry, Alghadir town, (record), confirm it, caller ID as callback, skip the
national ID, register."""
TEHRAN = ZoneInfo("Asia/Tehran")
FRAGMENTS = Path(__file__).resolve().parents[1] / "prompts" / "fragments.toml"


@dataclass
class Registration:
    """The module's reference ticket: a complete new request from ``CALLER``."""

    tracking: str
    phone: TwilioPhone
    ticket: dict


@pytest.fixture(scope="module")
def registration(server: IvrServer, recording_url: str, calls: CallHelpers) -> Registration:
    with TwilioPhone(
        server.base_url, server.token, from_number=CALLER, recording_url=recording_url
    ) as phone:
        phone.dial()
        last = calls.drive(phone, NEW_REQUEST)
        tracking = calls.tracking(last.plays)
        assert phone.hangup().status_code == 204
    ticket = json.loads(server.ivr("tickets", "show", tracking, "--json").stdout)
    return Registration(tracking, phone, ticket)


@pytest.fixture
def phones(server: IvrServer, recording_url: str) -> Iterator[Callable[..., TwilioPhone]]:
    """Factory for phones calling the module's server (closed after the test)."""
    made: list[TwilioPhone] = []

    def make(from_number: str = CALLER, **options: object) -> TwilioPhone:
        options.setdefault("recording_url", recording_url)
        phone = TwilioPhone(server.base_url, server.token, from_number=from_number, **options)
        made.append(phone)
        return phone

    yield make
    for phone in made:
        phone.close()


def ticket_count(server: IvrServer) -> int:
    return server.sql("SELECT count(*) FROM ticket")[0][0]


def call_row(server: IvrServer, call_sid: str) -> dict | None:
    rows = server.sql("SELECT * FROM call WHERE external_id = ?", (call_sid,))
    return dict(rows[0]) if rows else None


def steps(server: IvrServer, call_sid: str) -> list[tuple]:
    """The call's steps as (node, event, key, outcome)."""
    rows = server.sql(
        "SELECT s.node, s.event, s.key, s.outcome FROM call_step s JOIN call c ON c.id = s.call_id"
        " WHERE c.external_id = ? ORDER BY s.id",
        (call_sid,),
    )
    return [tuple(row) for row in rows]


def last_step(server: IvrServer, call_sid: str) -> tuple:
    return steps(server, call_sid)[-1]


def between(stems: list[str], start: str, end: str) -> list[str]:
    first = stems.index(start)
    return stems[first + 1 : stems.index(end, first)]


def spoken_words(fragment_stems: list[str]) -> str:
    """The Persian words of fragment files, from prompts/fragments.toml (stem = id with dashes)."""
    import tomllib

    def flatten(table: dict, prefix: str = "") -> dict[str, str]:
        flat: dict[str, str] = {}
        for key, value in table.items():
            if isinstance(value, dict) and "text" in value:  # { text = "…", say = "…" }
                flat[f"{prefix}{key}"] = value["text"]
            elif isinstance(value, dict):
                flat |= flatten(value, f"{prefix}{key}-")
            else:
                flat[f"{prefix}{key}"] = value
        return flat

    texts = flatten(tomllib.loads(FRAGMENTS.read_text(encoding="utf-8")))
    return " ".join(texts[s] for s in fragment_stems if texts[s])


def tehran_day(iso_utc: str) -> str:
    moment = datetime.fromisoformat(iso_utc.replace("Z", "+00:00"))
    return moment.astimezone(TEHRAN).date().isoformat()


def follow_up(calls: CallHelpers, phone: TwilioPhone, tracking: str) -> Turn:
    phone.dial()
    entry = phone.press("2")
    assert calls.stems(entry.plays) == ["followup-enter"]
    assert entry.gather is not None and entry.gather["finishOnKey"] == "#"
    return calls.drive(phone, [tracking + "#"])


def assert_report(calls: CallHelpers, server: IvrServer, turn: Turn, ticket: dict) -> None:
    """The follow-up report: registration date, category, status and due date, then the menu."""
    stems = calls.stems(turn.plays)
    assert stems[0] == "followup-registered_on" and stems[-1] == "followup-menu", stems
    created = between(stems, "followup-registered_on", "followup-registered_on_end")
    said = server.ivr("speak", "date", tehran_day(ticket["created_at"])).stdout.strip()
    assert spoken_words(created) == said
    assert between(stems, "followup-category", "followup-status") == [
        f"category-{ticket['category']}"
    ]
    assert stems[stems.index("followup-status") + 1] == f"status-{ticket['status']}"
    assert ticket["due_at"] is not None
    due = between(stems, "followup-due", "followup-menu")
    assert (
        spoken_words(due)
        == server.ivr("speak", "date", tehran_day(ticket["due_at"])).stdout.strip()
    )
    assert "followup-verify" not in stems and "followup-mismatch" not in stems
    assert turn.waiting_for == "gather"


# --- a new request from start to ticket --------------------------------------------------------


def test_new_request_registers_ticket(
    server: IvrServer, registration: Registration, recording_wav: Path, calls: CallHelpers
) -> None:
    phone, ticket = registration.phone, registration.ticket
    turns = [calls.stems(t.plays) for t in phone.turns]
    assert turns[0] == ["greeting", "main-menu"]
    assert turns[1] == ["category-menu"]
    assert turns[2][0] == "place-intro" and "place-qom-alghadir" in turns[2]
    assert turns[3] == ["describe-instructions"] and phone.turns[3].waiting_for == "record"
    assert turns[4] == ["describe-review"]
    assert turns[5][0] == "callback-your_number" and turns[5][-1] == "callback-confirm_menu"
    assert calls.spoken_digits(turns[5]) == CALLBACK
    assert turns[6] == ["nid-enter"] and phone.turns[6].gather["actionOnEmptyResult"] == "true"
    assert turns[7] == ["summary-intro", "category-industry", "place-qom-alghadir", "summary-menu"]
    assert turns[8][-1] == "registered-menu"

    tracking = registration.tracking
    assert len(tracking) == 10 and tracking.isdigit()
    assert ticket["tracking"] == tracking
    expected = {
        "status": "registered",
        "agency": None,
        "channel": "twilio",
        "province": "qom",
        "category": "industry",
        "place": "alghadir",
        "callback_number": CALLBACK,
        "caller_number": CALLER,
    }
    assert {key: ticket[key] for key in expected} == expected
    assert ticket["due_at"] > ticket["created_at"]
    assert [(h["kind"], h["new_value"], h["actor"]) for h in ticket["history"]] == [
        ("created", "registered", "caller")
    ]

    recording = Path(ticket["recording_path"])
    assert recording.parent == server.recordings
    assert recording.name.startswith(f"twilio-{phone.call_sid}-RE")
    assert recording.read_bytes() == recording_wav.read_bytes()

    stored = server.sql("SELECT id, national_id FROM ticket WHERE tracking = ?", (tracking,))
    assert stored[0]["national_id"] is None  # skipped with # alone
    call = call_row(server, phone.call_sid)
    assert call is not None
    assert (call["channel"], call["caller"], call["called"]) == ("twilio", CALLER, "124")
    assert (call["province"], call["channel_id"]) == ("qom", phone.call_sid)
    assert call["outcome"] == "ticket" and call["ticket_id"] == stored[0]["id"]
    assert call["ended_at"] is not None and call["ended_by"] == "caller"


def test_registered_menu_repeats_and_hands_over(
    phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    registered = calls.drive(phone, NEW_REQUEST)
    tracking = calls.tracking(registered.plays)
    again = phone.press("1")
    assert calls.tracking(again.plays) == tracking
    agent = phone.press("0")
    assert agent.waiting_for == "enqueue" and agent.enqueue == "124-agents"


# --- follow-up ---------------------------------------------------------------------------------


def test_followup_from_callback_number_hears_report(
    server: IvrServer,
    registration: Registration,
    phones: Callable[..., TwilioPhone],
    calls: CallHelpers,
) -> None:
    phone = phones(CALLER)
    report = follow_up(calls, phone, registration.tracking)
    assert_report(calls, server, report, registration.ticket)
    assert calls.stems(phone.press("1").plays) == calls.stems(report.plays)
    main = phone.press("*")
    assert calls.stems(main.plays) == ["main-menu"]


def test_followup_from_another_number_needs_last_four(
    server: IvrServer,
    registration: Registration,
    phones: Callable[..., TwilioPhone],
    calls: CallHelpers,
) -> None:
    phone = phones(STRANGER)
    verify = follow_up(calls, phone, registration.tracking)
    assert calls.stems(verify.plays) == ["followup-verify"]
    # One more than the 4 digits asked for, so the closing # ends the entry.
    assert verify.gather is not None and verify.gather["numDigits"] == "5"

    wrong = phone.press("1111")
    assert calls.stems(wrong.plays) == ["followup-mismatch", "followup-verify"]

    right = phone.press(CALLBACK[-4:])
    assert_report(calls, server, right, registration.ticket)


def test_followup_wrong_check_digit_is_refused_at_once(
    registration: Registration, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    tracking = registration.tracking
    wrong = tracking[:-1] + str((int(tracking[-1]) + 1) % 10)
    phone = phones(CALLER)
    refused = follow_up(calls, phone, wrong)
    assert calls.stems(refused.plays) == ["followup-invalid", "followup-enter"]
    swapped = tracking[:3] + tracking[4] + tracking[3] + tracking[5:]
    if swapped != tracking:
        assert calls.stems(calls.drive(phone, [swapped]).plays) == [
            "followup-invalid",
            "followup-enter",
        ]


def test_unknown_tracking_sounds_exactly_like_wrong_digits(
    server: IvrServer,
    registration: Registration,
    phones: Callable[..., TwilioPhone],
    calls: CallHelpers,
) -> None:
    unknown = tracking_from_sequence(987_654)
    assert server.ivr("tickets", "show", unknown, check=False).returncode == 1

    heard = []
    for tracking in (unknown, registration.tracking):
        phone = phones(STRANGER)
        follow_up(calls, phone, tracking)
        last = phone.press("1111")
        assert last.waiting_for == "gather"
        heard.append(calls.stems(phone.heard))
    assert heard[0] == heard[1]
    assert heard[0][-2:] == ["followup-mismatch", "followup-verify"]


# --- agents and failures -----------------------------------------------------------------------


def test_zero_goes_to_agents(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    agent = phone.press("0")
    assert agent.waiting_for == "enqueue" and agent.enqueue == "124-agents"
    assert calls.stems(agent.plays) == ["agent-transfer"]
    call = call_row(server, phone.call_sid)
    assert call is not None and call["outcome"] == "transferred"
    assert call["ended_by"] == "transferred"
    assert steps(server, phone.call_sid)[-2] == ("main", "digits", "0", "transfer_requested")


def test_three_silences_go_to_agents(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    first = phone.silence()
    assert urllib.parse.urlsplit(first.url).path.endswith("/twilio/timeout")
    assert calls.stems(first.plays) == ["retry-no_input", "main-menu"]
    assert phone.silence().waiting_for == "gather"
    third = phone.silence()
    assert third.waiting_for == "enqueue" and third.enqueue == "124-agents"
    assert calls.stems(third.plays) == ["retry-too_many", "agent-transfer"]
    assert steps(server, phone.call_sid)[-2] == (
        "main",
        "timeout",
        None,
        "transfer_after_failures",
    )


def test_three_wrong_keys_are_not_called_no_answer(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    third = calls.drive(phone, ["7", "8", "9"])
    assert third.waiting_for == "enqueue"
    assert calls.stems(third.plays) == ["retry-too_many_invalid", "agent-transfer"]
    assert steps(server, phone.call_sid)[-2] == ("main", "digits", "9", "transfer_after_failures")


def test_three_wrong_last_four_say_the_details_did_not_match(
    registration: Registration, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones(STRANGER)
    verify = follow_up(calls, phone, registration.tracking)
    assert calls.stems(verify.plays) == ["followup-verify"]
    third = calls.drive(phone, ["1111#", "2222#", "3333#"])
    assert calls.stems(third.plays) == ["retry-too_many_mismatch", "agent-transfer"]


# --- the caller's recording --------------------------------------------------------------------


def test_listen_plays_own_recording_to_its_caller_only(
    server: IvrServer, phones: Callable[..., TwilioPhone], recording_wav: Path, calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    calls.drive(phone, ["1", "3"])  # new request, trade: straight to the description
    review = phone.record()
    assert calls.stems(review.plays) == ["describe-review"]
    listen = phone.press("1")
    assert calls.stems(listen.plays)[1:] == ["describe-review"]
    url = listen.plays[0]
    parts = urllib.parse.urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == server.base_url
    assert parts.path.startswith("/twilio/recording/twilio-")

    with httpx.Client(timeout=10) as client:
        audio = client.get(url)
        assert audio.status_code == 200
        assert audio.headers["content-type"] == "audio/wav"
        assert audio.content == recording_wav.read_bytes()

        base = f"{server.base_url}{parts.path}"
        assert client.get(f"{base}?token={'0' * 32}").status_code == 404
        other_name = server.base_url + "/twilio/recording/other.wav?" + parts.query
        assert client.get(other_name).status_code == 404
        assert client.get(base).status_code != 200  # no token at all

    again = phone.press("3")
    assert calls.stems(again.plays) == ["describe-instructions"] and again.waiting_for == "record"


def test_short_or_empty_recording_is_asked_again(
    phones: Callable[..., TwilioPhone], audio_files: AudioFiles, calls: CallHelpers
) -> None:
    phone = phones(recording_url=audio_files.url("short.wav"))
    phone.dial()
    calls.drive(phone, ["1", "3"])
    short = phone.record()
    assert calls.stems(short.plays) == ["describe-too_short", "describe-instructions"]
    assert short.waiting_for == "record"
    empty = phone.record(duration=0)  # Twilio skips the action: our <Redirect> reports it
    assert calls.stems(empty.plays) == ["describe-too_short", "describe-instructions"]
    assert empty.waiting_for == "record"


def test_a_recording_the_server_cannot_fetch_is_not_too_short(
    server: IvrServer,
    phones: Callable[..., TwilioPhone],
    audio_files: AudioFiles,
    calls: CallHelpers,
) -> None:
    """Twilio recorded the caller, but the download fails (here a 404): the caller hears that
    the system could not save it and is asked again, and the step says what happened."""
    phone = phones(recording_url=audio_files.url("gone.wav"))
    phone.dial()
    calls.drive(phone, ["1", "3"])
    lost = phone.record()
    assert calls.stems(lost.plays) == ["describe-not_saved", "describe-instructions"]
    assert lost.waiting_for == "record"
    assert last_step(server, phone.call_sid) == ("describe", "recording_failed", None, "not_saved")
    phone.recording_url = audio_files.url("description.wav")
    assert calls.stems(phone.record().plays) == ["describe-review"]


def test_recording_url_without_extension_is_fetched_as_wav(
    server: IvrServer,
    phones: Callable[..., TwilioPhone],
    audio_files: AudioFiles,
    recording_wav: Path,
    calls: CallHelpers,
) -> None:
    """Twilio's RecordingUrl has no extension; the WAV is at the same URL plus ``.wav``."""
    phone = phones(recording_url=audio_files.url("description"))
    phone.dial()
    calls.drive(phone, ["1", "3"])
    review = phone.record()
    assert calls.stems(review.plays) == ["describe-review"]
    stored = next(server.recordings.glob(f"twilio-{phone.call_sid}-*.wav"))
    assert stored.read_bytes() == recording_wav.read_bytes()


def test_caller_without_usable_number_types_a_callback(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones("anonymous")
    phone.dial()
    enter = calls.drive(phone, ["1", "5", "2"])  # permits → describe → (record) → confirm
    assert calls.stems(enter.plays) == ["callback-enter"]
    entered = calls.drive(phone, ["02537123456#"])
    stems = calls.stems(entered.plays)
    assert stems[0] == "callback-entered" and stems[-1] == "callback-confirm_menu"
    assert calls.spoken_digits(stems) == "02537123456"
    registered = calls.drive(phone, ["1", "#", "1"])
    ticket = json.loads(
        server.ivr("tickets", "show", calls.tracking(registered.plays), "--json").stdout
    )
    assert (ticket["category"], ticket["place"]) == ("permits", None)
    assert (ticket["caller_number"], ticket["callback_number"]) == ("anonymous", "02537123456")


# --- every prompt the calls play exists --------------------------------------------------------


def test_every_play_url_is_audio(
    server: IvrServer,
    registration: Registration,
    phones: Callable[..., TwilioPhone],
    audio_files: AudioFiles,
    calls: CallHelpers,
) -> None:
    heard: list[str] = list(registration.phone.heard)

    long_way = phones(recording_url=audio_files.url("short.wav"))
    long_way.dial()
    calls.drive(long_way, ["1", "1", "8", "*", "2"])  # industry, zones, repeat, Dastjerd
    long_way.record()  # too short
    long_way.recording_url = audio_files.url("description.wav")
    calls.drive(long_way, ["1", "3", "2"])  # listen, record again, confirm
    calls.drive(long_way, ["2", "123#", "09351112233#", "1"])  # another number: invalid, then valid
    calls.drive(long_way, ["1234567890#", "7731689956#", "*", "1", "1", "0"])
    assert long_way.current is not None and long_way.current.enqueue == "124-agents"
    heard += long_way.heard

    follow = phones(STRANGER)
    tracking = registration.tracking
    follow_up(calls, follow, tracking[:-1] + str((int(tracking[-1]) + 1) % 10))  # wrong check digit
    calls.drive(follow, [tracking, "1111", CALLBACK[-4:], "1", "0"])
    heard += follow.heard

    lost = phones()
    lost.dial()
    calls.drive(lost, ["9", "_", "_"])
    heard += lost.heard

    stems = set(calls.stems(heard))
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
        assert expected in stems

    distinct = sorted(set(heard))
    assert len(distinct) > 60
    with httpx.Client(timeout=10) as client:
        for url in distinct:
            assert url.startswith(server.base_url + "/"), url
            reply = client.get(url)
            assert reply.status_code == 200, url
            assert reply.headers["content-type"].startswith("audio/"), url
            assert reply.content[:4] == b"RIFF" and reply.content[8:12] == b"WAVE", url


# --- signatures --------------------------------------------------------------------------------


def forgeries(phone: TwilioPhone, path: str, params: dict[str, str]) -> dict[str, str | None]:
    """Signatures Twilio never sent for POST ``params`` to ``path``."""
    url = phone.url_for(path)
    other_path = "/twilio/voice" if path != "/twilio/voice" else "/twilio/gather"
    return {
        "unsigned": None,
        "empty": "",
        "garbage": "Zm9yZ2VkLXNpZ25hdHVyZQ==",
        "other token": TwilioPhone(phone.base_url, "not-the-token").sign(url, params),
        "other params": phone.sign(url, dict(params, From=STRANGER)),
        "other url": phone.sign(phone.url_for(other_path), params),
    }


WEBHOOK_EXTRAS = {
    "/twilio/voice": {},
    "/twilio/gather": {"Digits": "1"},
    "/twilio/timeout": {},
    "/twilio/recorded": {"RecordingUrl": "", "RecordingDuration": "3", "Digits": "#"},
    "/twilio/status": {"CallStatus": "completed", "CallDuration": "5"},
}


@pytest.mark.parametrize("path", WEBHOOKS)
def test_forged_or_unsigned_webhooks_are_refused(
    server: IvrServer, phones: Callable[..., TwilioPhone], recording_url: str, path: str
) -> None:
    phone = phones()
    extras = dict(WEBHOOK_EXTRAS[path])
    if "RecordingUrl" in extras:
        extras["RecordingUrl"] = recording_url
    params = phone.base_params() | extras
    tickets_before = ticket_count(server)
    recordings_before = sorted(server.recordings.glob("*")) if server.recordings.exists() else []
    for name, signature in forgeries(phone, path, params).items():
        reply = phone.post_raw(path, params, signature)
        assert reply.status_code == 403, f"{name}: {reply.status_code} {reply.text}"
        assert "<Response" not in reply.text
    assert call_row(server, phone.call_sid) is None
    assert ticket_count(server) == tickets_before
    now = sorted(server.recordings.glob("*")) if server.recordings.exists() else []
    assert now == recordings_before
    genuine = phone.post_raw(path, params, phone.sign(phone.url_for(path), params))
    assert genuine.status_code in (200, 204)


def test_forged_keypress_cannot_register_or_move_a_call(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    phone = phones()
    phone.dial()
    summary = calls.drive(phone, ["1", "4", "2", "1", "#"])  # consumer → describe → … → summary
    assert calls.stems(summary.plays)[-1] == "summary-menu"
    listed = json.loads(server.ivr("tickets", "list", "--json", "--limit", "1000").stdout)
    call = call_row(server, phone.call_sid)
    assert call is not None

    params = phone.base_params() | {"Digits": "1"}
    for name, signature in forgeries(phone, "/twilio/gather", params).items():
        assert phone.post_raw("/twilio/gather", params, signature).status_code == 403, name

    assert json.loads(server.ivr("tickets", "list", "--json", "--limit", "1000").stdout) == listed
    after = call_row(server, phone.call_sid)
    assert after is not None and after["state"] == call["state"]
    steps = server.sql("SELECT count(*) FROM call_step WHERE call_id = ?", (call["id"],))[0][0]
    # the genuine call goes on from the summary, untouched by the forgeries
    assert calls.stems(phone.press("2").plays) == ["category-menu"]
    more = server.sql("SELECT count(*) FROM call_step WHERE call_id = ?", (call["id"],))[0][0]
    assert more == steps + 1


def post_everything(target: IvrServer, phone: TwilioPhone, signed: bool) -> list[int]:
    codes = []
    for path in WEBHOOKS:
        params = phone.base_params() | WEBHOOK_EXTRAS[path]
        signature = phone.sign(phone.url_for(path), params) if signed else None
        codes.append(phone.post_raw(path, params, signature).status_code)
    return codes


def test_server_without_token_refuses_everything(
    start_server: Callable[..., IvrServer], token: str
) -> None:
    closed = start_server(token=None)
    with TwilioPhone(closed.base_url, token) as phone:
        assert post_everything(closed, phone, signed=False) == [403] * len(WEBHOOKS)
        assert post_everything(closed, phone, signed=True) == [403] * len(WEBHOOKS)
    assert closed.sql("SELECT count(*) FROM call")[0][0] == 0
    assert httpx.get(f"{closed.base_url}/healthz").status_code == 200  # closed, not down


def test_insecure_dev_switch_opens_unsigned_routes_only_without_token(
    start_server: Callable[..., IvrServer], calls: CallHelpers, token: str
) -> None:
    dev = start_server(token=None, twilio_insecure_dev="true")
    with TwilioPhone(dev.base_url, None) as phone:
        assert calls.stems(phone.dial().plays) == ["greeting", "main-menu"]
        agent = phone.press("0")
        assert agent.enqueue == "124-agents"
    assert dev.sql("SELECT outcome FROM call")[0][0] == "transferred"

    guarded = start_server(token=token, twilio_insecure_dev="true")
    with TwilioPhone(guarded.base_url, token) as phone:
        assert post_everything(guarded, phone, signed=False) == [403] * len(WEBHOOKS)
        params = phone.base_params()
        signature = phone.sign(phone.url_for("/twilio/voice"), params)
        assert phone.post_raw("/twilio/voice", params, signature).status_code == 200


def test_public_url_behind_proxy(start_server: Callable[..., IvrServer], token: str) -> None:
    proxied = start_server(public_url=PUBLIC_URL + "/")
    with TwilioPhone(proxied.base_url, token) as phone:
        params = phone.base_params()
        local = phone.sign(phone.url_for("/twilio/voice"), params)
        assert phone.post_raw("/twilio/voice", params, local).status_code == 403

        public = phone.sign(PUBLIC_URL + "/twilio/voice", params)
        first = phone.post_raw("/twilio/voice", params, public)
        assert first.status_code == 200
        assert "<Gather" in first.text and "<Redirect" in first.text
        assert f"<Play>{PUBLIC_URL}/prompts/fa/greeting.wav</Play>" in first.text
        # Twilio's signature may name the default port; another port is another URL.
        with_port = phone.sign("https://ivr.example.org:443/twilio/voice", params)
        assert phone.post_raw("/twilio/voice", params, with_port).text == first.text
        other_port = phone.sign("https://ivr.example.org:8443/twilio/voice", params)
        assert phone.post_raw("/twilio/voice", params, other_port).status_code == 403

        params = dict(params, CallStatus="in-progress", Digits="0")
        agent = phone.post_raw(
            "/twilio/gather", params, phone.sign(PUBLIC_URL + "/twilio/gather", params)
        )
        assert agent.status_code == 200
        assert f"<Play>{PUBLIC_URL}/prompts/fa/agent-transfer.wav</Play>" in agent.text
        assert ">124-agents</Enqueue>" in agent.text
        assert f'waitUrl="{PUBLIC_URL}/twilio/queue/wait"' in agent.text
        assert f'action="{PUBLIC_URL}/twilio/queue/done"' in agent.text


# --- hang-ups ----------------------------------------------------------------------------------


def test_hangup_halfway_leaves_no_ticket_and_late_webhooks_are_harmless(
    server: IvrServer, phones: Callable[..., TwilioPhone], recording_url: str, calls: CallHelpers
) -> None:
    listed = server.ivr("tickets", "list", "--json", "--limit", "1000").stdout
    phone = phones()
    phone.dial()
    summary = calls.drive(phone, ["1", "4", "2", "1", "#"])
    assert calls.stems(summary.plays)[-1] == "summary-menu"
    assert phone.hangup().status_code == 204
    call = call_row(server, phone.call_sid)
    assert call is not None and call["outcome"] == "abandoned" and call["ended_at"] is not None

    # Webhooks that arrive after the hang-up (retries, races) change nothing and never fail.
    late = phone.press("1")  # "register", too late
    assert late.status_code == 200 and late.waiting_for == "end" and late.plays == []
    for path, extras in (
        ("/twilio/timeout", {}),
        ("/twilio/gather", {"Digits": "1"}),
        ("/twilio/recorded", {"RecordingUrl": recording_url, "RecordingDuration": "3"}),
    ):
        params = phone.base_params() | extras
        reply = phone.post_raw(path, params, phone.sign(phone.url_for(path), params))
        assert reply.status_code == 200 and "<Response" in reply.text, path
    assert phone.hangup().status_code == 204  # a repeated status callback

    assert server.ivr("tickets", "list", "--json", "--limit", "1000").stdout == listed
    call = call_row(server, phone.call_sid)
    assert call is not None and call["outcome"] == "abandoned" and call["ticket_id"] is None
    assert server.alive()


def test_a_hangup_another_node_saved_is_not_undone_by_a_late_turn(
    start_server: Callable[..., IvrServer], calls: CallHelpers
) -> None:
    """The node that gave a call's last answer takes its next turn from memory; another node
    on the same database saves the hangup meanwhile. A late request for that turn on the
    first node changes nothing: the call stays ended, with no step after its hangup."""
    node = start_server()
    other = start_server(database_url=f"sqlite:///{node.db_path}")
    with TwilioPhone(node.base_url, node.token) as phone:
        phone.dial()
        categories = phone.press("1")
        assert categories.gather is not None and "?turn=2" in categories.gather["action"]
        assert phone.hangup(f"{other.base_url}/twilio/status").status_code == 204
        ended = call_row(node, phone.call_sid)
        assert ended is not None and ended["outcome"] == "abandoned" and ended["ended_at"]
        recorded = steps(node, phone.call_sid)

        phone.call_status = "in-progress"  # a gather Twilio sent before it saw the hangup
        late = phone.post_raw(
            categories.gather["action"],
            params := phone.base_params() | {"Digits": "1"},
            phone.sign(categories.gather["action"], params),
        )
        assert late.status_code == 200 and "<Response" in late.text
    assert call_row(node, phone.call_sid) == ended
    assert steps(node, phone.call_sid) == recorded
    assert node.alive() and other.alive()


def test_status_callbacks_for_unknown_or_live_calls(
    server: IvrServer, phones: Callable[..., TwilioPhone], calls: CallHelpers
) -> None:
    stranger = phones()
    assert stranger.hangup().status_code == 204  # never dialled here
    assert call_row(server, stranger.call_sid) is None

    live = phones()
    live.dial()
    params = live.base_params() | {"CallStatus": "in-progress"}
    signature = live.sign(live.url_for("/twilio/status"), params)
    assert live.post_raw("/twilio/status", params, signature).status_code == 204
    call = call_row(server, live.call_sid)
    assert call is not None and call["outcome"] is None and call["ended_at"] is None
    assert calls.stems(live.press("*").plays) == ["main-menu"]


def test_public_url_with_path_prefix_keeps_webhooks_under_it(
    start_server: Callable[..., IvrServer], token: str
) -> None:
    prefix = "https://proxy.example.org/ivr124"
    proxied = start_server(public_url=prefix)
    with TwilioPhone(proxied.base_url, token) as phone:
        params = phone.base_params()
        voice_url = prefix + "/twilio/voice"  # what Twilio is configured with, and signs
        first = phone.post_raw("/twilio/voice", params, phone.sign(voice_url, params))
        assert first.status_code == 200
        assert f"<Play>{prefix}/prompts/fa/greeting.wav</Play>" in first.text
        verbs = parse_twiml(first.text)
        targets = [verbs[0].get("action"), (verbs[1].text or "").strip()]
        for target in targets:
            assert urllib.parse.urljoin(voice_url, target).startswith(prefix + "/"), target


# --- the called number chooses the province ----------------------------------------------------


def test_the_called_number_chooses_the_province(
    start_server: Callable[..., IvrServer],
    second_province: SecondProvince,
    recording_url: str,
    calls: CallHelpers,
) -> None:
    """``IVR_PROVINCES_DIR`` holds Qom and a second province claiming 086124: a call to that
    number hears its places (rendered by the prompts build) and files its ticket there; a call
    to 124 is Qom's, the server's own province."""
    node = start_server(**second_province.settings)
    tickets = {}
    for to, province, place in (
        (second_province.number, second_province.code, second_province.first_town),
        ("124", "qom", "shokouhieh"),
    ):
        with TwilioPhone(
            node.base_url, node.token, to_number=to, recording_url=recording_url
        ) as phone:
            phone.dial()
            places = calls.drive(phone, ["1", "1"])  # new request, industry
            stems = calls.stems(places.plays)
            assert stems[:2] == ["place-intro", f"place-{province}-{place}"], stems
            other = "qom" if province != "qom" else second_province.code
            assert not [s for s in stems if s.startswith(f"place-{other}-")], stems
            audio = httpx.get(places.plays[1], timeout=10)
            assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
            registered = calls.drive(phone, ["1", "2", "1", "#", "1"])
            tracking = calls.tracking(registered.plays)
            phone.hangup()
            tickets[to] = json.loads(node.ivr("tickets", "show", tracking, "--json").stdout)
            call = call_row(node, phone.call_sid)
            assert call is not None
            assert (call["called"], call["province"]) == (to, province)
        assert (tickets[to]["province"], tickets[to]["place"]) == (province, place)


# --- the system fails under a call -------------------------------------------------------------


def test_database_failures_are_told_to_the_caller_who_reaches_a_person(
    start_server: Callable[..., IvrServer],
    recording_url: str,
    calls: CallHelpers,
) -> None:
    """The tickets table breaks under a follow-up: the session turns the failed lookup into a
    transfer whose step says the system was unavailable. Then the call table breaks too: the
    webhook cannot load the call, and the caller still hears why and is enqueued."""
    node = start_server()
    with TwilioPhone(node.base_url, node.token, recording_url=recording_url) as phone:
        phone.dial()
        tracking = calls.tracking(calls.drive(phone, NEW_REQUEST).plays)
        phone.hangup()

    def rename(old: str, new: str) -> None:
        connection = sqlite3.connect(node.db_path, timeout=10)
        try:
            connection.execute(f'ALTER TABLE "{old}" RENAME TO "{new}"')
            connection.commit()
        finally:
            connection.close()

    rename("ticket", "ticket_away")
    try:
        with TwilioPhone(node.base_url, node.token) as phone:
            transferred = follow_up(calls, phone, tracking)
            assert calls.stems(transferred.plays) == ["system-unavailable"]
            assert transferred.waiting_for == "enqueue" and transferred.enqueue == "124-agents"
            assert last_step(node, phone.call_sid) == (
                "followup.lookup",
                "system_failed",
                None,
                "transfer_unavailable",
            )
            assert call_row(node, phone.call_sid)["ended_by"] == "transferred"  # type: ignore[index]

        # The node that answered a call's last turn remembers it (and goes on without the
        # database); another node of the cluster, on the same database, has only the database.
        other = start_server(database_url=f"sqlite:///{node.db_path}")
        with TwilioPhone(node.base_url, node.token) as phone:
            phone.dial()
            url = f"{other.base_url}/twilio/gather?turn=1"
            params = phone.base_params() | {"Digits": "2"}
            rename("call", "call_away")
            try:  # the call's state cannot be loaded
                lost = phone.client.post(
                    url, data=params, headers={"X-Twilio-Signature": phone.sign(url, params)}
                )
            finally:
                rename("call_away", "call")
            assert lost.status_code == 200
            verbs = parse_twiml(lost.text)
            plays = [e.text or "" for verb in verbs for e in verb.iter("Play")]
            assert calls.stems(plays) == ["system-unavailable"]
            assert [v.text for v in verbs if v.tag == "Enqueue"] == ["124-agents"]
    finally:
        rename("ticket_away", "ticket")
    assert "could not advance Twilio call" in other.stderr()
    assert node.alive() and other.alive()
