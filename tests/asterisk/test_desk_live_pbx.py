"""The desk's live side against the real Asterisk: a queue call that connects to agent A's
extension pops up on A's logged-in page in headless Chromium within a second of AgentConnect
(and not on agent B's page, nor on the desk of an agent of another province); the supervisors'
/desk/live forms log an agent in, pause them with a reason, unpause and log them out, as
QueueStatus shows.

The desk app runs in this process (uvicorn on loopback) with the same AMI listener `ivr serve`
starts (``start_queue_events``); the IVR's FastAGI side is the queue tests' (every call to the
test queue). The pop's IVR path comes from a call record written as the IVR would.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from desk_helpers import PASSWORD, DeskSite, csrf_of, desk_settings, desk_site
from desk_sse import SseReader
from needs import need
from queue_helpers import TEST_QUEUE, agent_interface, ivr_on

from ivr.clock import fa_digits
from ivr.devtools.testpbx import TestPbx
from ivr.flow.outcomes import EventKind, StepOutcome
from ivr.telephony.ami import AmiClient
from ivr.telephony.queue_events import start_queue_events
from ivr.telephony.queue_status import AgentState, queue_status
from ivr.tickets.calls import StepRecord
from ivr.web.desk.live import close_clients

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]
SCREENSHOTS = PROJECT_ROOT / "storage" / "test-output" / "desk-live"
CALLER = "09121234567"


@pytest.fixture
def site(pbx: TestPbx, tmp_path: Path) -> Iterator[DeskSite]:
    settings = desk_settings(
        tmp_path / "storage",
        ami_port=pbx.ami_port,
        ami_username=pbx.ami_user,
        ami_secret=pbx.ami_secret,
        agent_queue=TEST_QUEUE,
    )
    with desk_site(settings) as s:
        for name, province in (("sara", "qom"), ("reza", "qom"), ("nima", "tehran")):
            s.users.add(name, "agent", password=PASSWORD, province=province,
                        extension=agent_interface(f"desk-{name}"))  # fmt: skip
        s.users.add("maryam", "supervisor", password=PASSWORD, province="qom")
        listener, _recorder = start_queue_events(s.services.calls.engine, settings)
        try:
            assert listener.wait_connected(10)
            yield s
        finally:
            listener.close()
            close_clients()  # the web app's own AMI client (/desk/live)


@pytest.fixture
def members(ami: AmiClient) -> Iterator[list[str]]:
    added: list[str] = []
    yield added
    for interface in added:
        with contextlib.suppress(Exception):
            ami.queue_remove(TEST_QUEUE, interface)


def _browser_login(browser, base_url: str, name: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="fa-IR")
    page = context.new_page()
    page.goto(f"{base_url}/desk/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/desk/")
    page.wait_for_selector('#screen-pop[data-listening="yes"]', state="attached", timeout=5000)
    return context, page


def test_a_queue_call_pops_up_on_the_answering_agents_page_only(
    site: DeskSite, pbx: TestPbx, ami: AmiClient, members: list[str]
) -> None:
    need(str(CHROMIUM), "chromium")
    from playwright.sync_api import sync_playwright

    sara_ext = agent_interface("desk-sara")
    reza_ext = agent_interface("desk-reza")
    ami.queue_add(TEST_QUEUE, sara_ext, "sara")
    ami.queue_add(TEST_QUEUE, reza_ext, "reza", paused=True)  # logged in, on a break
    members += [sara_ext, reza_ext]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            sara_context, sara = _browser_login(browser, site.base_url, "sara")
            reza_context, reza = _browser_login(browser, site.base_url, "reza")
            nima = site.login("nima")
            with (
                SseReader(nima) as nima_pops,
                ivr_on(pbx),
                ami.events("QueueCallerJoin", "AgentConnect") as events,
            ):
                o = ami.originate_local(
                    "test-caller", "ivr-124", "124", {"TEST_WAIT": "7200"}, caller_id=CALLER
                )
                try:
                    # The IVR's record of this call, as its turns would have written it.
                    calls = site.services.calls
                    call_id = calls.open("asterisk", o.uniqueid, CALLER, "124", province="qom")
                    calls.save_turn(call_id, "{}", [
                        StepRecord("greeting", EventKind.DIGITS, "7", StepOutcome.INVALID),
                        StepRecord("greeting", EventKind.DIGITS, "0",
                                   StepOutcome.TRANSFER_REQUESTED),
                    ])  # fmt: skip
                    connected = events.get("AgentConnect", timeout=15, Uniqueid=o.uniqueid)
                    seen = time.monotonic()
                    assert connected["Interface"] == sara_ext
                    pop = sara.wait_for_selector(
                        f'#screen-pop[data-call="{o.uniqueid}"]', state="visible", timeout=3000
                    )
                    took = time.monotonic() - seen
                    assert pop is not None
                    assert took < 1.0, f"the pop took {took:.2f} s after AgentConnect"
                    text = pop.inner_text()
                    assert fa_digits(CALLER) in text
                    assert "greeting" in text and "درخواست تازه برای این تماس" in text
                    sara.screenshot(path=str(SCREENSHOTS / "pop-sara.png"), full_page=True)
                    time.sleep(1.0)
                    assert reza.locator("#screen-pop").is_hidden()
                    assert reza.locator(f'[data-call="{o.uniqueid}"]').count() == 0
                    reza.screenshot(path=str(SCREENSHOTS / "no-pop-reza.png"), full_page=True)
                    assert nima_pops.nothing(within=0.3)  # another province's agent
                finally:
                    with contextlib.suppress(Exception):
                        ami.hangup(ami.channel_name(o.other_uniqueid, timeout=1))
            sara_context.close()
            reza_context.close()
        finally:
            browser.close()
    rows = site.services.calls.engine.connect().exec_driver_sql(
        "SELECT u.name FROM desk_event e JOIN app_user u ON u.id = e.user_id"
    )
    assert [r[0] for r in rows] == ["sara"]


def _member(ami: AmiClient, interface: str):  # type: ignore[no-untyped-def]
    snapshot = queue_status(ami, TEST_QUEUE)[TEST_QUEUE]
    return next((a for a in snapshot.agents if a.interface == interface), None)


def test_live_actions_reach_the_real_queue(
    site: DeskSite, ami: AmiClient, members: list[str]
) -> None:
    sara_ext = agent_interface("desk-sara")
    members.append(sara_ext)
    maryam = site.login("maryam")
    page = maryam.get("/desk/live")
    assert page.status_code == 200 and 'data-agent="sara"' in page.text
    assert 'data-agent="nima"' not in page.text  # Tehran's agent is not hers to move
    token = csrf_of(page.text)

    def act(name: str, action: str, **form: str) -> str:
        done = maryam.post(f"/desk/live/agents/{name}/{action}", data={"csrf_token": token, **form})
        assert done.status_code == 303, done.text
        return done.headers["location"]

    assert act("sara", "login").endswith("done=login")
    member = _member(ami, sara_ext)
    assert member is not None and member.dynamic and member.name == "sara"
    assert member.state is not AgentState.PAUSED

    assert act("sara", "pause", reason="ناهار").endswith("done=pause")
    member = _member(ami, sara_ext)
    assert member is not None and member.state is AgentState.PAUSED
    assert member.paused_reason == "ناهار"
    shown = maryam.get("/desk/live").text
    assert 'data-state="paused"' in shown and "ناهار" in shown

    assert act("sara", "pause").endswith("error=reason")  # a pause needs a reason
    assert act("sara", "unpause").endswith("done=unpause")
    member = _member(ami, sara_ext)
    assert member is not None and member.state is not AgentState.PAUSED

    assert act("sara", "logout").endswith("done=logout")
    assert _member(ami, sara_ext) is None

    refused = maryam.post("/desk/live/agents/nima/login", data={"csrf_token": token})
    assert refused.status_code == 404
    assert _member(ami, agent_interface("desk-nima")) is None
    no_token = maryam.post("/desk/live/agents/sara/login")
    assert no_token.status_code == 403 and _member(ami, sara_ext) is None


def test_the_live_page_shows_callers_waiting_in_the_scope(
    site: DeskSite, pbx: TestPbx, ami: AmiClient, members: list[str]
) -> None:
    """One agent on a call, two callers waiting (one Qom call, one Tehran call): a Qom
    supervisor sees her caller waiting and the longest wait; national staff see both."""
    sara_ext = agent_interface("desk-sara")
    ami.queue_add(TEST_QUEUE, sara_ext, "sara")
    members.append(sara_ext)
    site.users.add("omid", "national", password=PASSWORD)
    calls = site.services.calls
    legs: list[str] = []
    with ivr_on(pbx), ami.events("QueueCallerJoin", "AgentConnect") as events:
        try:
            for number, province in (("09121230001", "qom"), ("09121230002", "qom"),
                                     ("09121230003", "tehran")):  # fmt: skip
                o = ami.originate_local(
                    "test-caller", "ivr-124", "124", {"TEST_WAIT": "7200"}, caller_id=number
                )
                legs.append(o.other_uniqueid)
                calls.open("asterisk", o.uniqueid, number, "124", province=province)
                events.get("QueueCallerJoin", timeout=15, Uniqueid=o.uniqueid)
                if len(legs) == 1:
                    events.get("AgentConnect", timeout=15, Uniqueid=o.uniqueid)
            time.sleep(2.2)  # the waits reach two seconds
            qom = site.login("maryam").get("/desk/live").text
            assert re.search(r'class="live-waiting">\s*۱\s*<', qom), qom
            assert fa_digits("09121230002") in qom and fa_digits("09121230003") not in qom
            assert 'data-agent="sara" data-state="busy"' in qom
            national = site.login("omid").get("/desk/live").text
            assert re.search(r'class="live-waiting">\s*۲\s*<', national)
            assert fa_digits("09121230003") in national
            longest = re.search(r'class="live-longest"><span class="ltr">([^<]+)<', national)
            assert longest is not None and longest.group(1) >= fa_digits("0:02")
        finally:
            for leg in legs:
                with contextlib.suppress(Exception):
                    ami.hangup(ami.channel_name(leg, timeout=1))
