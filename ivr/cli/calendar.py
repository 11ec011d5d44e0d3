"""The working-day calendar: holidays, closures, Thursday rules, deadlines."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from ivr.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(
    no_args_is_help=True,
    help="Holidays, closures and Thursday rules; every change recomputes open tickets' deadlines.",
)


ProvinceOption = Annotated[
    str | None, typer.Option("--province", help="A province code; none: nationwide")
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="Only the holiday with this name (a day may have two)")
]


def _calendar_engine() -> Engine:
    from ivr.tickets.db import open_database

    return open_database(get_settings().db_url)


def _day(text: str) -> date:
    from ivr.calendar.store import (
        parse_day,
    )

    try:
        return parse_day(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _recompute(engine: Engine, since: date | None) -> None:
    """Bring open tickets' deadlines in step with the calendar just changed, and say so."""
    from ivr.calendar import load_policies
    from ivr.calendar.store import (
        load_calendar,
        recompute_open_tickets,
    )

    changed = recompute_open_tickets(engine, load_calendar(engine), load_policies(), since=since)
    typer.echo(f"deadlines of {changed} open tickets changed")


@app.command("list")
def calendar_list(
    year: Annotated[
        int | None, typer.Option("--year", help="Jalali year; default: this one")
    ] = None,
    province: ProvinceOption = None,
) -> None:
    """The year's holidays and closures (Jalali dates) and the Thursday rules."""
    from ivr.calendar import jalali_year_of
    from ivr.calendar.store import (
        ensure_seeded,
        list_holidays,
        thursday_rules,
    )
    from ivr.clock import jalali_day, tehran_today

    engine = _calendar_engine()
    ensure_seeded(engine, tehran_today())
    year = year or jalali_year_of(tehran_today())
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
    closure: Annotated[bool, typer.Option("--closure", help="A one-off closure")] = False,
) -> None:
    """Add a holiday (or with --closure a one-off closure), confirmed; DATE 1405/02/10 or ISO."""
    from ivr.calendar.store import (
        add_holiday,
        ensure_seeded,
    )
    from ivr.clock import jalali_day, tehran_today

    when = _day(day)
    engine = _calendar_engine()
    ensure_seeded(engine, tehran_today())  # seed first, or the seed would skip this year later
    entry = add_holiday(
        engine, when, name, kind="closure" if closure else "lunar", province=province
    )
    typer.echo(f"added {entry.kind} {jalali_day(entry.day)} {entry.name} "
               f"({entry.province or 'all provinces'})")  # fmt: skip
    _recompute(engine, entry.day)


@app.command("remove")
def calendar_remove(day: str, province: ProvinceOption = None, name: NameOption = None) -> None:
    """Remove the day's holidays (nationwide ones, or --province's own)."""
    from ivr.calendar.store import (
        remove_holidays,
    )
    from ivr.clock import jalali_day

    when = _day(day)
    engine = _calendar_engine()
    removed = remove_holidays(engine, when, province=province, name=name)
    if not removed:
        typer.echo(f"no holiday on {jalali_day(when)} for {province or 'all provinces'}", err=True)
        raise typer.Exit(1)
    for h in removed:
        typer.echo(f"removed {h.kind} {jalali_day(h.day)} {h.name}")
    _recompute(engine, when)


@app.command("confirm")
def calendar_confirm(day: str, province: ProvinceOption = None, name: NameOption = None) -> None:
    """Confirm the day's estimated lunar holidays (the moon was sighted as expected)."""
    from ivr.calendar.store import (
        confirm_holidays,
    )
    from ivr.clock import jalali_day

    when = _day(day)
    engine = _calendar_engine()
    count = confirm_holidays(engine, when, province=province, name=name)
    if not count:
        typer.echo(f"no lunar holiday or closure on {jalali_day(when)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"confirmed {count} holidays on {jalali_day(when)}")
    _recompute(engine, when)  # a confirmation changes no day, but keeps the rule: always recompute


@app.command("move")
def calendar_move(
    day: str, to: str, province: ProvinceOption = None, name: NameOption = None
) -> None:
    """Move the day's lunar holidays to another day (moon sighting) and confirm them."""
    from ivr.calendar.store import (
        move_holidays,
    )
    from ivr.clock import jalali_day

    when, new = _day(day), _day(to)
    engine = _calendar_engine()
    count = move_holidays(engine, when, new, province=province, name=name)
    if not count:
        typer.echo(f"no lunar holiday or closure on {jalali_day(when)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"moved {count} holidays from {jalali_day(when)} to {jalali_day(new)}")
    _recompute(engine, min(when, new))


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
    from ivr.calendar.store import (
        remove_thursday_rule,
        set_thursday_rule,
    )
    from ivr.clock import jalali_day

    when = _day(effective_from)
    engine = _calendar_engine()
    if remove:
        if not remove_thursday_rule(engine, when):
            typer.echo(f"no Thursday rule from {jalali_day(when)}", err=True)
            raise typer.Exit(1)
        typer.echo(f"removed the Thursday rule from {jalali_day(when)}")
    else:
        try:
            rule = ThursdayRule(when, open_, time.fromisoformat(opens), time.fromisoformat(closes))
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        set_thursday_rule(engine, rule)
        hours = f"open {opens}-{closes}" if open_ else "closed"
        typer.echo(f"Thursdays from {jalali_day(when)}: {hours}")
    _recompute(engine, when)


@app.command("recompute")
def calendar_recompute() -> None:
    """Recompute every open ticket's deadlines (after editing ivr/sla_policy.toml)."""
    _recompute(_calendar_engine(), None)


@app.command("deadline")
def calendar_deadline(
    start: Annotated[str, typer.Argument(help='Registered: "1405/02/10" or ISO, "09:30" optional')],
    n: Annotated[int, typer.Argument(help="Working days")],
    province: Annotated[str | None, typer.Option(help="Province; default: this node's")] = None,
) -> None:
    """The deadline N working days after START: the close of the N-th working day after it."""
    from ivr.calendar.store import (
        load_calendar,
        parse_moment,
    )
    from ivr.clock import as_aware, iso_utc, jalali, jalali_words

    try:
        registered = parse_moment(start)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if n < 1:
        raise typer.BadParameter("N is at least 1: the registration day does not count")
    calendar = load_calendar(_calendar_engine())
    due = as_aware(calendar.add_working_days(registered, n, province or get_settings().province))
    typer.echo(f"{jalali(due)} Tehran  ({jalali_words(due)})  {iso_utc(due)}")
