"""The calendar in the database: seeding, edits, and deadlines kept in step with it.

Tickets are created through ``TicketService`` with the database SLA clock, at moments pinned by
replacing the service module's clock; expected deadlines are Tehran wall-clock times worked out
by hand (weekdays: 2026-03-16 Mon, 2026-04-29 Wed, 2026-05-06 Wed, 2026-05-09 Sat,
2026-05-25 Mon, 2026-05-26 Tue, 2026-05-27 Wed = Eid al-Adha).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import jdatetime
import pytest
from refusals import refusal
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from ivr.calendar import (
    ThursdayRule,
    WorkCalendar,
    jalali_year_of,
    load_policies,
    seed_holidays,
)
from ivr.calendar.store import (
    CachedCalendar,
    SlaClock,
    add_holiday,
    confirm_holidays,
    ensure_seeded,
    list_holidays,
    load_calendar,
    move_holidays,
    parse_day,
    parse_moment,
    recompute_open_tickets,
    remove_holidays,
    set_thursday_rule,
)
from ivr.clock import iso_utc
from ivr.settings import Settings
from ivr.tickets import service as service_module
from ivr.tickets.db import make_engine, upgrade
from ivr.tickets.models import HolidayRow, HolidaySeed, Status, Ticket
from ivr.tickets.service import TicketDraft, TicketService, TicketView

TEHRAN = ZoneInfo("Asia/Tehran")
POLICIES = load_policies()
SEED_DAY = date(2026, 3, 10)
"""In Jalali 1404: seeds 1404 and 1405, which every date below falls in."""


def tehran(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """Aware UTC for a Tehran wall-clock time."""
    return datetime(y, mo, d, h, mi, tzinfo=TEHRAN).astimezone(UTC)


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'db' / 'ivr.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    ensure_seeded(engine, SEED_DAY)
    yield engine
    engine.dispose()


class Clock:
    """Stands in for ``utcnow`` in the ticket service, so tickets are made at chosen moments."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = tehran(2026, 5, 9, 9)
        monkeypatch.setattr(service_module, "utcnow", lambda: self.now)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def tickets(engine: Engine, url: str, tmp_path: Path) -> TicketService:
    settings = Settings(storage_dir=tmp_path / "node", database_url=url)
    calendars = CachedCalendar(engine, check_every=0)  # every call sees the latest edit
    return TicketService(engine, settings, sla=SlaClock(calendars, POLICIES))


def open_ticket(tickets: TicketService, clock: Clock, at: datetime, category: str) -> str:
    clock.now = at
    draft = TicketDraft("web", "qom", category, None, None, None, "09121234567", None)
    tracking = tickets.create(draft).tracking
    assert tracking is not None
    return tracking


def view(tickets: TicketService, tracking: str) -> TicketView:
    found = tickets.get(tracking)
    assert found is not None
    return found


