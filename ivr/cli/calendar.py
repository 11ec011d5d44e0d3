"""The working-day calendar: holidays, closures, Thursday rules, deadlines.

Every edit goes through ``ivr.calendar.store``, whose edit functions recompute open tickets'
deadlines themselves; this module only reads arguments and says what was done.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(
    no_args_is_help=True,
    help="Holidays, closures and Thursday rules; every change recomputes open tickets' deadlines.",
)

MAX_WORKING_DAYS = 1000
"""About four years of working days: more is a typo, and would keep the calendar busy."""

ProvinceOption = Annotated[
    str | None, typer.Option("--province", help="A province code; none: nationwide")
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="Only the holiday with this name (a day may have two)")
]


def _calendar_engine(*days: date) -> Engine:
    """The database, with this and next Jalali year seeded and those of ``days`` (edited days):
    a holiday not seeded yet cannot be confirmed or moved, and an edit before a later seed
    would make that seed skip its year."""
    from ivr.calendar import jalali_year_of
    from ivr.calendar.store import check_jalali_year, seed_years
    from ivr.clock import tehran_today
    from ivr.tickets.db import open_database

    engine = open_database(get_settings().db_url)
    this_year = jalali_year_of(tehran_today())
    years = {this_year, this_year + 1}
    for day in days:
        try:
            years.add(check_jalali_year(jalali_year_of(day)))
        except ValueError as error:
            fail(str(error))
    seed_years(engine, years)
    return engine


def _day(text: str) -> date:
    from ivr.calendar.store import parse_day

    try:
        return parse_day(text)
    except ValueError as error:
        fail(str(error))


def _province(code: str | None) -> str | None:
    from ivr.calendar.offices import check_province

    try:
        return check_province(code)
    except ValueError as error:
        fail(str(error))


def _said_recomputed(count: int) -> None:
    typer.echo(f"deadlines of {count} open tickets changed")


@app.command("list")
def calendar_list(
    year: Annotated[
        int | None, typer.Option("--year", help="Jalali year; default: this one")
    ] = None,
    province: ProvinceOption = None,
) -> None:
    """The year's holidays and closures (Jalali dates) and the Thursday rules."""
    from ivr.calendar import jalali_year_bounds, jalali_year_of
    from ivr.calendar.store import check_jalali_year, list_holidays, thursday_rules
    from ivr.clock import jalali_day, tehran_today

    province = _province(province)
    this_year = jalali_year_of(tehran_today())
    year = this_year if year is None else year
    try:
        check_jalali_year(year)
    except ValueError as error:
        fail(str(error))
    engine = _calendar_engine(jalali_year_bounds(year)[0])
    entries = list_holidays(engine, jalali_year=year, province=province)
    typer.echo(f"holidays of {year} ({len(entries)})")
    for h in entries:
        state = "confirmed" if h.confirmed else "estimated" if h.estimated else "-"
        where = h.province or "all"
        typer.echo(f"  {jalali_day(h.day)}  {h.day.isoformat()}  {h.kind:<7} {where:<8} "
                   f"{state:<9}  {h.name}")  # fmt: skip
    rules = thursday_rules(engine)
    typer.echo("thursday rules" + ("" if rules else ": none stored (closed)"))
    for r in rules:
        hours = f"open {r.opens:%H:%M}-{r.closes:%H:%M}" if r.open else "closed"
        typer.echo(
            f"  from {jalali_day(r.effective_from)}  {r.effective_from.isoformat()}  {hours}"
        )


@app.command("add")
def calendar_add(
    day: str,
    name: str,
    province: ProvinceOption = None,
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="holiday (an official day off), lunar (moves with the moon) or closure",
        ),
    ] = "holiday",
    closure: Annotated[bool, typer.Option("--closure", help="Short for --kind closure")] = False,
) -> None:
    """Add a holiday (or with --closure a one-off closure), confirmed; DATE 1405/02/10 or ISO."""
    from ivr.calendar.store import add_holiday
    from ivr.clock import jalali_day

    when = _day(day)
    province = _province(province)
    if closure:
        kind = "closure"
    if kind == "fixed":
        fail("fixed holidays are the law's list (ivr/calendar/holidays_seed.py): add a holiday")
    engine = _calendar_engine(when)  # seed first, or the seed would skip this year later
    try:
        added = add_holiday(engine, when, name, kind=kind, province=province)
    except ValueError as error:
        fail(str(error))
    entry = added.entry
    where = entry.province or "all provinces"
    if not added.created:
        typer.echo(f"already there: {entry.kind} {jalali_day(entry.day)} {entry.name} ({where})")
        return
    typer.echo(f"added {entry.kind} {jalali_day(entry.day)} {entry.name} ({where})")
    _said_recomputed(added.recomputed)


