"""The /prompts listening page through a real `ivr serve`: every prompt with its text, voice,
length and player; the box playing numbers, digits and dates as the IVR plays them; and a
headless Chromium proving the page's <audio> elements really load."""

from __future__ import annotations

import datetime
import html
import io
import re
import wave
from pathlib import Path

import httpx
import pytest
from needs import need

from ivr import speech
from ivr.prompts import audio_path, file_stem, load_catalog, read_manifest, read_wav_info

CHROMIUM = "/usr/bin/chromium"


def get(server, path: str, **params: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}{path}", params=params, timeout=30)


def rows(page: str) -> dict[str, list[str]]:
    """Prompt id → the cells of its row (text, voice, seconds, player HTML)."""
    found = {}
    for match in re.finditer(r'<tr id="prompt-([^"]+)">(.*?)</tr>', page, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", match[2], re.S)
        found[html.unescape(match[1])] = [html.unescape(c.strip()) for c in cells]
    return found


def wav_seconds(body: bytes) -> float:
    with wave.open(io.BytesIO(body), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        return w.getnframes() / w.getframerate()


def test_the_page_lists_every_prompt_with_text_voice_length_and_player(
    server, prompts_built: Path
) -> None:
    response = get(server, "/prompts")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<html dir="rtl" lang="fa">' in page
    listed = rows(page)
    catalog = load_catalog(prompts_built)
    manifest = read_manifest(prompts_built)
    assert set(listed) == set(catalog)
    for prompt_id, prompt in catalog.items():
        _id, text, voice, seconds, player = listed[prompt_id]
        assert text == prompt.text
        assert voice == manifest[prompt_id]["voice"]
        duration = read_wav_info(audio_path(prompts_built, prompt_id)).duration
        assert float(seconds) == pytest.approx(duration, abs=0.006)
        assert f'src="/prompts/fa/{file_stem(prompt_id)}.wav"' in player
    assert listed["category.menu"][2] in {"mbrola-ir1", "espeak-fa"}
    assert listed["pause"][2] == "silence"


def test_each_player_source_serves_the_prompt_audio(server, prompts_built: Path) -> None:
    for prompt_id in ("greeting", "num.1000-o", "month.3"):
        response = get(server, f"/prompts/fa/{file_stem(prompt_id)}.wav")
        assert response.status_code == 200
        assert response.headers["content-type"] == "audio/wav"
        assert response.content == audio_path(prompts_built, prompt_id).read_bytes()


@pytest.mark.parametrize(
    ("kind", "value", "words", "fragments"),
    [
        ("number", "۱۵۸۷", "هزار و پانصد و هشتاد و هفت", speech.number_fragments(1587)),
        (
            "digits",
            "09121234567",
            "صفر نه یک دو یک دو سه چهار پنج شش هفت",
            speech.digits_fragments("09121234567", (4, 3, 4)),
        ),
        (
            "date",
            "1405/03/15",
            "پانزدهم خرداد هزار و چهارصد و پنج",
            speech.date_fragments(datetime.date(2026, 6, 5)),
        ),
    ],
)
def test_the_box_plays_the_fragments_in_sequence(
    server, prompts_built: Path, kind: str, value: str, words: str, fragments: list[str]
) -> None:
    page = get(server, "/prompts", kind=kind, value=value)
    assert page.status_code == 200
    assert f'<p class="words">{words}</p>' in page.text
    assert " ".join(fragments) in page.text
    src = html.unescape(re.search(r'<audio id="spoken-audio"[^>]* src="([^"]+)"', page.text)[1])
    sound = httpx.get(f"{server.base_url}{src}", timeout=30)
    assert sound.status_code == 200
    assert sound.headers["content-type"] == "audio/wav"
    # One file: the fragments' own audio back to back, as Asterisk plays them one after another.
    expected = sum(read_wav_info(audio_path(prompts_built, f)).duration for f in fragments)
    assert wav_seconds(sound.content) == pytest.approx(expected, abs=0.001)


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        ("number", "1000000000000", "cannot speak"),
        ("digits", "abc", "not a string of digits"),
        ("date", "1405/13/01", "not a date"),
        ("weather", "1", "unknown kind"),
        ("digits", "1" * 65, "too long"),
    ],
)
def test_bad_input_in_the_box_is_a_message_not_an_error_page(
    server, kind: str, value: str, says: str
) -> None:
    page = get(server, "/prompts", kind=kind, value=value)
    assert page.status_code == 400
    assert 'role="alert"' in page.text and says in html.unescape(page.text)
    assert "spoken-audio" not in page.text
    assert len(rows(page.text)) > 100  # the list is still there
    sound = get(server, "/prompts/say.wav", kind=kind, value=value)
    assert sound.status_code == 400
    assert says in sound.json()["detail"]


def test_chromium_loads_the_audio_of_the_box_and_of_a_prompt(server, prompts_built: Path) -> None:
    need(str(CHROMIUM), "chromium")
    from playwright.sync_api import sync_playwright

    expected = sum(
        read_wav_info(audio_path(prompts_built, f)).duration for f in speech.number_fragments(1587)
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(f"{server.base_url}/prompts?kind=number&value=1587")
            assert page.locator("html").get_attribute("dir") == "rtl"
            # readyState ≥ 1 (HAVE_METADATA): the browser fetched and decoded the WAV's header.
            page.wait_for_function(
                "document.getElementById('spoken-audio').readyState >= 1", timeout=15000
            )
            duration = page.evaluate("document.getElementById('spoken-audio').duration")
            assert duration == pytest.approx(expected, abs=0.01)
            player = page.locator('tr[id="prompt-greeting"] audio')
            player.evaluate("a => { a.preload = 'metadata'; a.load(); }")
            page.wait_for_function(
                "document.querySelector('tr[id=\"prompt-greeting\"] audio').readyState >= 1",
                timeout=15000,
            )
            greeting = player.evaluate("a => a.duration")
            wav = read_wav_info(audio_path(prompts_built, "greeting")).duration
            assert greeting == pytest.approx(wav, abs=0.01)
        finally:
            browser.close()


def test_studio_files_and_missing_audio_are_shown_as_such(start_server, tmp_path: Path) -> None:
    prompts_dir = tmp_path / "prompts"
    (prompts_dir / "fa").mkdir(parents=True)
    (prompts_dir / "catalog.toml").write_text(
        '[main]\nwelcome = "خوش آمدید"\nbye = "خدا نگهدار"\n', encoding="utf-8"
    )
    (prompts_dir / "fragments.toml").write_text('[num]\n7 = "هفت"\n', encoding="utf-8")
    studio = prompts_dir / "fa" / "main-welcome.wav"
    with wave.open(str(studio), "wb") as w:  # 0.5 s of a studio recording at 16 kHz
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x01" * 8000)
    server = start_server(prompts_dir=str(prompts_dir))

    listed = rows(get(server, "/prompts").text)
    _id, text, voice, seconds, player = listed["main.welcome"]
    assert (text, voice, seconds) == ("خوش آمدید", "studio", "0.50")
    assert 'src="/prompts/fa/main-welcome.wav"' in player
    assert listed["main.bye"][2:] == ["—", "—", "—"]  # never built: no voice, no player

    # The box with a fragment that has no audio: the page says so instead of a broken player.
    page = get(server, "/prompts", kind="number", value="7")
    assert page.status_code == 503
    assert "no audio for num.7" in page.text and "spoken-audio" not in page.text
    sound = get(server, "/prompts/say.wav", kind="number", value="7")
    assert sound.status_code == 503
    assert "ivr prompts build" in sound.json()["detail"]
