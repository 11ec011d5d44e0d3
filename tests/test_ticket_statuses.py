"""The status transition table, through the real ticket service on SQLite.

Every pair of statuses is tried: the allowed ones are listed by hand below (so a change to the
table must change this list too) and checked against ``TRANSITIONS``; a refused move raises
``TransitionRefused`` and leaves the ticket and its history exactly as they were.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from ivr.agencies import UnknownAgency
from ivr.settings import Settings
from ivr.tickets.db import make_engine, upgrade
from ivr.tickets.models import Ticket
from ivr.tickets.service import TicketDraft, TicketService, TicketView
from ivr.tickets.statuses import (
    TRANSITIONS,
    Status,
    TransitionRefused,
    UnknownStatus,
    check_transition,
)

ALLOWED_BY_HAND = {
    ("registered", "in_review"),
    ("registered", "referred"),
    ("registered", "waiting_for_caller"),
    ("registered", "answered"),
    ("registered", "closed"),
    ("in_review", "referred"),
    ("in_review", "waiting_for_caller"),
    ("in_review", "answered"),
    ("in_review", "closed"),
    ("referred", "in_review"),
    ("referred", "waiting_for_caller"),
    ("referred", "answered"),
    ("referred", "closed"),
    ("waiting_for_caller", "in_review"),
    ("waiting_for_caller", "referred"),
    ("waiting_for_caller", "closed"),
    ("answered", "in_review"),
    ("answered", "closed"),
}
NEEDS_NOTE_BY_HAND = {
    ("registered", "closed"),
    ("in_review", "closed"),
    ("referred", "closed"),
    ("waiting_for_caller", "closed"),
}
PAIRS = [(a.value, b.value) for a, b in itertools.product(Status, Status) if a != b]
ROUTE = {
    # a way from registered to each status, through allowed moves
    "registered": [],
    "in_review": ["in_review"],
    "referred": ["referred"],
    "waiting_for_caller": ["referred", "waiting_for_caller"],
    "answered": ["answered"],
    "closed": ["answered", "closed"],
}


def test_the_table_is_the_hand_written_list() -> None:
    table = {(a.value, b.value) for a, moves in TRANSITIONS.items() for b in moves}
    assert table == ALLOWED_BY_HAND
    noted = {
        (a.value, b.value) for a, m in TRANSITIONS.items() for b, v in m.items() if v.needs_note
    }
    assert noted == NEEDS_NOTE_BY_HAND
    assert set(TRANSITIONS) == set(Status)
    assert all(move.why for moves in TRANSITIONS.values() for move in moves.values())


@pytest.fixture
def service(tmp_path: Path) -> TicketService:
    url = f"sqlite:///{tmp_path / 'db' / 'ivr.db'}"
    upgrade(url)
    settings = Settings(storage_dir=tmp_path / "node", database_url=url)
    return TicketService(make_engine(url), settings)


def new_ticket(service: TicketService, status: str) -> str:
    draft = TicketDraft("web", "qom", "trade", None, None, None, "09121234567", None)
    tracking = service.create(draft, actor="agent-0").tracking
    assert tracking is not None
    for step in ROUTE[status]:
        if step == "referred":
            service.refer(tracking, "provincial_office", "agent-0")
        else:
            service.set_status(tracking, step, "agent-0", note="on the way")
    view = service.get(tracking)
    assert view is not None and view.status == status
    return tracking


def stored(service: TicketService, tracking: str) -> tuple[TicketView, dict[str, object]]:
    view = service.get(tracking)
    assert view is not None
    with Session(service.engine) as session:
        row = session.exec(select(Ticket).where(Ticket.tracking == tracking)).one()
        return view, row.model_dump()


@pytest.mark.parametrize(("old", "new"), PAIRS)
def test_every_pair_of_statuses(service: TicketService, old: str, new: str) -> None:
    tracking = new_ticket(service, old)
    before = stored(service, tracking)
    if (old, new) not in ALLOWED_BY_HAND:
        with pytest.raises(TransitionRefused) as refused:
            service.set_status(tracking, new, "agent-7", note="tried")
        assert (refused.value.old, refused.value.new) == (old, new)
        assert f"{old} → {new} refused" in str(refused.value)
        assert stored(service, tracking) == before  # nothing changed, not even updated_at
        return
    if (old, new) in NEEDS_NOTE_BY_HAND:
        with pytest.raises(TransitionRefused, match="a note is needed"):
            service.set_status(tracking, new, "agent-7")
        assert stored(service, tracking) == before
    if new == "referred" and before[0].agency is None:
        view = service.refer(tracking, "tazirat", "agent-7", note="tried")
        note = None  # the note went on the line naming the agency
    else:
        view = service.set_status(tracking, new, "agent-7", note="tried")
        note = "tried"
    assert view.status == new
    last = view.history[-1]
    assert (last.kind, last.old_value, last.new_value, last.actor, last.note) == (
        "status",
        old,
        new,
        "agent-7",
        note,
    )


def test_referred_without_an_agency_is_refused(service: TicketService) -> None:
    tracking = new_ticket(service, "in_review")
    with pytest.raises(TransitionRefused, match="names its agency"):
        service.set_status(tracking, "referred", "agent-7")
    assert stored(service, tracking)[0].status == "in_review"


def test_unknown_status_is_its_own_error(service: TicketService) -> None:
    tracking = new_ticket(service, "registered")
    with pytest.raises(UnknownStatus, match="unknown status 'lost'"):
        service.set_status(tracking, "lost", "agent-7")
    with pytest.raises(UnknownStatus):
        check_transition(tracking, "registered", "lost", None)


def test_refer_to_a_known_agency_and_on_to_another(service: TicketService) -> None:
    tracking = new_ticket(service, "registered")
    view = service.refer(tracking, "tazirat", "agent-7", note="گران‌فروشی")
    assert (view.status, view.agency) == ("referred", "tazirat")
    view = service.refer(tracking, "guilds", "supervisor-1")  # referred on: still referred
    assert (view.status, view.agency) == ("referred", "guilds")
    lines = [(h.kind, h.old_value, h.new_value, h.actor, h.note) for h in view.history[1:]]
    assert lines == [
        ("agency", None, "tazirat", "agent-7", "گران‌فروشی"),
        ("status", "registered", "referred", "agent-7", None),
        ("agency", "tazirat", "guilds", "supervisor-1", None),
    ]


def test_refer_to_an_unknown_agency_changes_nothing(service: TicketService) -> None:
    tracking = new_ticket(service, "in_review")
    before = stored(service, tracking)
    with pytest.raises(UnknownAgency, match=r"unknown agency 'edare-x'.*tazirat"):
        service.refer(tracking, "edare-x", "agent-7")
    assert stored(service, tracking) == before


@pytest.mark.parametrize("status", ["answered", "closed"])
def test_refer_from_a_finished_status_is_refused(service: TicketService, status: str) -> None:
    tracking = new_ticket(service, status)
    before = stored(service, tracking)
    with pytest.raises(TransitionRefused):
        service.refer(tracking, "tazirat", "agent-7")
    assert stored(service, tracking) == before


def test_who_registered_is_an_argument_kept_through_the_spool(
    service: TicketService, tmp_path: Path
) -> None:
    tracking = new_ticket(service, "registered")
    assert stored(service, tracking)[0].history[0].actor == "agent-0"
    service.engine.dispose()
    (tmp_path / "db").rename(tmp_path / "db-away")  # the database is down
    try:
        draft = TicketDraft("web", "qom", "trade", None, None, None, "09351112233", None)
        made = service.create(draft, actor="desk-clerk")
    finally:
        (tmp_path / "db-away").rename(tmp_path / "db")
    assert made.spooled and made.tracking is not None
    (spooled,) = service.spool_dir.glob("*.json")
    assert json.loads(spooled.read_text())["actor"] == "desk-clerk"
    assert service.replay_spool() == 1
    assert stored(service, made.tracking)[0].history[0].actor == "desk-clerk"