@app.command("remove")
def calendar_remove(day: str, province: ProvinceOption = None, name: NameOption = None) -> None:
    """Remove the day's holidays (nationwide ones, or --province's own)."""
    from ivr.calendar.store import remove_holidays
    from ivr.clock import jalali_day

    when = _day(day)
    province = _province(province)
    removed = remove_holidays(_calendar_engine(when), when, province=province, name=name)
    if not removed.value:
        fail(f"no holiday on {jalali_day(when)} for {province or 'all provinces'}")
    for h in removed.value:
        typer.echo(f"removed {h.kind} {jalali_day(h.day)} {h.name}")
    _said_recomputed(removed.recomputed)


@app.command("confirm")
def calendar_confirm(day: str, province: ProvinceOption = None, name: NameOption = None) -> None:
    """Confirm the day's estimated lunar holidays (the moon was sighted as expected)."""
    from ivr.calendar.store import confirm_holidays, fixed_holidays_on
    from ivr.clock import jalali_day

    when = _day(day)
    province = _province(province)
    engine = _calendar_engine(when)
    confirmed = confirm_holidays(engine, when, province=province, name=name)
    if not confirmed.value:
        fixed = fixed_holidays_on(engine, when, province)
        if fixed:
            names = "، ".join(h.name for h in fixed)
            typer.echo(
                f"{jalali_day(when)} is a fixed holiday ({names}): the law's days are certain "
                "and need no confirmation"
            )
            return
        fail(f"no lunar holiday, holiday or closure on {jalali_day(when)} to confirm")
    typer.echo(f"confirmed {confirmed.value} holidays on {jalali_day(when)}")
    _said_recomputed(confirmed.recomputed)


@app.command("move")
def calendar_move(
    day: str, to: str, province: ProvinceOption = None, name: NameOption = None
) -> None:
    """Move the day's lunar holidays to another day (moon sighting) and confirm them."""
    from ivr.calendar.store import move_holidays
    from ivr.clock import jalali_day

    when, new = _day(day), _day(to)
    province = _province(province)
    try:
        moved = move_holidays(_calendar_engine(when, new), when, new, province=province, name=name)
    except ValueError as error:
        fail(str(error))
    if not moved.value:
        fail(f"no lunar holiday, holiday or closure on {jalali_day(when)} to move")
    typer.echo(f"moved {moved.value} holidays from {jalali_day(when)} to {jalali_day(new)}")
    _said_recomputed(moved.recomputed)


@app.command("thursday")
def calendar_thursday(
    effective_from: Annotated[str, typer.Argument(help="From this date on (Jalali or ISO)")],
    open_: Annotated[
        bool, typer.Option("--open/--closed", help="Whether offices open on Thursdays")
    ] = False,
    opens: Annotated[str, typer.Option(help="Opening time, HH:MM")] = "08:00",
    closes: Annotated[str, typer.Option(help="Closing time, HH:MM")] = "13:00",
    remove: Annotated[bool, typer.Option("--remove", help="Delete the rule of that date")] = False,
) -> None:
    """Set (or --remove) the Thursday rule in force from a date: a decree is one row."""
    from datetime import time

    from ivr.calendar import ThursdayRule
    from ivr.calendar.store import remove_thursday_rule, set_thursday_rule
    from ivr.clock import jalali_day

    when = _day(effective_from)
    engine = _calendar_engine(when)
    if remove:
        removed = remove_thursday_rule(engine, when)
        if not removed.value:
            fail(f"no Thursday rule from {jalali_day(when)}")
        typer.echo(f"removed the Thursday rule from {jalali_day(when)}")
        _said_recomputed(removed.recomputed)
        return
    try:
        rule = ThursdayRule(when, open_, time.fromisoformat(opens), time.fromisoformat(closes))
        edited = set_thursday_rule(engine, rule)
    except ValueError as error:
        fail(str(error))
    hours = f"open {opens}-{closes}" if open_ else "closed"
    typer.echo(f"Thursdays from {jalali_day(when)}: {hours}")
    _said_recomputed(edited.recomputed)


