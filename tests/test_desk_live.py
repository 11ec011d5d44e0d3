"""The desk's live side over real HTTP (uvicorn), without a PBX: the screen pop stream and its
links, the callbacks page with its scope and "call now", the live queue's door for supervisors.
The same through a real Asterisk is in tests/asterisk/test_desk_live.py."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from desk_helpers import PASSWORD, DeskSite, csrf_of, desk_settings, desk_site
from desk_sse import SseReader

from ivr.clock import utcnow
from ivr.desk_events import DeskEvents, desk_events
from ivr.flow.node_names import node_name
from ivr.flow.outcomes import EventKind, StepOutcome
from ivr.tickets.calls import StepRecord
from ivr.tickets.db import make_engine
from ivr.tickets.service import TicketDraft
from ivr.web.desk.render import status_names

CALLER = "09121234567"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DeskSite]:
    with desk_site(desk_settings(tmp_path / "storage")) as s:
        s.users.add("sara", "agent", password=PASSWORD, province="qom", extension="PJSIP/201")
        s.users.add("reza", "agent", password=PASSWORD, province="qom", extension="PJSIP/202")
        s.users.add("nima", "agent", password=PASSWORD, province="tehran", extension="PJSIP/301")
        s.users.add("maryam", "supervisor", password=PASSWORD, province="qom")
        yield s


def user_id(site: DeskSite, name: str) -> int:
    found = site.users.get(name)
    assert found is not None and found.id is not None
    return found.id


def queued_call(site: DeskSite, external_id: str) -> None:
    calls = site.services.calls
    call_id = calls.open("asterisk", external_id, CALLER, "124", province="qom")
    calls.save_turn(
        call_id,
        "{}",
        [StepRecord("main", EventKind.DIGITS, "0", StepOutcome.TRANSFER_REQUESTED)],
    )


def earlier_ticket(site: DeskSite, province: str = "qom") -> str:
    draft = TicketDraft("asterisk", province, "trade", None, None, CALLER, CALLER, None)
    tracking = site.services.tickets.create(draft).tracking
    assert tracking is not None
    return tracking


# --- the screen pop ----------------------------------------------------------------------------


def test_the_pop_reaches_the_agents_open_desk_and_no_other(site: DeskSite) -> None:
    earlier = earlier_ticket(site)
    elsewhere = earlier_ticket(site, "tehran")
    queued_call(site, "1700000100.1")
    sara, reza = site.login("sara"), site.login("reza")
    with SseReader(sara) as sara_pops, SseReader(reza) as reza_pops:
        pushed = time.monotonic()
        desk_events(site.services.calls.engine).push(user_id(site, "sara"), "asterisk",
                                                     "1700000100.1", CALLER)  # fmt: skip
        pop = sara_pops.next(timeout=1.0)
        assert pop.received - pushed < 1.0
        assert pop.event == "pop" and pop.data["number"] == CALLER
        assert [s["node"] for s in pop.data["steps"]] == ["main"]
        assert [t["tracking"] for t in pop.data["tickets"]] == [earlier]  # not Tehran's
        # People read Persian: the menu's name and the earlier ticket's status, not their codes.
        status = pop.data["tickets"][0]["status"]
        assert f">{node_name('main')}</span> کلید" in pop.data["html"]
        assert f"<td>{status_names()[status]}</td>" in pop.data["html"]
        assert f"<td>{status}</td>" not in pop.data["html"]
        assert elsewhere not in pop.data["html"]
        assert f"/desk/pop/{pop.id}/attach" in pop.data["html"]
        assert 'name="csrf_token"' in pop.data["html"]
        assert reza_pops.nothing(within=0.8)


def test_a_pop_written_by_another_node_arrives_within_a_second(site: DeskSite) -> None:
    other_node = make_engine(site.settings.db_url)
    try:
        sara = site.login("sara")
        with SseReader(sara) as pops:
            pushed = time.monotonic()
            DeskEvents(other_node).push(user_id(site, "sara"), "twilio", "CA" + "7" * 32, CALLER)
            pop = pops.next(timeout=1.5)
            assert pop.received - pushed < 1.0
            assert pop.data["channel"] == "twilio"
    finally:
        other_node.dispose()


@pytest.mark.parametrize("last_id", [b"\xb2", b"9" * 30])  # "²": a digit only to isdigit
def test_a_reconnect_naming_no_stored_id_streams_from_now(site: DeskSite, last_id: bytes) -> None:
    """A ``Last-Event-ID`` no pop can have had starts the stream from now, as a first visit."""
    sara = site.login("sara")
    sara.headers = httpx.Headers([*sara.headers.raw, (b"last-event-id", last_id)])
    with SseReader(sara) as pops:
        assert pops.status == 200
        desk_events(site.services.calls.engine).push(user_id(site, "sara"), "twilio",
                                                     "CA" + "8" * 32, CALLER)  # fmt: skip
        assert pops.next(timeout=1.5).data["channel"] == "twilio"


def test_the_event_stream_needs_a_session(site: DeskSite) -> None:
    assert site.client().get("/desk/events").status_code == 401


def test_logout_ends_an_open_stream(site: DeskSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ivr.web.desk.pop.CHECK_S", 0.2)
    sara = site.login("sara")
    token = csrf_of(sara.get("/desk/").text)
    with SseReader(sara) as pops:
        assert not pops.ended(timeout=0.5)  # open while the session is
        assert sara.post("/desk/logout", data={"csrf_token": token}).status_code in (200, 303)
        assert pops.ended(timeout=3.0)
    desk_events(site.services.calls.engine).push(user_id(site, "sara"), "asterisk", "after")
    assert sara.get("/desk/events").status_code == 401


def test_the_frame_page_loads_the_pop_script(site: DeskSite) -> None:
    home = site.login("sara").get("/desk/")
    assert home.status_code == 200 and "desk-pop.js" in home.text
    assert site.client().get("/static/desk-pop.js").status_code == 200


def pop_id(site: DeskSite, name: str, external_id: str) -> int:
    made = desk_events(site.services.calls.engine).push(user_id(site, name), "asterisk",
                                                        external_id, CALLER)  # fmt: skip
    assert made is not None
    return made


def test_new_ticket_for_this_call(site: DeskSite) -> None:
    queued_call(site, "1700000101.1")
    event = pop_id(site, "sara", "1700000101.1")
    sara = site.login("sara")
    token = csrf_of(sara.get(f"/desk/pop/{event}").text)
    refused = sara.post(f"/desk/pop/{event}/ticket", data={"category": "trade"})
    assert refused.status_code == 403  # no CSRF token: nothing made
    assert site.services.tickets.latest() == []
    reza = site.login("reza")
    his_token = csrf_of(reza.get("/desk/").text)
    stranger = reza.post(
        f"/desk/pop/{event}/ticket", data={"category": "trade", "csrf_token": his_token}
    )
    assert stranger.status_code == 404  # not his pop
    made = sara.post(f"/desk/pop/{event}/ticket", data={"category": "trade", "csrf_token": token})
    assert made.status_code == 303
    tracking = made.headers["location"].rsplit("/", 1)[-1]
    view = site.services.tickets.get(tracking)
    assert view is not None and view.province == "qom" and view.history[0].actor == "sara"
    rows = site.services.calls.engine.connect().exec_driver_sql(
        "SELECT t.tracking FROM call c JOIN ticket t ON t.id = c.ticket_id "
        "WHERE c.external_id = '1700000101.1'"
    )
    assert rows.scalar() == tracking


def test_attach_to_ticket_n_within_the_scope(site: DeskSite) -> None:
    earlier = earlier_ticket(site)
    elsewhere = earlier_ticket(site, "tehran")
    queued_call(site, "1700000102.1")
    event = pop_id(site, "sara", "1700000102.1")
    sara = site.login("sara")
    token = csrf_of(sara.get(f"/desk/pop/{event}").text)
    wrong = sara.post(
        f"/desk/pop/{event}/attach", data={"tracking": elsewhere, "csrf_token": token}
    )
    assert wrong.status_code == 400
    done = sara.post(f"/desk/pop/{event}/attach", data={"tracking": earlier, "csrf_token": token})
    assert done.status_code == 303 and done.headers["location"].endswith(f"/desk/tickets/{earlier}")
    view = site.services.tickets.get(earlier)
    assert view is not None and (view.history[-1].kind, view.history[-1].actor) == ("call", "sara")


# --- callbacks ---------------------------------------------------------------------------------


def test_callbacks_of_the_scope_only_and_call_now_refused_without_a_dialer(site: DeskSite) -> None:
    service = site.services.callbacks
    qom = service.request("09121111111", "qom", utcnow() - timedelta(minutes=3))
    tehran = service.request("09122222222", "tehran", utcnow() - timedelta(minutes=2))
    sara = site.login("sara")
    page = sara.get("/desk/callbacks")
    assert page.status_code == 200 and 'dir="rtl"' in page.text
    assert f'data-callback="{qom.id}"' in page.text
    assert f'data-callback="{tehran.id}"' not in page.text
    token = csrf_of(page.text)
    assert sara.post(f"/desk/callbacks/{tehran.id}/call-now",
                     data={"csrf_token": token}).status_code == 404  # fmt: skip
    assert sara.post(f"/desk/callbacks/{qom.id}/call-now").status_code == 403  # no token
    refused = sara.post(f"/desk/callbacks/{qom.id}/call-now", data={"csrf_token": token})
    assert refused.status_code == 303 and refused.headers["location"].endswith("error=no_dialer")
    assert "تنظیم نشده" in sara.get(refused.headers["location"]).text
    nima = site.login("nima")
    theirs = nima.get("/desk/callbacks").text
    assert f'data-callback="{tehran.id}"' in theirs and f'data-callback="{qom.id}"' not in theirs


# --- the live queue ----------------------------------------------------------------------------


def test_the_live_queue_is_for_supervisors(site: DeskSite) -> None:
    assert site.login("sara").get("/desk/live").status_code == 403
    page = site.login("maryam").get("/desk/live")
    assert page.status_code == 200
    assert "AMI" in page.text  # no PBX configured here: said, not a traceback
    names = re.findall(r'data-agent="([^"]+)"', page.text)
    assert names == ["reza", "sara"]  # Qom's agents with an extension, not Tehran's nima
