"""The agents' hours (ivr/calendar/agent_hours.toml) on the working-day calendar's days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from ivr.calendar import Holiday, ThursdayRule, WorkCalendar, seed_holidays
from ivr.calendar.agent_hours import (
    DEFAULT_HOURS_FILE,
    AgentHours,
    Hours,
    load_agent_hours,
)
from ivr.calendar.store import load_calendar, parse_moment
from ivr.clock import TEHRAN
from ivr.tickets.db import make_engine, upgrade

REAL_YEARS = seed_holidays(1404) + seed_holidays(1405)
"""The seeded holidays of 1404 and 1405 (Nowruz, Eid al-Fitr on 1 and 2 Farvardin 1405 …)."""


def tehran(text: str) -> datetime:
    """``1405/02/23 17:00`` (Jalali or ISO, Tehran) as aware UTC."""
    return parse_moment(text)


def local(moment: datetime) -> str:
    return moment.astimezone(TEHRAN).strftime("%Y-%m-%d %a %H:%M")


@pytest.fixture
def hours() -> AgentHours:
    return AgentHours(load_agent_hours(), WorkCalendar(REAL_YEARS))


def test_the_shipped_file_says_eight_to_four() -> None:
    table = load_agent_hours(DEFAULT_HOURS_FILE)
    assert table.default == Hours(time(8), time(16))
    assert table.for_province("qom") == table.default


def test_open_inside_the_hours_of_a_working_day_only(hours: AgentHours) -> None:
    # 1405/02/23 is a Wednesday with no holiday.
    assert not hours.is_open("qom", tehran("1405/02/23 07:59"))
    assert hours.is_open("qom", tehran("1405/02/23 08:00"))
    assert hours.is_open("qom", tehran("1405/02/23 15:59"))
    assert not hours.is_open("qom", tehran("1405/02/23 16:00"))  # closing time is closed
    assert not hours.is_open("qom", tehran("1405/02/25 10:00"))  # Friday
    assert not hours.is_open("qom", tehran("1405/01/01 10:00"))  # Nowruz


def test_next_opening_from_a_wednesday_evening_is_saturday_morning(hours: AgentHours) -> None:
    # Thursday is closed (the default decree), Friday is the weekly holiday.
    opening = hours.next_opening("qom", tehran("1405/02/23 18:30"))
    assert local(opening) == "2026-05-16 Sat 08:00"
    assert opening.tzinfo is not None and opening.utcoffset() == UTC.utcoffset(None)


def test_inside_the_hours_the_next_opening_is_now(hours: AgentHours) -> None:
    moment = tehran("1405/02/23 10:15")
    assert hours.next_opening("qom", moment) == moment


def test_next_opening_on_a_thursday_follows_the_decree() -> None:
    closed = AgentHours(load_agent_hours(), WorkCalendar(REAL_YEARS))
    assert local(closed.next_opening("qom", tehran("1405/02/24 09:00"))) == "2026-05-16 Sat 08:00"

    # A decree that opens Thursdays 08:00–13:00: agents keep the decree's hours that day.
    decree = ThursdayRule(date(2026, 1, 1), open=True, opens=time(8), closes=time(13))
    open_thursdays = AgentHours(load_agent_hours(), WorkCalendar(REAL_YEARS, [decree]))
    assert local(open_thursdays.next_opening("qom", tehran("1405/02/24 07:00"))) == (
        "2026-05-14 Thu 08:00"
    )
    assert open_thursdays.is_open("qom", tehran("1405/02/24 12:59"))
    assert not open_thursdays.is_open("qom", tehran("1405/02/24 13:00"))
    assert local(open_thursdays.next_opening("qom", tehran("1405/02/24 13:30"))) == (
        "2026-05-16 Sat 08:00"
    )
    # From a Wednesday evening, that Thursday morning is next.
    assert local(open_thursdays.next_opening("qom", tehran("1405/02/23 18:30"))) == (
        "2026-05-14 Thu 08:00"
    )


def test_next_opening_on_the_eve_of_nowruz_is_after_the_holidays(hours: AgentHours) -> None:
    # 1404/12/27 (Wednesday) 17:00: Thursday closed, 29 Esfand (oil day, a Friday), Nowruz 1–4
    # Farvardin (with Eid al-Fitr on the first two): agents are back on Wednesday 5 Farvardin.
    assert local(hours.next_opening("qom", tehran("1404/12/27 17:00"))) == "2026-03-25 Wed 08:00"
    assert local(hours.next_opening("qom", tehran("1404/12/28 20:00"))) == "2026-03-25 Wed 08:00"
    assert local(hours.next_opening("qom", tehran("1405/01/02 11:00"))) == "2026-03-25 Wed 08:00"


def test_a_provincial_closure_closes_that_province_alone() -> None:
    closure = Holiday(date(2026, 5, 16), "تعطیلی", "closure", province="qom")
    hours = AgentHours(load_agent_hours(), WorkCalendar([*REAL_YEARS, closure]))
    evening = tehran("1405/02/23 18:30")
    assert local(hours.next_opening("qom", evening)) == "2026-05-17 Sun 08:00"
    assert local(hours.next_opening("tehran", evening)) == "2026-05-16 Sat 08:00"


def test_a_province_may_keep_other_hours_and_its_own_thursdays() -> None:
    table = load_agent_hours(
        """
        [default]
        opens = "08:00"
        closes = "16:00"
        [provinces.tehran]
        closes = "20:00"
        thursday_opens = "09:00"
        thursday_closes = "12:00"
        """
    )
    decree = ThursdayRule(date(2026, 1, 1), open=True)
    hours = AgentHours(table, WorkCalendar(REAL_YEARS, [decree]))
    assert hours.is_open("tehran", tehran("1405/02/23 19:30"))
    assert not hours.is_open("qom", tehran("1405/02/23 19:30"))
    assert local(hours.next_opening("tehran", tehran("1405/02/24 08:00"))) == (
        "2026-05-14 Thu 09:00"
    )
    assert local(hours.next_opening("qom", tehran("1405/02/24 07:00"))) == "2026-05-14 Thu 08:00"


def test_hours_follow_the_database_calendar(tmp_path: Path) -> None:
    """The calendar an administrator edits (ivr calendar add) is the one the hours use."""
    from ivr.calendar.store import add_holiday

    url = f"sqlite:///{tmp_path / 'ivr.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        add_holiday(engine, date(2026, 5, 16), "تعطیلی", kind="closure")
        hours = AgentHours(load_agent_hours(), load_calendar(engine, date(2026, 5, 13)))
        assert local(hours.next_opening("qom", tehran("1405/02/23 18:30"))) == (
            "2026-05-17 Sun 08:00"
        )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[default]\nopens = "8"\ncloses = "16:00"', "not a time of day"),
        ('[default]\nopens = "16:00"\ncloses = "08:00"', "close at"),
        ('[default]\nopens = "08:00"\ncloses = "16:00"\nshift = 2', "unknown key"),
        ('[default]\nopens = "08:00"', "opens and closes are required"),
        ('[default]\nopens = "08:00"\ncloses = "16:00"\nthursday_opens = "09:00"', "go together"),
        ('[weekdays]\nopens = "08:00"', "unknown section"),
        ("[default\n", "agent hours"),
    ],
)
def test_a_wrong_file_is_refused_with_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_agent_hours(text)