def run_ivr(url: str, *args: str) -> str:
    """The real ``ivr`` command on this database; its standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_DATABASE_URL"] = url
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ivr")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def recompute(engine: Engine, since: date | None = None) -> int:
    return recompute_open_tickets(engine, load_calendar(engine), POLICIES, since=since)


# Seeding and editing ------------------------------------------------------------------------------


def test_seeding_is_once_per_year_even_from_several_threads(url: str) -> None:
    engines = [make_engine(url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    added: list[int] = []

    def seed(engine: Engine) -> None:
        barrier.wait()
        added.append(ensure_seeded(engine, SEED_DAY))

    threads = [threading.Thread(target=seed, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = len(seed_holidays(1404)) + len(seed_holidays(1405))
    assert sum(added) == expected
    assert ensure_seeded(engines[0], SEED_DAY) == 0  # and again later: nothing
    with Session(engines[0]) as session:
        assert session.exec(select(func.count()).select_from(HolidayRow)).one() == expected
        years = session.exec(select(HolidaySeed.jalali_year)).all()
        assert sorted(years) == [1404, 1405]
    for e in engines:
        e.dispose()


def test_a_removed_holiday_is_not_seeded_back(engine: Engine) -> None:
    removed = remove_holidays(engine, date(2026, 4, 2)).value  # 13 Farvardin 1405
    assert [h.name for h in removed] == ["روز طبیعت"]
    ensure_seeded(engine, SEED_DAY)
    load_calendar(engine, SEED_DAY)
    assert not [h for h in list_holidays(engine, jalali_year=1405) if h.day == date(2026, 4, 2)]


def test_listing_by_province_and_estimates(engine: Engine) -> None:
    add_holiday(engine, date(2026, 5, 12), "تعطیلی قم", kind="closure", province="qom")
    add_holiday(engine, date(2026, 5, 13), "تعطیلی تهران", kind="closure", province="tehran")
    qom = list_holidays(engine, jalali_year=1405, province="qom")
    assert "تعطیلی قم" in {h.name for h in qom}
    assert "تعطیلی تهران" not in {h.name for h in qom}
    assert any(h.province is None for h in qom)  # nationwide days are every province's
    # Eid al-Fitr 1448, in Esfand 1405, is still the package's estimate.
    eid = [h for h in list_holidays(engine, jalali_year=1405) if h.day == date(2027, 3, 10)]
    assert [(h.kind, h.estimated, h.confirmed) for h in eid] == [("lunar", True, False)]
    assert confirm_holidays(engine, date(2027, 3, 10)).value == 1
    calendar = load_calendar(engine)
    assert [h.estimated for h in calendar.holidays_on(date(2027, 3, 10), "qom")] == [False]


def test_fixed_holidays_never_move(engine: Engine) -> None:
    # 1 Farvardin 1405 is both Nowruz (fixed) and Eid al-Fitr (lunar): only Eid moves.
    assert move_holidays(engine, date(2026, 3, 21), date(2026, 3, 25)).value == 1
    on_21 = {h.kind for h in list_holidays(engine, jalali_year=1405) if h.day == date(2026, 3, 21)}
    assert on_21 == {"fixed"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1405/02/10", date(2026, 4, 30)),
        ("۱۴۰۵/۰۲/۱۰", date(2026, 4, 30)),
        ("1405-2-10", date(2026, 4, 30)),
        ("2026-04-30", date(2026, 4, 30)),
        ("۲۰۲۶-۰۴-۳۰", date(2026, 4, 30)),
    ],
)
def test_dates_as_people_type_them(text: str, expected: date) -> None:
    assert parse_day(text) == expected


def test_a_typed_day_is_one_a_day_after_and_before_can_follow() -> None:
    """From 1900 to 2199: a day at the end of what ``date`` holds (9999-12-31, 0001-01-01)
    left nothing to add to or take from, and the desk's filters and reports failed on it."""
    assert parse_day("1278/10/11") == date(1900, 1, 1)
    assert parse_day("2199-12-31") == date(2199, 12, 31)
    for far in ("9999-12-31", "0001-01-01", "1899-12-31", "2200-01-01", "1600/01/01"):
        with pytest.raises(ValueError, match=r"not a date.*1900-01-01 to 2199-12-31"):
            parse_day(far)


def test_a_moment_without_time_is_noon_in_tehran() -> None:
    assert parse_moment("1405/02/10") == tehran(2026, 4, 30, 12)
    assert parse_moment("1405/02/10 09:30") == tehran(2026, 4, 30, 9, 30)
    with pytest.raises(ValueError):
        parse_day("10 Ordibehesht")


# Deadlines with the database calendar ------------------------------------------------------------


def test_deadlines_across_nowruz(tickets: TicketService, clock: Clock) -> None:
    # Monday 25 Esfand 1404: Nowruz, 29 Esfand and 12-13 Farvardin are all skipped (as in
    # tests/test_sla.py, now read from the database).
    tracking = open_ticket(tickets, clock, tehran(2026, 3, 16, 10), "industry")
    ticket = view(tickets, tracking)
    assert ticket.due_at == tehran(2026, 4, 6, 16)
    assert ticket.first_response_due_at == tehran(2026, 3, 18, 16)
    with Session(tickets.engine) as session:
        row = session.exec(select(Ticket).where(Ticket.tracking == tracking)).one()
        assert row.first_response_warn_at == tehran(2026, 3, 18, 10, 30)
        assert row.resolution_warn_at == tehran(2026, 4, 4, 10, 30)
        assert row.sla_check_at == row.first_response_warn_at  # the watch's first look


