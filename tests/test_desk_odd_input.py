"""Every desk route with odd values where people and browsers put them: no 500, ever, and no
error a person would read as JSON.

Over real HTTP (uvicorn), logged in as a national supervisor and as a province's agent, with a
ticket and a screen pop to act on. The values are the ones that broke a route once (a search
with no digits, a day at the end of what a date holds, an id past what a row holds, a digit
only ``str.isdigit`` knows) and the usual suspects (empty, blank, very long, markup, SQL).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from desk_helpers import PASSWORD, DeskSite, csrf_of, desk_settings, desk_site

from ivr.desk_events import desk_events
from ivr.tickets.service import TicketDraft

ODD = (
    "", " ", "x", "رضایی", "²", "١٢", "-1", "0", "9" * 30, "1405/13/40", "9999-12-31",
    "0001-01-01", "1" * 3000, "<script>alert(1)</script>", "' OR 1=1 --", "closed",
)  # fmt: skip
CALLER = "09121234567"
PAGES = (
    "/desk/pop/{v}", "/desk/tickets/{v}", "/desk/tickets/{v}.json", "/desk/tickets/{v}/recording",
    "/desk/tickets/{v}/answer.wav", "/desk/reports/{v}", "/desk/live/agents/{v}/pause",
)  # fmt: skip
FILTERS = {
    "/desk/tickets": ("q", "from", "to", "status", "category", "place", "channel", "assignee",
                      "level", "overdue", "province", "before"),
    "/desk/callbacks": ("status", "province", "before"),
    "/desk/live": ("province",),
    "/desk/reports/1405-02-10": ("province",),
    "/desk/": ("province",),
}  # fmt: skip
"""Each list's query parameters."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DeskSite, str, int]]:
    """The desk, a Qom ticket's tracking number and the id of a pop of a call on Sara's desk."""
    storage: Path = tmp_path_factory.mktemp("desk-odd") / "storage"
    with desk_site(desk_settings(storage)) as made:
        made.users.add("boss", "national", password=PASSWORD)
        made.users.add("sara", "agent", password=PASSWORD, province="qom", extension="PJSIP/201")
        draft = TicketDraft("asterisk", "qom", "trade", None, None, CALLER, CALLER, None)
        tracking = made.services.tickets.create(draft).tracking
        assert tracking is not None
        made.services.calls.open("asterisk", "1700000000.1", CALLER, "124", province="qom")
        sara = made.users.get("sara")
        assert sara is not None and sara.id is not None
        pop = desk_events(made.services.calls.engine).push(sara.id, "asterisk", "1700000000.1")
        assert pop is not None
        yield made, tracking, pop


def answers(client: httpx.Client, method: str, url: str, **kwargs: object) -> int:
    """The status of one request; a dropped connection fails the test as a 500 would, and so
    does an error a person would read as FastAPI's JSON (``ivr.web.desk.errors``)."""
    reply = client.request(method, url, **kwargs)  # type: ignore[arg-type]
    machine = reply.url.path.endswith(".json")
    if reply.status_code >= 400 and not machine and "json" in reply.headers["content-type"]:
        return 500
    return reply.status_code


@pytest.mark.parametrize("who", ["boss", "sara"])
def test_pages_and_filters_answer_odd_values(site: tuple[DeskSite, str, int], who: str) -> None:
    desk, _, _ = site
    client = desk.login(who)
    failed = [
        (url, value[:20], status)
        for url, value in itertools.product(PAGES, ODD)
        if (status := answers(client, "GET", url.format(v=value))) >= 500
    ]
    failed += [
        (url, name, value[:20], status)
        for url, names in FILTERS.items()
        for name, value in itertools.product(names, ODD)
        if (status := answers(client, "GET", url, params={name: value})) >= 500
    ]
    assert failed == []


@pytest.mark.parametrize("who", ["boss", "sara"])
def test_actions_answer_odd_values(site: tuple[DeskSite, str, int], who: str) -> None:
    desk, tracking, pop = site
    client = desk.login(who)
    token = csrf_of(client.get(f"/desk/tickets/{tracking}").text)
    actions = (
        (f"/desk/tickets/{tracking}/status", ("status", "note")),
        (f"/desk/tickets/{tracking}/assign", ("assignee",)),
        (f"/desk/tickets/{tracking}/refer", ("agency", "note")),
        (f"/desk/tickets/{tracking}/answer", ("text",)),
        (f"/desk/pop/{pop}/ticket", ("category", "place", "callback_number")),
        (f"/desk/pop/{pop}/attach", ("tracking",)),
        ("/desk/callbacks/1/call-now", ()),
        ("/desk/live/agents/sara/pause", ()),
    )
    seen: dict[int, int] = {}
    failed = []
    for (url, fields), value in itertools.product(actions, ODD):
        form = {"csrf_token": token, **dict.fromkeys(fields, value)}
        status = answers(client, "POST", url, data=form)
        seen[status] = seen.get(status, 0) + 1
        if status >= 500:
            failed.append((url, value[:20], status))
    assert failed == []
    assert seen.get(303, 0) > 0, seen  # some odd values are fine ones: the actions did run
