"""The /try page in a real browser: Debian's Chromium, headless, driven by Playwright, against a
real ``ivr serve``. Its fake microphone (``--use-fake-device-for-media-stream``, a beeping tone)
is the caller's voice. Everything is done by clicking the keypad, as a person would; prompts
must really be fetched and played to their end, and the tickets must be real.

Screenshots are kept in ``storage/test-output/try/`` (the run prints where).
"""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from browsers import chromium

from ivr.flow import menus as m
from ivr.prompts import load_catalog
from ivr.speech import normalize_digits

PROJECT_ROOT = Path(__file__).resolve().parents[1]

if TYPE_CHECKING:
    from conftest import IvrServer
    from playwright.sync_api import Browser, Page

FAKE_MEDIA = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
"""A microphone that is granted and plays a tone: MediaRecorder gets real audio."""
SCREENSHOTS = PROJECT_ROOT / "storage" / "test-output" / "try"
TEXTS = {pid: p.text for pid, p in load_catalog(PROJECT_ROOT / "prompts").items()}
WAIT_MS = 40_000
CALLER = "09121234567"


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    with chromium(request, SCREENSHOTS, FAKE_MEDIA) as launched:
        yield launched


class Visitor:
    """One browser tab on /try, with what it fetched and what went wrong in it."""

    def __init__(self, browser: Browser, server: IvrServer) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 412, "height": 915}, locale="fa-IR")
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.audio: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self.page.on("response", self._response)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )

    def _response(self, response: Any) -> None:
        if "/prompts/fa/" in response.url or "/recordings/" in response.url:
            self.audio.append((response.status, response.url))

    def open(self) -> None:
        self.page.goto(f"{self.server.base_url}/try")

    def press(self, keys: str) -> None:
        for key in keys:
            self.page.get_by_role("button", name=key, exact=True).click()

    def call(self) -> None:
        self.page.get_by_role("button", name="تماس", exact=True).click()

    def hang_up(self) -> None:
        self.page.get_by_role("button", name="قطع", exact=True).click()

    def count(self, prompt: str, state: str | None = None) -> int:
        selector = f'#transcript [data-prompt="{prompt}"]'
        selector += f'[data-state="{state}"]' if state else ':not([data-state="pending"])'
        return self.page.locator(selector).count()

    def started(self, prompt: str, times: int = 1) -> None:
        """Wait until ``prompt`` has begun playing for the ``times``-th time."""
        self.page.wait_for_function(
            """([prompt, times]) => document.querySelectorAll(
                 `#transcript [data-prompt="${prompt}"]:not([data-state="pending"])`
               ).length >= times""",
            arg=[prompt, times],
        )

    def ended(self, prompt: str, times: int = 1) -> None:
        """Wait until ``prompt`` has been played to its end ``times`` times."""
        self.page.wait_for_function(
            """([prompt, times]) => document.querySelectorAll(
                 `#transcript [data-prompt="${prompt}"][data-state="ended"]`
               ).length >= times""",
            arg=[prompt, times],
        )

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def states(self) -> dict[str, int]:
        return self.page.evaluate(
            """() => {
                 const counts = {};
                 for (const part of document.querySelectorAll('#transcript [data-state]'))
                   counts[part.dataset.state] = (counts[part.dataset.state] || 0) + 1;
                 return counts;
               }"""
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitor(browser: Browser, server: IvrServer) -> Iterator[Visitor]:
    made = Visitor(browser, server)
    yield made
    made.close()


def last_web_call(server: IvrServer, ended: bool = True) -> dict:
    """The newest browser call's row, once its hang-up (sent with keepalive) has arrived."""
    deadline = time.monotonic() + 10
    while True:
        rows = server.sql("SELECT * FROM call WHERE channel = 'web' ORDER BY id DESC LIMIT 1")
        if rows and (rows[0]["ended_at"] is not None or not ended):
            return dict(rows[0])
        assert time.monotonic() < deadline, f"the call did not end: {rows and dict(rows[0])}"
        time.sleep(0.1)


def ticket(server: IvrServer, tracking: str) -> dict:
    return json.loads(server.ivr("tickets", "show", tracking, "--json").stdout)


def test_new_request_by_keypad_then_follow_up(visitor: Visitor, server: IvrServer) -> None:
    page = visitor.page
    visitor.open()
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "fa"
    keys = page.locator(".keypad button")
    assert keys.all_inner_texts() == list("123456789*0#")
    assert page.input_value("#caller") == CALLER
    font = page.evaluate("document.fonts.load('16px Vazirmatn').then(f => f.length)")
    assert font >= 1  # the font came from this server (never a CDN)
    visitor.shot("01-idle")

    # --- a new request: industry, Alghadir, a description from the microphone ----------------
    visitor.call()
    visitor.ended("greeting")  # heard to its end; the menu after it is interrupted by a key
    visitor.started("main.menu")
    assert TEXTS["main.menu"] in page.inner_text("#now")
    visitor.shot("02-main-menu")
    visitor.press("1")
    visitor.started("category.menu")
    visitor.press("1")
    visitor.started("place.intro")
    visitor.press("2")
    visitor.ended("describe.instructions")  # not interruptible: the beep and recording follow
    page.wait_for_selector("#record-panel:not([hidden])")
    page.wait_for_function(
        "text => document.getElementById('status').textContent === text",
        arg=json.loads(page.inner_text("#try-texts"))["recording"],
    )
    page.wait_for_timeout(3500)  # the fake microphone's tone is what the caller says
    visitor.shot("03-recording")
    visitor.press("#")
    visitor.started("describe.review")
    visitor.press("2")
    visitor.started("callback.confirm_menu")  # after the caller's number, digit by digit
    assert visitor.count("callback.your_number", "ended") == 1
    visitor.press("1")
    visitor.started("nid.enter")
    visitor.press("#")  # no national ID
    visitor.started("summary.menu")
    visitor.press("1")
    page.wait_for_selector("#tracking:not([hidden])")
    tracking = page.get_attribute("#tracking", "data-tracking") or ""
    shown = page.inner_text("#tracking-number")
    assert shown != tracking and normalize_digits(shown) == tracking  # Persian digits
    visitor.ended("registered.done")
    visitor.shot("04-tracking-number")
    visitor.hang_up()
    page.wait_for_selector("#call:not([disabled])")

    first_call = visitor.states()  # the transcript starts again with the next call
    registered = ticket(server, tracking)
    assert registered["channel"] == "web"
    assert (registered["category"], registered["place"]) == ("industry", "alghadir")
    assert (registered["caller_number"], registered["callback_number"]) == (CALLER, CALLER)
    recording = Path(registered["recording_path"])
    assert recording.parent == server.recordings
    with wave.open(str(recording)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert 2.5 < wav.getnframes() / 8000 < 10  # the 3.5 s held before pressing #
        samples = wav.readframes(wav.getnframes())
    assert max(samples[1::2]) > 8  # not silence: the fake microphone's tone

    # --- the follow-up with that number, by keypad, after one silence ------------------------
    visitor.call()
    visitor.started("main.menu")
    visitor.press("2")
    visitor.ended("followup.enter")
    page.wait_for_selector("#countdown:not([hidden])")
    assert "۵" in page.inner_text("#countdown") or "۴" in page.inner_text("#countdown")
    visitor.started("retry.no_input")  # 5 s of silence, as on a phone
    visitor.press(tracking + "#")
    visitor.ended("followup.registered_on")  # from the callback number: no last four asked
    visitor.started("status.registered")
    assert TEXTS["status.registered"] in page.inner_text("#now")
    visitor.shot("05-follow-up-report")
    visitor.hang_up()

    assert last_web_call(server)["outcome"] == "followup"

    # --- the prompts were fetched and played ---------------------------------------------------
    assert first_call.get("ended", 0) >= 20, first_call  # with the number read digit by digit
    states = visitor.states()
    assert states.get("ended", 0) >= 10, states  # the tracking number, then the report
    assert first_call.get("failed", 0) == states.get("failed", 0) == 0, (first_call, states)
    fetched = {url.rsplit("/", 1)[1] for status, url in visitor.audio if status in (200, 206)}
    assert {"greeting.wav", "describe-instructions.wav", "followup-registered_on.wav"} <= fetched
    assert all(status in (200, 206) for status, _ in visitor.audio), visitor.audio
    assert not visitor.errors, visitor.errors


def test_recording_from_a_chosen_file(
    visitor: Visitor, server: IvrServer, recording_wav: Path
) -> None:
    """No microphone needed: a WAV file chosen on the page is the description."""
    page = visitor.page
    visitor.open()
    visitor.call()
    visitor.started("main.menu")
    visitor.press("1")
    visitor.started("category.menu")
    visitor.press("3")  # trade: straight to the description
    page.wait_for_selector("#record-panel:not([hidden])")
    page.set_input_files("#record-file", str(recording_wav))
    visitor.started("describe.review")
    visitor.press("1")  # listen to it
    visitor.ended("recording")  # the caller's own recording, played back to its end
    visitor.press("2")
    visitor.started("callback.confirm_menu")
    visitor.press("1")
    visitor.started("nid.enter")
    visitor.press("7731689956#")
    visitor.started("summary.menu")
    visitor.press("1")
    page.wait_for_selector("#tracking:not([hidden])")
    tracking = page.get_attribute("#tracking", "data-tracking") or ""
    visitor.hang_up()

    made = ticket(server, tracking)
    assert (made["channel"], made["category"], made["place"]) == ("web", "trade", None)
    with wave.open(str(made["recording_path"])) as ours, wave.open(str(recording_wav)) as theirs:
        assert ours.readframes(ours.getnframes()) == theirs.readframes(theirs.getnframes())
    assert any("/recordings/" in url and status in (200, 206) for status, url in visitor.audio)
    assert not visitor.errors, visitor.errors


def test_hang_up_mid_call_and_agents(visitor: Visitor, server: IvrServer) -> None:
    page = visitor.page
    visitor.open()
    page.fill("#caller", "")  # anonymous
    visitor.call()
    visitor.started("main.menu")
    visitor.press("0")
    visitor.ended("agent.transfer")
    page.wait_for_selector("#call:not([disabled])")  # the call is over: agents have it
    texts = json.loads(page.inner_text("#try-texts"))
    assert page.inner_text("#status") == texts["transferred"]
    transferred = last_web_call(server)
    assert (transferred["caller"], transferred["outcome"]) == (None, "transferred")

    visitor.call()
    visitor.started("main.menu")
    visitor.hang_up()
    assert page.inner_text("#status") == texts["hung_up"]
    abandoned = last_web_call(server)
    assert abandoned["outcome"] == "abandoned" and abandoned["id"] > transferred["id"]


def test_flow_page_draws_every_node(visitor: Visitor) -> None:
    page = visitor.page
    page.goto(f"{visitor.server.base_url}/try/flow")
    drawing = page.locator(".flow-drawing svg")
    assert drawing.count() == 1
    nodes = page.eval_on_selector_all(
        ".flow-drawing svg g.node > title", "titles => titles.map(t => t.textContent)"
    )
    assert sorted(nodes) == sorted(m.menus_for("qom"))
    assert page.locator(".flow-drawing svg g.edge").count() > len(nodes)
    assert TEXTS["retry.no_input"] in page.inner_text(".flow-drawing")
    visitor.shot("06-flow")
    for graph_format, start in (("dot", "digraph"), ("mermaid", "flowchart TD")):
        reply = page.request.get(f"{visitor.server.base_url}/try/flow?format={graph_format}")
        assert reply.ok and reply.text().startswith(start)
    assert not visitor.errors, visitor.errors