def test_a_lunar_holiday_and_moving_it(
    tickets: TicketService, clock: Clock, engine: Engine
) -> None:
    # Tuesday before Eid al-Adha: Wed 27 May holiday, Thu closed, Fri off → Saturday.
    before_eid = open_ticket(tickets, clock, tehran(2026, 5, 26, 10), "consumer")
    assert view(tickets, before_eid).first_response_due_at == tehran(2026, 5, 30, 16)
    # Registered Monday: the first response is due Tuesday …
    monday = open_ticket(tickets, clock, tehran(2026, 5, 25, 10), "consumer")
    assert view(tickets, monday).first_response_due_at == tehran(2026, 5, 26, 16)
    # … until the moon is sighted a day early and Eid moves to Tuesday.
    moved = move_holidays(engine, date(2026, 5, 27), date(2026, 5, 26))
    assert (moved.value, moved.recomputed) == (1, 2)  # the store recomputed on its own
    assert view(tickets, monday).first_response_due_at == tehran(2026, 5, 27, 16)
    assert view(tickets, before_eid).first_response_due_at == tehran(2026, 5, 27, 16)


def test_thursday_before_and_after_a_rule_change(
    tickets: TicketService, clock: Clock, engine: Engine, url: str
) -> None:
    set_thursday_rule(engine, ThursdayRule(date(2026, 5, 7), open=True, closes=time(13)))
    # Wednesday 29 April: Thursday still closed, Friday off → Saturday 2 May.
    before = open_ticket(tickets, clock, tehran(2026, 4, 29, 10), "consumer")
    assert view(tickets, before).first_response_due_at == tehran(2026, 5, 2, 16)
    # Wednesday 6 May: Thursdays open 08:00-13:00 from 7 May → Thursday 13:00.
    after = open_ticket(tickets, clock, tehran(2026, 5, 6, 10), "consumer")
    assert view(tickets, after).first_response_due_at == tehran(2026, 5, 7, 13)
    # The CLI answers from the same database.
    out = run_ivr(url, "calendar", "deadline", "1405/02/16", "1", "--province", "qom")
    assert "1405/02/17 13:00" in out  # Thursday 17 Ordibehesht = 7 May
    assert "2026-05-07T09:30:00Z" in out
    out = run_ivr(url, "calendar", "deadline", "۱۴۰۵/۰۲/۰۹", "1")
    assert "1405/02/12 16:00" in out  # Wed 29 April → Saturday 2 May


def test_a_closure_added_after_the_ticket_was_opened(
    tickets: TicketService, clock: Clock, engine: Engine
) -> None:
    # Saturday 9 May, consumer: 5 working days → Sun, Mon, Tue, Wed, Sat 16 May.
    tracking = open_ticket(tickets, clock, tehran(2026, 5, 9, 9), "consumer")
    assert view(tickets, tracking).due_at == tehran(2026, 5, 16, 16)
    # Tehran's closure changes nothing in Qom.
    tehran_closure = add_holiday(
        engine, date(2026, 5, 12), "تعطیلی تهران", kind="closure", province="tehran"
    )
    assert tehran_closure.recomputed == 0
    # Qom closes on Tuesday 12 May: the deadline moves to Sunday 17 May.
    qom = add_holiday(engine, date(2026, 5, 12), "صرفه‌جویی انرژی", kind="closure", province="qom")
    assert qom.recomputed == 1
    assert recompute(engine, since=date(2026, 5, 12)) == 0  # already done by add_holiday
    assert view(tickets, tracking).due_at == tehran(2026, 5, 17, 16)
    assert view(tickets, tracking).first_response_due_at == tehran(2026, 5, 10, 16)  # before it
    assert recompute(engine) == 0  # a full pass agrees: nothing left to change
    # A ticket made after the closure gets the later deadline right away (the cache saw it).
    later = open_ticket(tickets, clock, tehran(2026, 5, 9, 10), "consumer")
    assert view(tickets, later).due_at == tehran(2026, 5, 17, 16)