@app.command("recompute")
def calendar_recompute() -> None:
    """Recompute every open ticket's deadlines (after editing ivr/categories.toml)."""
    from ivr.calendar.store import recompute_open_tickets

    count = recompute_open_tickets(_calendar_engine(), reason="recomputed by hand")
    _said_recomputed(count)


@app.command("deadline")
def calendar_deadline(
    start: Annotated[str, typer.Argument(help='Registered: "1405/02/10" or ISO, "09:30" optional')],
    n: Annotated[int, typer.Argument(help="Working days")],
    province: Annotated[str | None, typer.Option(help="Province; default: this node's")] = None,
) -> None:
    """The deadline N working days after START: the close of the N-th working day after it."""
    from ivr.calendar.store import parse_moment, working_deadline
    from ivr.clock import as_aware, iso_utc, jalali, jalali_words

    try:
        registered = parse_moment(start)
    except ValueError as error:
        fail(str(error))
    if not 1 <= n <= MAX_WORKING_DAYS:
        fail(
            f"N must be between 1 and {MAX_WORKING_DAYS} working days "
            "(the registration day does not count)"
        )
    where = _province(province) or get_settings().province
    try:
        found, seeded = working_deadline(_calendar_engine(), registered, n, where)
    except ValueError as error:
        fail(str(error))
    if seeded:
        years = ", ".join(str(y) for y in seeded)
        typer.echo(f"seeded the holidays of Jalali {years} first (estimated lunar dates)", err=True)
    due = as_aware(found)
    typer.echo(f"{jalali(due)} Tehran  ({jalali_words(due)})  {iso_utc(due)}")


MAX_HOURS_DAYS = 62
"""Two months of days ahead is as far as a listing of the agents' hours is useful."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
"""Not strftime's %a, which follows the locale."""


@app.command("hours")
def calendar_hours(
    province: Annotated[
        str | None, typer.Option("--province", help="A province code; default: IVR_PROVINCE")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="A moment, Jalali or ISO, Tehran time (1405/01/05 09:30); default: now"),
    ] = None,
    days: Annotated[
        int, typer.Option(help=f"Also list this many days from that moment (0 to {MAX_HOURS_DAYS})")
    ] = 7,
) -> None:
    """The agents' hours: whether they answer at a moment, when they open next, the days ahead.

    The hours (ivr/calendar/agent_hours.toml) on the calendar's working days: the same answer the
    call flow and the callback dispatcher get.
    """
    from datetime import timedelta

    from sqlalchemy.exc import SQLAlchemyError

    from ivr.calendar.agent_hours import AgentHours, load_agent_hours
    from ivr.calendar.store import load_calendar, parse_moment
    from ivr.clock import jalali_day, jalali_words, tehran_date, utcnow
    from ivr.tickets.db import open_database

    code = _province(province or get_settings().province) or get_settings().province
    if not 0 <= days <= MAX_HOURS_DAYS:
        fail(f"--days: from 0 to {MAX_HOURS_DAYS}, not {days}")
    try:
        moment = parse_moment(at) if at else utcnow()
    except ValueError as error:
        fail(f"--at: {error}")
    try:
        table = load_agent_hours()
    except ValueError as error:
        fail(str(error))
    try:
        calendar = load_calendar(open_database(get_settings().db_url), tehran_date(moment))
    except SQLAlchemyError as error:
        first = str(error).splitlines()[0]
        fail(f"the database cannot be read ({first}); is it upgraded (ivr db upgrade)?")
    hours = AgentHours(table, calendar)
    opening = hours.next_opening(code, moment)
    own = table.for_province(code)
    thursday = (
        f"; Thursdays {own.thursday[0]:%H:%M}–{own.thursday[1]:%H:%M}"
        if own.thursday
        else "; Thursdays by the decree in force"
    )
    typer.echo(f"{code}: {own.opens:%H:%M}–{own.closes:%H:%M} on working days (Tehran){thursday}")
    state = "agents answer" if opening == moment else "agents are off"
    typer.echo(f"{jalali_words(moment)}: {state}")
    if opening != moment:
        typer.echo(f"next opening: {jalali_words(opening)}")
    first_day = tehran_date(moment)
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        window = hours.window(code, day, calendar)
        when = f"{window[0]:%H:%M}–{window[1]:%H:%M}" if window else "off"
        typer.echo(f"  {jalali_day(day)} {WEEKDAYS[day.weekday()]}  {when}")
