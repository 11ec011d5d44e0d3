"""A desk page that cannot be shown is a Persian page, not FastAPI's English JSON: over real
HTTP (uvicorn), for an agent and a supervisor. The machine routes keep their JSON, a redirect to
the login page stays one, and an agent's menu offers only what an agent may open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from desk_helpers import PASSWORD, DeskSite, desk_settings, desk_site

from ivr.web.desk.csrf import STALE_FORM


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskSite]:
    storage: Path = tmp_path_factory.mktemp("desk-errors") / "storage"
    with desk_site(desk_settings(storage)) as made:
        made.users.add("sara", "agent", password=PASSWORD, province="qom")
        made.users.add("reza", "supervisor", password=PASSWORD, province="qom")
        yield made


def persian_page(reply: httpx.Response, status: int) -> str:
    """The page's text, checked to be the desk's own page: HTML, right to left, Persian."""
    assert reply.status_code == status, reply.text[:300]
    assert reply.headers["content-type"].startswith("text/html")
    assert '<html dir="rtl" lang="fa">' in reply.text
    assert f'data-status="{status}"' in reply.text
    assert "/static/fonts/Vazirmatn-Regular.woff2" in reply.text
    return reply.text


def test_an_agents_menu_leaves_out_the_supervisors_pages(desk: DeskSite) -> None:
    agent = desk.login("sara").get("/desk/").text
    supervisor = desk.login("reza").get("/desk/").text
    for link in ("/desk/live", "/desk/reports"):
        assert f'href="{link}"' not in agent
        assert f'href="{link}"' in supervisor
    assert 'href="/desk/tickets"' in agent and 'href="/desk/callbacks"' in agent


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/desk/reports", "گزارش‌ها فقط برای ناظران است."),
        ("/desk/live", "صف زنده فقط برای ناظران است."),
    ],
)
def test_an_agent_at_a_supervisors_page_is_told_why_in_persian(
    desk: DeskSite, url: str, says: str
) -> None:
    text = persian_page(desk.login("sara").get(url, follow_redirects=True), 403)
    assert says in text
    assert "بازگشت به کارتابل" in text
    assert '<span class="who">sara</span>' in text  # still their desk: the menu and log-out


@pytest.mark.parametrize(
    ("url", "status", "says"),
    [
        ("/desk/tickets/1234567", 404, "چنین درخواستی در محدوده شما نیست."),
        ("/desk/pop/abc", 422, "نشانی یا فرم این صفحه درست نیست"),
        ("/desk/pop/99999999999999999999", 422, "نشانی یا فرم این صفحه درست نیست"),
        ("/desk/tickets?before=%DB%B1x", 422, "نشانی یا فرم این صفحه درست نیست"),
        ("/desk/no-such-page", 404, "این صفحه یا این درخواست پیدا نشد"),
        ("/desk/reports/1405-13-40", 404, "این تاریخ درست نیست"),
        ("/desk/reports/1405-02-10?province=atlantis", 404, "چنین استانی نیست."),
    ],
)
def test_a_wrong_address_is_a_persian_page(
    desk: DeskSite, url: str, status: int, says: str
) -> None:
    text = persian_page(desk.login("reza").get(url), status)
    assert says in text
    assert "detail" not in text


def test_a_form_sent_with_a_stale_token_says_so(desk: DeskSite) -> None:
    client = desk.login("sara")
    reply = client.post("/desk/tickets/1234567/status", data={"csrf_token": "old", "status": "x"})
    assert STALE_FORM in persian_page(reply, 403)
    assert persian_page(client.put("/desk/tickets"), 405)


def test_machine_routes_and_redirects_keep_their_answers(desk: DeskSite) -> None:
    client = desk.login("sara")
    ticket = client.get("/desk/tickets/1234567.json")
    assert ticket.status_code == 404 and ticket.headers["content-type"] == "application/json"
    stranger = desk.client()
    events = stranger.get("/desk/events")
    assert events.status_code == 401 and events.json() == {"detail": "log in at /desk/login"}
    page = stranger.get("/desk/tickets/1234567")
    assert page.status_code == 303
    assert page.headers["location"] == "/desk/login?next=%2Fdesk%2Ftickets%2F1234567"
    outside = stranger.get("/prompts/fa/no-such-prompt.wav")
    assert outside.status_code == 404 and outside.headers["content-type"] == "application/json"