def test_cli_edits_recompute_and_say_so(tickets: TicketService, clock: Clock, url: str) -> None:
    tracking = open_ticket(tickets, clock, tehran(2026, 5, 9, 9), "consumer")
    out = run_ivr(
        url, "calendar", "add", "۱۴۰۵/۰۲/۲۲", "صرفه‌جویی انرژی", "--closure", "--province", "qom"
    )
    assert "added closure 1405/02/22" in out  # Tuesday 12 May
    assert "deadlines of 1 open tickets changed" in out
    assert view(tickets, tracking).due_at == tehran(2026, 5, 17, 16)
    listed = run_ivr(url, "calendar", "list", "--year", "1405", "--province", "qom")
    assert any("2026-05-12" in line and "closure" in line and "qom" in line
               for line in listed.splitlines())  # fmt: skip
    out = run_ivr(url, "calendar", "remove", "1405/02/22", "--province", "qom")
    assert "deadlines of 1 open tickets changed" in out
    assert view(tickets, tracking).due_at == tehran(2026, 5, 16, 16)
    out = run_ivr(url, "calendar", "confirm", "1405/12/19")  # Eid al-Fitr 1448, estimated
    assert "confirmed 1 holidays" in out
    out = run_ivr(url, "calendar", "move", "1405/03/06", "1405/03/05")  # Eid al-Adha a day early
    assert "moved 1 holidays from 1405/03/06 to 1405/03/05" in out
    assert "deadlines of 0 open tickets changed" in out  # this ticket is due before it
    out = run_ivr(url, "calendar", "thursday", "1405/02/17", "--open")
    assert "Thursdays from 1405/02/17: open 08:00-13:00" in out
    assert "deadlines of 1 open tickets changed" in out  # Thursdays now count as working days
    assert view(tickets, tracking).due_at == tehran(2026, 5, 14, 13)  # Sun … Wed, Thu 14 May


def test_a_finished_ticket_keeps_its_deadline(
    tickets: TicketService, clock: Clock, engine: Engine
) -> None:
    tracking = open_ticket(tickets, clock, tehran(2026, 5, 9, 9), "consumer")
    clock.now = tehran(2026, 5, 10, 9)
    tickets.set_status(tracking, Status.CLOSED, "agent-7", note="duplicate of another ticket")
    closure = add_holiday(
        engine, date(2026, 5, 12), "صرفه‌جویی انرژی", kind="closure", province="qom"
    )
    assert closure.recomputed == 0
    assert recompute(engine) == 0
    assert view(tickets, tracking).due_at == tehran(2026, 5, 16, 16)


def test_a_paused_ticket(tickets: TicketService, clock: Clock, engine: Engine) -> None:
    # Saturday 9 May 09:00, industry: 10 working days → Saturday 23 May 16:00.
    tracking = open_ticket(tickets, clock, tehran(2026, 5, 9, 9), "industry")
    assert view(tickets, tracking).due_at == tehran(2026, 5, 23, 16)
    clock.now = tehran(2026, 5, 10, 8)  # Sunday at opening: waiting for the caller
    tickets.set_status(tracking, Status.WAITING_FOR_CALLER, "agent-7")
    assert view(tickets, tracking).due_at is None  # the clock stands still: no deadline
    clock.now = tehran(2026, 5, 13, 8)  # Wednesday at opening: the caller answered
    tickets.set_status(tracking, Status.IN_REVIEW, "agent-7")
    # Sunday, Monday and Tuesday were paused: three working days later, Tuesday 26 May
    # (Wednesday 27 May is Eid al-Adha, but the deadline falls before it).
    assert view(tickets, tracking).due_at == tehran(2026, 5, 26, 16)
    # Recomputing from the history gives the same, and a closure inside the pause changes
    # nothing (the clock was stopped anyway) …
    assert (
        add_holiday(engine, date(2026, 5, 11), "تعطیلی", kind="closure", province="qom").recomputed
        == 0
    )
    # … while one after it moves the deadline past Eid: Thursday closed, Friday off → Sat 30.
    assert (
        add_holiday(engine, date(2026, 5, 18), "تعطیلی", kind="closure", province="qom").recomputed
        == 1
    )
    assert view(tickets, tracking).due_at == tehran(2026, 5, 30, 16)


