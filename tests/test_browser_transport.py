"""The browser transport by itself: actions out as JSON, the page's JSON and audio in as events,
the access switch and the rate limiter. The whole path over HTTP is in test_try_calls.py."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import pytest
from needs import need

from ivr.flow import actions as act
from ivr.flow.events import Digits, Hangup, RecordingFinished, Timeout
from ivr.prompts import file_stem
from ivr.services import build_services
from ivr.settings import Settings
from ivr.telephony import browser
from ivr.web.ratelimit import SlidingWindowLimiter
from ivr.web.try_ import is_loopback, try_enabled

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


def url(audio: act.Audio) -> str:
    if isinstance(audio, act.Recorded):
        return f"/rec/{Path(audio.path).name}"
    return f"/prompts/fa/{file_stem(audio)}.wav"


def test_render_every_action() -> None:
    actions = (
        act.Play(("describe.instructions",)),
        act.Record(120, "#"),
    )
    rendered = browser.render(actions, url, lambda pid: f"text of {pid}")
    assert rendered == [
        {
            "type": "play",
            "prompts": [
                {
                    "id": "describe.instructions",
                    "url": "/prompts/fa/describe-instructions.wav",
                    "text": "text of describe.instructions",
                }
            ],
        },
        {"type": "record", "max_s": 120, "finish_on_key": "#", "beep": True},
    ]
    gather = act.Gather(("nid.enter", act.Recorded("/x/web-1.wav")), 11, "#", 5, allow_empty=True)
    assert browser.render((gather,), url, str.upper) == [
        {
            "type": "gather",
            "prompts": [
                {"id": "nid.enter", "url": "/prompts/fa/nid-enter.wav", "text": "NID.ENTER"},
                {"id": None, "recording": True, "url": "/rec/web-1.wav", "text": ""},
            ],
            "max_digits": 11,
            "finish_on_key": "#",
            "timeout_s": 5,
            "allow_empty": True,
        }
    ]
    ends = (act.Play(("agent.transfer",)), act.Transfer("124-agents"))
    assert browser.render(ends, url, str)[-1] == {"type": "transfer", "queue": "124-agents"}
    assert browser.render((act.HangUp(),), url, str) == [{"type": "hangup"}]
    assert browser.ends_call(ends) and browser.ends_call(())
    assert not browser.ends_call((gather,)) and not browser.ends_call(actions)


@pytest.mark.parametrize(
    ("data", "event"),
    [
        ({"type": "digits", "digits": "1"}, Digits("1")),
        ({"type": "digits", "digits": ""}, Digits("")),
        ({"type": "digits", "digits": "۰۹۱۲۱۲۳۴۵۶۷"}, Digits("09121234567")),
        ({"type": "digits", "digits": "٤*#"}, Digits("4*#")),
        ({"type": "timeout"}, Timeout()),
        ({"type": "hangup"}, Hangup()),
        ({"type": "recording"}, RecordingFinished(None, 0.0)),
    ],
)
def test_events_from_json(data: dict, event: object) -> None:
    assert browser.event_from_json(data) == event


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"type": "dance"},
        {"type": "digits"},
        {"type": "digits", "digits": 12},
        {"type": "digits", "digits": "12a"},
        {"type": "digits", "digits": "1" * 33},
        {"type": "digits", "digits": "²"},
    ],
)
def test_bad_events_are_refused(data: dict) -> None:
    with pytest.raises(browser.BadEvent):
        browser.event_from_json(data)


def test_caller_from_json() -> None:
    assert browser.caller_from_json({"caller": "۰۹۱۲۱۲۳۴۵۶۷"}) == "09121234567"
    assert browser.caller_from_json({"caller": "  "}) is None
    assert browser.caller_from_json({"caller": None}) is None
    with pytest.raises(browser.BadEvent):
        browser.caller_from_json({"caller": "0" * 33})
    with pytest.raises(browser.BadEvent):
        browser.caller_from_json({"caller": 9121234567})


def test_call_ids_are_unguessable_and_checked() -> None:
    ids = {browser.new_call_id() for _ in range(100)}
    assert len(ids) == 100 and all(browser.is_call_id(i) for i in ids)
    for other in ("CA0123", "web-", "web-" + "g" * 32, "web-" + "0" * 31, "../web-" + "0" * 32):
        assert not browser.is_call_id(other)


def test_containers_are_told_by_their_first_bytes() -> None:
    assert browser.container_of(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "wav"
    assert browser.container_of(b"\x1a\x45\xdf\xa3\x9f\x42\x86") == "matroska"
    assert browser.container_of(b"OggS\x00\x02") == "ogg"
    assert browser.container_of(b"\x00\x00\x00\x20ftypM4A ") == "mov"
    for other in (b"", b"ID3\x04", b"<html>", b"RIFF\x00\x00\x00\x00AVI "):
        assert browser.container_of(other) is None


def test_save_recording_converts_to_the_prompts_format_and_caps_its_length(
    tmp_path: Path,
) -> None:
    need("ffmpeg", "ffmpeg")
    source = tmp_path / "long.webm"
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=5"]
    stereo = ["-ac", "2", "-ar", "48000", "-c:a", "libopus"]
    subprocess.run(["ffmpeg", "-loglevel", "error", *tone, *stereo, str(source)], check=True)
    target = tmp_path / "out" / "web-call.wav"
    finished = browser.save_recording(source.read_bytes(), target, max_s=3)
    assert finished.path == str(target)
    assert finished.duration_s == pytest.approx(3.0, abs=0.05)
    with wave.open(str(target)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    assert sorted(p.name for p in target.parent.iterdir()) == ["web-call.wav"]  # no leftovers


def test_save_recording_refuses_what_is_not_audio(tmp_path: Path) -> None:
    target = tmp_path / "web-call.wav"
    assert browser.save_recording(b"<html>not audio</html>", target, 120) == RecordingFinished(
        None, 0.0
    )
    broken = b"\x1a\x45\xdf\xa3" + b"\x00" * 200  # looks like WebM, is not
    assert browser.save_recording(broken, target, 120) == RecordingFinished(None, 0.0)
    assert list(tmp_path.iterdir()) == []


def test_calls_answer_a_database_outage_with_the_unavailable_prompt(tmp_path: Path) -> None:
    """The call table gone under a running server: the call is answered (the session does not
    need the database to greet), and the next event, whose state cannot be read, hears a
    Persian sentence and goes to an agent instead of failing."""
    settings = Settings(
        storage_dir=tmp_path,
        prompts_dir=PROMPTS,
        database_url=f"sqlite:///{tmp_path / 'empty.db'}",
    )
    services = build_services(settings)  # an embedded database is created and upgraded
    with services.calls.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE call RENAME TO call_gone")
    calls = browser.BrowserCalls(services, "qom", "124-agents", settings.recordings_dir)
    started = calls.start("09121234567")
    assert isinstance(started.actions[-1], act.Gather) and not started.ended
    fed = calls.feed(started.call_id, Digits("1"))
    assert fed is not None and fed.ended
    assert fed.actions == (act.Play(("system.unavailable",)), act.Transfer("124-agents"))
    assert calls.feed("not-a-call", Digits("1")) is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("ivr.example.org", False),
    ],
)
def test_try_is_open_by_default_only_on_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert try_enabled(Settings(web_host=host)) is loopback
    assert try_enabled(Settings(web_host=host, try_enabled=True)) is True
    assert try_enabled(Settings(web_host=host, try_enabled=False)) is False


def test_try_enabled_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_WEB_HOST", "0.0.0.0")
    assert try_enabled(Settings()) is False
    monkeypatch.setenv("IVR_TRY_ENABLED", "true")
    assert try_enabled(Settings()) is True


def test_sliding_window_limiter() -> None:
    now = [1000.0]
    limiter = SlidingWindowLimiter(3, 60, max_keys=2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.retry_after("a") == 60
    assert limiter.allow("b")  # another address has its own window
    now[0] += 30
    assert not limiter.allow("a") and limiter.retry_after("a") == 30
    now[0] += 30.5  # the first three hits have left the window
    assert limiter.allow("a") and limiter.retry_after("a") == 0
    assert limiter.allow("c")  # a third address: the least recently seen ("b") is forgotten
    assert set(limiter._hits) == {"a", "c"}
