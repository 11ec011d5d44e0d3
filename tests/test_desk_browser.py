"""The desk in headless Chromium, end to end through real parts: ``ivr call --keys`` registers a
ticket on a real ``ivr serve``; an agent logs in, finds it, plays its recording, refers it to an
agency and writes an answer; then a signed Twilio follow-up call for that ticket hears the
answer's audio after the status.

Screenshots are kept in ``storage/test-output/desk/``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from browsers import chromium
from twilio_phone import TwilioPhone

if TYPE_CHECKING:
    from conftest import CallHelpers, IvrServer
    from playwright.sync_api import Browser, Page

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = PROJECT_ROOT / "storage" / "test-output" / "desk"
KEYS = ("1", "1", "8", "3", "2", "2", "09351112233#", "1", "7731689956#", "1")
"""As in test_terminal_call: industry, Siro, a recording, callback number 09351112233."""
CALLER = "+989121234567"
CALLBACK_E164 = "+989351112233"
PASSWORD = "agent password 1"
ANSWER = "پرونده شما بررسی شد و نتیجه به اداره کل ارسال شد."


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    with chromium(request, SCREENSHOTS) as launched:
        yield launched


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def check_frame(page: Page) -> None:
    """Persian, right to left, and the page really draws with Vazirmatn (the font loaded)."""
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("html").get_attribute("lang") == "fa"
    family = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert family.split(",")[0].strip().strip('"') == "Vazirmatn"
    page.evaluate("document.fonts.ready")
    assert page.evaluate("document.fonts.check('16px Vazirmatn', 'سلام')")
    loaded = page.evaluate(
        "[...document.fonts].filter(f => f.family.includes('Vazirmatn') && f.status == 'loaded')"
        ".length"
    )
    assert loaded >= 1


def test_an_agent_answers_a_ticket_and_the_caller_hears_it(
    browser: Browser, server: IvrServer, recording_wav: Path, calls: CallHelpers
) -> None:
    done = server.ivr(
        "call", "--keys", " ".join(KEYS), "--recording", str(recording_wav), "--caller", CALLER
    )
    found = re.search(r"کد رهگیری: (\d+)", done.stdout)
    assert found, done.stdout
    tracking = found.group(1)
    ivr = str(Path(sys.executable).with_name("ivr"))
    added = subprocess.run(
        [ivr, "users", "add", "sara", "--role", "agent", "--province", "qom", "--password-stdin"],
        input=PASSWORD + "\n",
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr

    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="fa-IR")
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server.base_url}/desk/")
        assert page.url.startswith(f"{server.base_url}/desk/login")
        check_frame(page)
        shot(page, "1-login")
        page.fill('input[name="username"]', "sara")
        page.fill('input[name="password"]', PASSWORD)
        page.get_by_role("button", name="ورود").click()
        page.wait_for_url(f"{server.base_url}/desk/")
        check_frame(page)
        shot(page, "2-home")
        menu = page.locator("header nav a").all_inner_texts()
        assert "درخواست‌ها" in menu and "گزارش‌ها" not in menu  # reports are supervisors'
        refused = page.goto(f"{server.base_url}/desk/reports")
        assert refused is not None and refused.status == 403
        check_frame(page)  # the desk's own error page, not FastAPI's JSON
        assert page.get_by_role("alert").inner_text() == "گزارش‌ها فقط برای ناظران است."
        shot(page, "2b-refused")

        page.goto(f"{server.base_url}/desk/tickets")
        page.fill('input[name="q"]', "112233")  # the last digits of the callback number
        page.get_by_role("button", name="نمایش").click()
        link = page.locator(f'a[href$="/desk/tickets/{tracking}"]')
        assert link.count() == 1
        shot(page, "3-search")
        link.click()
        page.wait_for_url(f"**/desk/tickets/{tracking}")
        check_frame(page)

        duration = page.evaluate(
            """() => new Promise((ok, fail) => {
                 const a = document.getElementById('recording');
                 const done = () => ok(a.duration);
                 if (a.readyState >= 1 && isFinite(a.duration)) return done();
                 a.addEventListener('loadedmetadata', done);
                 a.addEventListener('error', () => fail('audio error ' + a.error.code));
                 a.load();
               })"""
        )
        assert 2.5 < duration < 3.5  # the 3 s description the caller recorded
        page.evaluate("document.getElementById('recording').play()")
        page.wait_for_function("document.getElementById('recording').currentTime > 0.2")
        shot(page, "4-ticket")

        page.select_option('#refer-form select[name="agency"]', "provincial_office")
        page.locator("#refer-form button").click()
        page.wait_for_url("**done=referred")
        assert page.locator("#agency").inner_text() == "provincial_office"

        page.fill("#answer-text", ANSWER)
        page.locator("#answer-form button").click()
        page.wait_for_url("**done=answered", timeout=60_000)
        assert page.locator("#answer").inner_text() == ANSWER
        answer_duration = page.evaluate(
            """() => new Promise((ok) => {
                 const a = document.getElementById('answer-audio');
                 if (a.readyState >= 1 && isFinite(a.duration)) return ok(a.duration);
                 a.addEventListener('loadedmetadata', () => ok(a.duration));
                 a.load();
               })"""
        )
        assert answer_duration > 1.0
        actors = page.locator("#history td.actor").all_inner_texts()
        assert actors.count("sara") >= 3  # agency, referred, answer, answered
        shot(page, "5-answered")
        assert not errors, errors
    finally:
        context.close()

    # The caller follows up from the callback number, on Twilio: the answer follows the status.
    with TwilioPhone(server.base_url, server.token, from_number=CALLBACK_E164) as phone:
        phone.dial()
        phone.press("2")
        report = calls.drive(phone, [tracking + "#"])
        stems = calls.stems(report.plays)
        assert stems[stems.index("followup-status") + 1] == "status-answered"
        at = stems.index("followup-answer")
        answer_url = report.plays[at + 1]
        assert stems[at + 1].startswith(f"answer-{tracking}-"), stems
        assert stems[-1] == "followup-menu"
        phone.hangup()
    audio = httpx.get(answer_url, timeout=10)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF" and len(audio.content) > 8000