def test_responding_stops_the_first_clock(tickets: TicketService, clock: Clock) -> None:
    tracking = open_ticket(tickets, clock, tehran(2026, 5, 9, 9), "industry")
    clock.now = tehran(2026, 5, 10, 10)
    tickets.refer(tracking, "provincial_office", "agent-7")
    with Session(tickets.engine) as session:
        row = session.exec(select(Ticket).where(Ticket.tracking == tracking)).one()
        assert row.responded_at == tehran(2026, 5, 10, 10)
        # The first-response warning is no longer pending: the resolution warning is next.
        assert row.sla_check_at == row.resolution_warn_at


def test_a_spooled_ticket_keeps_its_deadlines(
    tickets: TicketService, clock: Clock, engine: Engine, tmp_path: Path
) -> None:
    """The database is down when the caller registers: the ticket is spooled with every
    deadline (from the last calendar read), and stored with them when the database is back."""
    open_ticket(tickets, clock, tehran(2026, 5, 9, 8), "consumer")  # a number block, a calendar
    engine.dispose()
    os.rename(tmp_path / "db", tmp_path / "db-away")
    try:
        clock.now = tehran(2026, 5, 9, 9)
        draft = TicketDraft("web", "qom", "consumer", None, None, None, "09121234567", None)
        made = tickets.create(draft)
        assert made.spooled
    finally:
        os.rename(tmp_path / "db-away", tmp_path / "db")
    assert tickets.replay_spool() == 1
    assert made.tracking is not None
    stored = view(tickets, made.tracking)
    assert stored.due_at == tehran(2026, 5, 16, 16)
    assert stored.first_response_due_at == tehran(2026, 5, 10, 16)


