"""The working-day calendar and SLA deadlines, against dates worked out by hand.

Every expected moment is written as Tehran wall-clock time (what a supervisor would check on a
wall calendar) and converted to naive UTC by ``tehran()``; the time-zone tests pin the UTC values
themselves.  Weekdays of the dates used: 2026-03-16 Mon, 2026-03-21 Sat, 2026-04-23 Thu,
2026-05-09 Sat, 2026-05-27 Wed, 2026-06-24 Wed, 2027-03-10 Wed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.calendar import (
    DEFAULT_POLICY_FILE,
    Deadlines,
    Holiday,
    SlaPolicy,
    ThursdayRule,
    WorkCalendar,
    clock_reaches,
    deadlines,
    fixed_holidays,
    jalali_year_bounds,
    load_policies,
    policy_for,
    seed_current_and_next,
    seed_holidays,
)

TEHRAN = ZoneInfo("Asia/Tehran")
QOM = "qom"
POLICIES = load_policies()
CAL = WorkCalendar(seed_holidays(1404) + seed_holidays(1405))


def tehran(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    """Naive UTC (as the database stores it) for a Tehran wall-clock time."""
    return datetime(y, mo, d, h, mi, tzinfo=TEHRAN).astimezone(UTC).replace(tzinfo=None)


def closure(day: date, province: str | None = None) -> Holiday:
    return Holiday(day, "تعطیلی برای صرفه‌جویی انرژی", "closure", province)


# Holidays as data --------------------------------------------------------------------------------


def test_fixed_holidays_1405_match_the_wall_calendar() -> None:
    assert {h.day: h.name for h in fixed_holidays(1405)} == {
        date(2026, 3, 21): "جشن نوروز",  # 1 Farvardin 1405
        date(2026, 3, 22): "عیدنوروز",
        date(2026, 3, 23): "عیدنوروز",
        date(2026, 3, 24): "عیدنوروز",
        date(2026, 4, 1): "روز جمهوری اسلامی",  # 12 Farvardin
        date(2026, 4, 2): "روز طبیعت",  # 13 Farvardin
        date(2026, 6, 4): "رحلت حضرت امام خمینی",  # 14 Khordad
        date(2026, 6, 5): "قیام 15 خرداد",  # 15 Khordad
        date(2027, 2, 11): "پیروزی انقلاب اسلامی",  # 22 Bahman
        date(2027, 3, 20): "روز ملی شدن صنعت نفت ایران",  # 29 Esfand 1405
    }
    assert all(h.kind == "fixed" and h.province is None for h in fixed_holidays(1405))


def test_29_esfand_and_the_leap_year_30th() -> None:
    assert date(2026, 3, 20) in {h.day for h in fixed_holidays(1404)}  # 29 Esfand 1404
    # 1403 is a leap year: 29 Esfand = 2025-03-19 is the holiday; 30 Esfand (2025-03-20) is not
    # in the law's list, although the `holidays` package closes it ("آخرین روز سال").
    days_1403 = {h.day for h in seed_holidays(1403)}
    assert date(2025, 3, 19) in days_1403
    assert date(2025, 3, 20) not in days_1403
    assert jalali_year_bounds(1403) == (date(2024, 3, 20), date(2025, 3, 21))


def test_lunar_holidays_of_1405_come_from_the_package_with_estimates_marked() -> None:
    lunar = [(h.day, h.estimated) for h in seed_holidays(1405) if h.kind == "lunar"]
    confirmed = [
        (3, 21), (3, 22), (4, 14), (5, 27), (6, 4), (6, 24), (6, 25), (8, 4),
        (8, 12), (8, 13), (8, 21), (8, 30), (11, 13), (12, 23),
    ]  # fmt: skip
    estimated = [(1, 6), (1, 24), (3, 1), (3, 10), (3, 11)]  # Gregorian 2027: after 2026
    assert lunar == [(date(2026, m, d), False) for m, d in confirmed] + [
        (date(2027, m, d), True) for m, d in estimated
    ]
    names = {(h.day, h.name) for h in seed_holidays(1405)}
    assert (date(2026, 3, 21), "عید سعید فطر") in names  # Eid al-Fitr on Nowruz
    assert (date(2026, 5, 27), "عید سعید قربان") in names
    assert (date(2026, 6, 24), "تاسوعای حسینی") in names
    assert (date(2027, 3, 10), "عید سعید فطر") in names  # stored without "(تخمینی)"


def test_package_one_off_closures_are_kept_as_closures() -> None:
    closures = [h.day for h in seed_holidays(1404) if h.kind == "closure"]
    assert closures == [date(2026, 3, d) for d in range(1, 8)]


def test_seed_current_and_next_covers_two_jalali_years() -> None:
    days = [h.day for h in seed_current_and_next(date(2026, 11, 28))]  # 7 Azar 1405
    assert min(days) >= date(2026, 3, 21)
    assert max(days) < jalali_year_bounds(1407)[0]
    assert date(2027, 3, 21) in days  # Nowruz 1406


def test_holiday_kind_is_checked() -> None:
    with pytest.raises(ValueError):
        Holiday(date(2026, 5, 10), "x", "weekend")  # type: ignore[arg-type]


# The registration day and the working week -------------------------------------------------------


@pytest.mark.parametrize(
    ("registered", "due"),
    [
        (tehran(2026, 5, 9, 9), tehran(2026, 5, 10, 16)),  # Saturday 09:00 → Sunday close
        (tehran(2026, 5, 9, 2), tehran(2026, 5, 10, 16)),  # before opening: still Saturday
        (tehran(2026, 5, 9, 20), tehran(2026, 5, 10, 16)),  # after hours
        (tehran(2026, 5, 8, 11), tehran(2026, 5, 9, 16)),  # Friday → Saturday
        (tehran(2026, 5, 6, 10), tehran(2026, 5, 9, 16)),  # Wednesday → Thu closed, Fri off
    ],
)
def test_the_registration_day_does_not_count(registered: datetime, due: datetime) -> None:
    assert CAL.add_working_days(registered, 1, QOM) == due


def test_at_least_one_working_day() -> None:
    with pytest.raises(ValueError):
        CAL.add_working_days(tehran(2026, 5, 9, 9), 0, QOM)


def test_tehran_is_utc_plus_3_30_and_the_day_turns_at_tehran_midnight() -> None:
    # Saturday 23:59 Tehran = 20:29 UTC: registered Saturday, due Sunday 16:00 = 12:30 UTC.
    assert CAL.add_working_days(datetime(2026, 5, 9, 20, 29), 1, QOM) == datetime(
        2026, 5, 10, 12, 30
    )
    # 20:30 UTC is already Sunday 00:00 in Tehran: due Monday.
    assert CAL.add_working_days(datetime(2026, 5, 9, 20, 30), 1, QOM) == datetime(
        2026, 5, 11, 12, 30
    )
    # An aware datetime in any zone means the same moment.
    aware = datetime(2026, 5, 10, 0, 0, tzinfo=TEHRAN)
    assert CAL.add_working_days(aware, 1, QOM) == datetime(2026, 5, 11, 12, 30)
    # Opening 08:00 = 04:30 UTC, closing 16:00 = 12:30 UTC, closing instant excluded.
    assert not CAL.is_working_time(datetime(2026, 5, 9, 4, 29, 59), QOM)
    assert CAL.is_working_time(datetime(2026, 5, 9, 4, 30), QOM)
    assert CAL.is_working_time(datetime(2026, 5, 9, 12, 29, 59), QOM)
    assert not CAL.is_working_time(datetime(2026, 5, 9, 12, 30), QOM)


def test_no_daylight_saving_since_2022_but_history_is_respected() -> None:
    opens, closes = CAL.opening_hours(date(2026, 7, 4), QOM)  # a Saturday in summer
    assert opens.utcoffset() == timedelta(hours=3, minutes=30)
    assert opens.astimezone(UTC).replace(tzinfo=None) == datetime(2026, 7, 4, 4, 30)
    assert closes.hour == 16
    summer_2021, _ = WorkCalendar().opening_hours(date(2021, 6, 12), QOM)  # DST still in force
    assert summer_2021.utcoffset() == timedelta(hours=4, minutes=30)


# Holidays in deadlines ---------------------------------------------------------------------------


def test_deadlines_across_nowruz() -> None:
    created = tehran(2026, 3, 16, 10)  # Monday 25 Esfand 1404
    # Working days after it: Tue 17, Wed 18, [Thu 19, Fri 20 (29 Esfand), Sat 21–Tue 24 Nowruz],
    # Wed 25, [Thu, Fri], Sat 28, Sun 29, Mon 30, Tue 31, [Wed 1 and Thu 2 Apr: 12–13 Farvardin,
    # Fri 3], Sat 4, Sun 5, Mon 6.
    assert deadlines(created, "industry", QOM, CAL, POLICIES) == Deadlines(
        first_response_due=tehran(2026, 3, 18, 16),
        resolution_due=tehran(2026, 4, 6, 16),
        # 75 % of 22 h (Mon 6 h + 8 + 8) = 16.5 h: Mon 6, Tue 14, Wed 08:00 + 2.5 h.
        first_response_warn=tehran(2026, 3, 18, 10, 30),
        # 75 % of 86 h = 64.5 h: 62 h by Tue 31 Mar, then 2.5 h into Sat 4 Apr.
        resolution_warn=tehran(2026, 4, 4, 10, 30),
    )
    consumer = deadlines(created, "consumer", QOM, CAL, POLICIES)
    assert consumer.first_response_due == tehran(2026, 3, 17, 16)
    assert consumer.resolution_due == tehran(2026, 3, 29, 16)  # Tue, Wed, Wed 25, Sat, Sun
    # Registered two days later, the first response itself straddles Nowruz.
    later = deadlines(tehran(2026, 3, 18, 10), "industry", QOM, CAL, POLICIES)
    assert later.first_response_due == tehran(2026, 3, 28, 16)  # Wed 25, Sat 28
    assert later.resolution_due == tehran(2026, 4, 8, 16)


def test_lunar_holidays_are_skipped() -> None:
    assert [h.kind for h in CAL.holidays_on(date(2026, 5, 27), QOM)] == ["lunar"]
    # Tuesday before Eid al-Adha (Wed 27 May): Wed holiday, Thu closed, Fri off → Saturday.
    assert CAL.add_working_days(tehran(2026, 5, 26, 10), 1, QOM) == tehran(2026, 5, 30, 16)
    # Tasua (Wed 24 Jun) and Ashura (Thu 25 Jun).
    assert CAL.add_working_days(tehran(2026, 6, 23, 10), 1, QOM) == tehran(2026, 6, 27, 16)
    # An estimated date counts until someone moves it: Eid al-Fitr 1448 on Wed 10 Mar 2027.
    assert [h.estimated for h in CAL.holidays_on(date(2027, 3, 10), QOM)] == [True]
    assert CAL.add_working_days(tehran(2027, 3, 9, 10), 1, QOM) == tehran(2027, 3, 13, 16)


def test_thursday_before_and_after_a_rule_change() -> None:
    rules = [  # given out of order on purpose: the calendar sorts them
        ThursdayRule(date(2026, 4, 30), open=False),
        ThursdayRule(date(2000, 1, 1), open=True, opens=time(8), closes=time(13)),
    ]
    cal = WorkCalendar(CAL.holidays, thursday_rules=rules)
    assert cal.opening_hours(date(2026, 4, 23), QOM) == (
        datetime(2026, 4, 23, 8, tzinfo=TEHRAN),
        datetime(2026, 4, 23, 13, tzinfo=TEHRAN),
    )
    assert cal.add_working_days(tehran(2026, 4, 22, 10), 1, QOM) == tehran(2026, 4, 23, 13)
    assert cal.next_opening(tehran(2026, 4, 22, 17), QOM) == tehran(2026, 4, 23, 8)
    # The new rule holds from its own day: Thursday 30 April is closed.
    assert cal.opening_hours(date(2026, 4, 30), QOM) is None
    assert cal.add_working_days(tehran(2026, 4, 29, 10), 1, QOM) == tehran(2026, 5, 2, 16)
    # With no rule in force yet, Thursday is closed.
    assert not WorkCalendar(thursday_rules=rules[:1]).is_working_day(date(2026, 4, 23), QOM)


def test_a_closure_decreed_after_registration_moves_the_deadline() -> None:
    created = tehran(2026, 5, 9, 9)  # Saturday
    before = deadlines(created, "trade", QOM, CAL, POLICIES)
    assert before.first_response_due == tehran(2026, 5, 11, 16)  # Sun, Mon
    after = deadlines(
        created, "trade", QOM, CAL.with_holidays(closure(date(2026, 5, 10))), POLICIES
    )
    assert after.first_response_due == tehran(2026, 5, 12, 16)  # Mon, Tue
    assert after.resolution_due == before.resolution_due + timedelta(days=1)  # 23 → 24 May
    assert CAL.holidays_on(date(2026, 5, 10), QOM) == []  # the original calendar is unchanged


def test_a_provincial_closure_leaves_other_provinces_open() -> None:
    cal = CAL.with_holidays(closure(date(2026, 5, 10), province=QOM))
    assert not cal.is_working_day(date(2026, 5, 10), QOM)
    assert cal.is_working_day(date(2026, 5, 10), "tehran")
    created = tehran(2026, 5, 9, 9)
    assert cal.add_working_days(created, 2, QOM) == tehran(2026, 5, 12, 16)
    assert cal.add_working_days(created, 2, "tehran") == tehran(2026, 5, 11, 16)


# Pauses ------------------------------------------------------------------------------------------

CREATED = tehran(2026, 5, 9, 9)  # Saturday; budgets: first response 23 h, resolution 87 h
THREE_DAYS = (tehran(2026, 5, 10, 8), tehran(2026, 5, 13, 8))  # Sun, Mon, Tue waiting for caller


def test_unpaused_deadlines_for_reference() -> None:
    assert deadlines(CREATED, "other", QOM, CAL, POLICIES) == Deadlines(
        first_response_due=tehran(2026, 5, 11, 16),
        resolution_due=tehran(2026, 5, 23, 16),  # Sun 10 … Wed 20, Sat 23: ten working days
        first_response_warn=tehran(2026, 5, 11, 10, 15),  # 17.25 h: Sat 7, Sun 15, Mon +2.25
        resolution_warn=tehran(2026, 5, 19, 10, 15),  # 65.25 h: 63 h by Mon 18, Tue +2.25
    )


@pytest.mark.parametrize(
    "paused",
    [
        [THREE_DAYS],
        [(tehran(2026, 5, 9, 16, 30), tehran(2026, 5, 12, 23))],  # edges outside working hours
        [  # overlapping pieces, in any order
            (tehran(2026, 5, 11, 12), THREE_DAYS[1]),
            (THREE_DAYS[0], tehran(2026, 5, 11, 14)),
        ],
    ],
)
def test_three_working_days_paused_move_deadlines_three_working_days(paused: list) -> None:
    assert deadlines(CREATED, "other", QOM, CAL, POLICIES, paused) == Deadlines(
        first_response_due=tehran(2026, 5, 16, 16),  # Mon 11 + Tue, Wed, Sat
        resolution_due=tehran(2026, 5, 26, 16),  # Sat 23 + Sun, Mon, Tue
        first_response_warn=tehran(2026, 5, 16, 10, 15),  # 7 h Sat, 8 Wed 13, +2.25 Sat 16
        resolution_warn=tehran(2026, 5, 24, 10, 15),
    )


def test_an_open_pause_stops_the_clocks_that_have_not_run_out() -> None:
    waiting = deadlines(CREATED, "other", QOM, CAL, POLICIES, [(THREE_DAYS[0], None)])
    assert waiting == Deadlines(None, None, None, None)
    # Paused only after the first-response deadline had passed: that breach stands.
    late = deadlines(CREATED, "other", QOM, CAL, POLICIES, [(tehran(2026, 5, 12, 8), None)])
    assert late.first_response_due == tehran(2026, 5, 11, 16)
    assert late.first_response_warn == tehran(2026, 5, 11, 10, 15)
    assert late.resolution_due is None


def test_a_pause_ending_before_it_starts_is_an_error() -> None:
    with pytest.raises(ValueError):
        deadlines(CREATED, "other", QOM, CAL, POLICIES, [(THREE_DAYS[1], THREE_DAYS[0])])


def test_unpaused_deadline_is_always_add_working_days() -> None:
    """Every hour for two weeks around Nowruz, including nights, Fridays and holidays."""
    start = tehran(2026, 3, 14)
    for hour in range(14 * 24):
        created = start + timedelta(hours=hour)
        due = deadlines(created, "consumer", QOM, CAL, POLICIES)
        assert due.first_response_due == CAL.add_working_days(created, 1, QOM)
        assert due.resolution_due == CAL.add_working_days(created, 5, QOM)
        assert due.first_response_warn < due.first_response_due


# Working time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "opening"),
    [
        (tehran(2026, 5, 9, 2), tehran(2026, 5, 9, 8)),  # 02:00 on a working day
        (tehran(2026, 5, 9, 10), tehran(2026, 5, 9, 10)),  # inside hours: the moment itself
        (tehran(2026, 5, 9, 16), tehran(2026, 5, 10, 8)),  # closing instant
        (tehran(2026, 5, 8, 12), tehran(2026, 5, 9, 8)),  # Friday
        (tehran(2026, 5, 6, 17), tehran(2026, 5, 9, 8)),  # Wednesday evening: Thursday closed
        (tehran(2026, 3, 22, 10), tehran(2026, 3, 25, 8)),  # Nowruz → Wednesday 6 Farvardin
    ],
)
def test_next_opening(moment: datetime, opening: datetime) -> None:
    assert CAL.next_opening(moment, QOM) == opening


def test_next_opening_in_utc() -> None:
    # Saturday 02:00 Tehran = Friday 22:30 UTC; the office opens at 04:30 UTC.
    assert CAL.next_opening(datetime(2026, 5, 8, 22, 30), QOM) == datetime(2026, 5, 9, 4, 30)


def test_working_seconds_between() -> None:
    a, b = tehran(2026, 5, 9, 9), tehran(2026, 5, 10, 10)
    assert CAL.working_seconds_between(a, b, QOM) == 9 * 3600  # Sat 7 h + Sun 2 h
    assert CAL.working_seconds_between(b, a, QOM) == 0
    assert CAL.working_seconds_between(tehran(2026, 3, 20), tehran(2026, 3, 25), QOM) == 0


# Policies as data --------------------------------------------------------------------------------


def test_default_policy_file() -> None:
    assert DEFAULT_POLICY_FILE.name == "categories.toml"
    policies = POLICIES
    assert policies == {
        "industry": SlaPolicy(2, 10, 0.75),
        "mining": SlaPolicy(2, 10, 0.75),
        "trade": SlaPolicy(2, 10, 0.75),
        "consumer": SlaPolicy(1, 5, 0.75),
        "permits": SlaPolicy(2, 10, 0.75),
        "other": SlaPolicy(2, 10, 0.75),
    }


CATEGORIES_TEXT = """\
fallback = "other"
[sla]
resolution_days = 7
[[category]]
code = "other"
key = "1"
name = "سایر"
[[category]]
code = "consumer"
key = "2"
name = "مصرف‌کننده"
sla = { first_response_days = 1, warn_fraction = 0.5 }
"""


def test_policies_from_text_and_fallback() -> None:
    policies = load_policies(CATEGORIES_TEXT)
    assert policies["consumer"] == SlaPolicy(1, 7, 0.5)
    assert policy_for(policies, "unheard-of") == policies["other"] == SlaPolicy(2, 7, 0.75)
    with pytest.raises(ValueError, match="warn_fraction"):
        load_policies(CATEGORIES_TEXT.replace("0.5", "1.5"))


def test_a_changed_categories_file_changes_the_deadlines() -> None:
    created = tehran(2026, 5, 9, 9)  # Saturday
    slower = load_policies(CATEGORIES_TEXT.replace("resolution_days = 7", "resolution_days = 9"))
    due = deadlines(created, "other", QOM, CAL, load_policies(CATEGORIES_TEXT)).resolution_due
    later = deadlines(created, "other", QOM, CAL, slower).resolution_due
    assert due is not None and later is not None
    assert CAL.working_seconds_between(due, later, QOM) == 2 * 8 * 3600  # two more working days


@settings(max_examples=300, deadline=None)
@given(
    created=st.datetimes(min_value=datetime(2025, 3, 21), max_value=datetime(2027, 3, 10)),
    days=st.integers(min_value=1, max_value=30),
)
def test_unpaused_the_clock_reaches_its_budget_at_the_nth_working_days_close(
    created: datetime, days: int
) -> None:
    """What lets ``deadlines`` skip walking the clock for a new ticket (no pauses)."""
    close = CAL.add_working_days(created, days, QOM)
    budget = CAL.working_time_between(created, close, QOM)
    assert clock_reaches(CAL, created, QOM, budget) == close
    policy = SlaPolicy(days, days, 0.5)
    found = deadlines(created, "x", QOM, CAL, {"x": policy})
    walked = deadlines(created, "x", QOM, CAL, {"x": policy}, [(close, close)])
    assert found.resolution_due == found.first_response_due == walked.resolution_due == close