def test_the_cache_follows_edits_and_survives_a_lost_database(
    url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(url)
    ticks = iter(range(0, 10_000, 5))
    calendars = CachedCalendar(engine, check_every=10, clock=lambda: float(next(ticks)))
    first = calendars.get()
    assert calendars.get() is first  # within check_every: no query at all
    add_holiday(engine, date(2026, 12, 1), "تعطیلی", kind="closure")
    calendars.get()  # 10 s later: the fingerprint changed
    assert calendars.get().holidays_on(date(2026, 12, 1), "qom")
    engine.dispose()
    moved = tmp_path / "db-away"
    os.rename(tmp_path / "db", moved)
    try:
        kept = calendars.get()
        assert kept.holidays_on(date(2026, 12, 1), "qom")  # the last calendar, not an error
        assert "could not read the calendar" in caplog.text
    finally:
        os.rename(moved, tmp_path / "db")
        engine.dispose()


# Owners and the rough edges -----------------------------------------------------------------------


def run_ivr_refused(url: str, *args: str) -> str:
    """The real ``ivr calendar …`` command that must refuse: status 1, one line on stderr
    naming the command; what it says after that."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_DATABASE_URL"] = url
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ivr")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return refusal(done, " ".join(args[:2]))


def test_a_calendar_edit_writes_a_deadline_line_through_the_tickets_module(
    tickets: TicketService, clock: Clock, engine: Engine
) -> None:
    tracking = open_ticket(tickets, clock, tehran(2026, 5, 9, 9), "consumer")
    add_holiday(engine, date(2026, 5, 12), "صرفه‌جویی انرژی", kind="closure", province="qom")
    after = view(tickets, tracking)
    line = after.history[-1]
    assert (line.kind, line.actor) == ("deadline", "system")
    assert (line.old_value, line.new_value) == ("2026-05-16T12:30:00Z", "2026-05-17T12:30:00Z")
    assert line.note == "closure 1405/02/22 صرفه‌جویی انرژی added"
    assert after.updated_at > after.created_at
    # Removing it moves the deadline back, with a line of its own.
    remove_holidays(engine, date(2026, 5, 12), province="qom")
    back = view(tickets, tracking).history[-1]
    assert (back.kind, back.new_value) == ("deadline", "2026-05-16T12:30:00Z")
    assert back.note == "holiday 1405/02/22 removed"


def test_the_same_closure_twice_is_one_closure(engine: Engine) -> None:
    first = add_holiday(engine, date(2026, 5, 12), "تعطیلی", kind="closure", province="qom")
    again = add_holiday(engine, date(2026, 5, 12), " تعطیلی ", kind="closure", province="qom")
    assert first.created and not again.created and again.entry == first.entry
    found = [h for h in list_holidays(engine, jalali_year=1405) if h.day == date(2026, 5, 12)]
    assert len(found) == 1


def test_unknown_provinces_kinds_and_names_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match=r"unknown province 'qum' \(known: qom, tehran\)"):
        add_holiday(engine, date(2026, 5, 12), "تعطیلی", kind="closure", province="qum")
    with pytest.raises(ValueError, match="unknown holiday kind"):
        add_holiday(engine, date(2026, 5, 12), "تعطیلی", kind="weekly")
    with pytest.raises(ValueError, match="needs a name"):
        add_holiday(engine, date(2026, 5, 12), "   ")
    with pytest.raises(ValueError, match="Jalali year 99999 is out of range"):
        list_holidays(engine, jalali_year=99999)


def test_cli_calendar_edges(url: str, engine: Engine) -> None:
    args = ("calendar", "add", "1405/02/22", "تعطیلی", "--closure", "--province", "qom")
    assert "added closure 1405/02/22" in run_ivr(url, *args)
    assert "already there: closure 1405/02/22 تعطیلی (qom)" in run_ivr(url, *args)
    out = run_ivr(url, "calendar", "add", "1405/02/23", "روز ملی")  # without --closure
    assert "added holiday 1405/02/23 روز ملی (all provinces)" in out
    kinds = {h.name: h.kind for h in list_holidays(engine, jalali_year=1405)}
    assert kinds["روز ملی"] == "holiday" and kinds["تعطیلی"] == "closure"
    assert "unknown province 'qum'" in run_ivr_refused(
        url, "calendar", "add", "1405/02/22", "x", "--closure", "--province", "qum"
    )
    assert "needs a name" in run_ivr_refused(url, "calendar", "add", "1405/02/24", "")
    assert "between 1 and 1000 working days" in run_ivr_refused(
        url, "calendar", "deadline", "1405/01/05", "99999999999999"
    )
    assert "Jalali year 99999 is out of range" in run_ivr_refused(
        url, "calendar", "list", "--year", "99999"
    )
    assert "not a date" in run_ivr_refused(url, "calendar", "deadline", "tomorrow", "3")
    line = run_ivr_refused(url, "calendar", "deadline", "1405/13/40", "3")
    assert line == "not a date: '1405/13/40' (month must be in 1..12)"
    assert "unknown province" in run_ivr_refused(url, "calendar", "list", "--province", "atlantis")


def test_the_readme_confirm_example(url: str) -> None:
    # 29 Esfand 1405 is Oil Nationalization Day, a fixed holiday: nothing to confirm, said so.
    out = run_ivr(url, "calendar", "confirm", "1405/12/29")
    assert "1405/12/29 is a fixed holiday (روز ملی شدن صنعت نفت ایران)" in out
    # 19 Esfand 1405 is Eid al-Fitr 1448, an estimate until the moon is sighted.
    assert "confirmed 1 holidays on 1405/12/19" in run_ivr(url, "calendar", "confirm", "1405/12/19")
    assert "no lunar holiday, holiday or closure on 1405/12/18" in run_ivr_refused(
        url, "calendar", "confirm", "1405/12/18"
    )


def test_a_deadline_into_an_unseeded_year_seeds_it(url: str, engine: Engine) -> None:
    # The fixture seeded 1404 and 1405 only; 20 working days from 20 Esfand 1406 run into 1407
    # through Nowruz 1407, which must be counted as holidays, not working days.
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_DATABASE_URL"] = url
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ivr")), "calendar", "deadline", "1406/12/20", "20"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert "seeded the holidays of Jalali 1407 first" in done.stderr
    with Session(engine) as session:
        assert 1407 in set(session.exec(select(HolidaySeed.jalali_year)))
    calendar = load_calendar(engine, SEED_DAY)
    expected = calendar.add_working_days(parse_moment("1406/12/20"), 20, "qom")
    assert iso_utc(expected) in done.stdout
    assert not calendar.is_working_day(jdatetime.date(1407, 1, 2).togregorian(), "qom")
    # Without 1407's holidays, Nowruz would have counted as four working days.
    bare = WorkCalendar([h for h in calendar.holidays if jalali_year_of(h.day) != 1407])
    assert bare.add_working_days(parse_moment("1406/12/20"), 20, "qom") < expected
