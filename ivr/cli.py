"""The `ivr` command: serve the hotline, walk the menus in a terminal, manage prompts, tickets."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ivr.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(no_args_is_help=True, help="ivr124: the 124 hotline.")
speak_app = typer.Typer(no_args_is_help=True, help="Print Persian speech as words, to check it.")
prompts_app = typer.Typer(no_args_is_help=True, help="The prompt catalogue's audio.")
db_app = typer.Typer(no_args_is_help=True, help="The shared database.")
tickets_app = typer.Typer(no_args_is_help=True, help="Look at tickets.")
app.add_typer(speak_app, name="speak")
app.add_typer(prompts_app, name="prompts")
app.add_typer(db_app, name="db")
app.add_typer(tickets_app, name="tickets")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Web bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Web port")] = None,
    no_scheduler: Annotated[
        bool,
        typer.Option(
            "--no-scheduler", help="Do not run the scheduler here (run `ivr scheduler` elsewhere)"
        ),
    ] = False,
) -> None:
    """Start the hotline: web app (Twilio webhooks, prompt audio), FastAGI server for Asterisk
    and, unless told not to, the scheduler."""
    from ivr.server import run_hotline

    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per run is ours
    run_hotline(
        settings,
        host or settings.web_host,
        port or settings.web_port,
        scheduler=settings.scheduler_enabled and not no_scheduler,
    )


@app.command()
def scheduler() -> None:
    """Run only the scheduler (overdue watch, nightly report) in the foreground until stopped.

    On several nodes sharing PostgreSQL one leads and the others wait to take over.
    """
    import signal
    import threading

    from ivr.scheduler import run_scheduler

    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        logging.getLogger("ivr.scheduler").info("%s received", name)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    run_scheduler(settings, stop)


@app.command()
def call(
    keys: Annotated[
        str | None, typer.Option(help='Answers, e.g. "1 4 2 1 # 1"; _ is silence')
    ] = None,
    recording: Annotated[
        Path | None, typer.Option(help="WAV file used as the spoken description")
    ] = None,
    caller: Annotated[str, typer.Option(help="Caller ID")] = "09121234567",
    audio: Annotated[bool, typer.Option(help="Play the prompts' audio")] = False,
) -> None:
    """Call 124 from the terminal: the real flow, real tickets."""
    from ivr.prompts import load_catalog
    from ivr.services import build_services
    from ivr.telephony.terminal import TerminalPhone

    settings = get_settings()
    texts = {pid: prompt.text for pid, prompt in load_catalog(settings.prompts_dir).items()}
    phone = TerminalPhone(
        build_services(settings),
        settings,
        texts,
        keys=keys.split() if keys is not None else None,
        recording=recording,
        caller=caller or None,
        audio=audio,
    )
    phone.run()


@speak_app.command("number")
def speak_number(n: int) -> None:
    """A number in spoken Persian."""
    from ivr.speech import fragment_words, load_fragment_texts, number_fragments

    typer.echo(fragment_words(number_fragments(n), load_fragment_texts()))


@speak_app.command("digits")
def speak_digits(digits: str) -> None:
    """A phone or tracking number read digit by digit."""
    from ivr.speech import (
        digits_fragments,
        fragment_words,
        load_fragment_texts,
        normalize_digits,
        phone_groups,
    )

    plain = normalize_digits(digits)
    typer.echo(fragment_words(digits_fragments(plain, phone_groups(plain)), load_fragment_texts()))


@speak_app.command("date")
def speak_date(day: str) -> None:
    """A date (YYYY-MM-DD, Gregorian) spoken as its Jalali date."""
    from ivr.speech import date_fragments, fragment_words, load_fragment_texts, normalize_digits

    parsed = date.fromisoformat(normalize_digits(day))
    typer.echo(fragment_words(date_fragments(parsed), load_fragment_texts()))


@prompts_app.command("build")
def prompts_build() -> None:
    """Render missing or changed prompts (studio recordings in prompts/fa/ always win)."""
    from ivr.prompts import build

    report = build(get_settings().prompts_dir)
    typer.echo(
        f"rendered {len(report.rendered)}, unchanged {len(report.unchanged)}, "
        f"studio {len(report.studio)}, removed {len(report.removed)}"
    )


@prompts_app.command("install")
def prompts_install(
    asterisk: Annotated[Path, typer.Option(help="Asterisk's sounds directory")],
) -> None:
    """Write every prompt as 8 kHz mono 16-bit WAV under DIR/fa/ivr124/."""
    from ivr.prompts import install_asterisk

    count = install_asterisk(get_settings().prompts_dir, asterisk)
    typer.echo(f"installed {count} prompts under {asterisk / 'fa' / 'ivr124'}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the newest schema."""
    from ivr.tickets.db import upgrade

    settings = get_settings()
    if settings.db_url.startswith("sqlite"):
        settings.storage_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)
    typer.echo("database is up to date")


@tickets_app.command("list")
def tickets_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    limit: int = 20,
) -> None:
    """The newest tickets."""
    from ivr.services import build_services
    from ivr.tickets.render import ticket_json, ticket_table

    views = build_services(get_settings()).tickets.latest(limit)
    if as_json:
        typer.echo(json.dumps([ticket_json(v) for v in views], ensure_ascii=False, indent=2))
    else:
        typer.echo(ticket_table(views))


@tickets_app.command("show")
def tickets_show(
    tracking: str, as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False
) -> None:
    """One ticket with its history."""
    from ivr.services import build_services
    from ivr.speech import normalize_digits
    from ivr.tickets.render import ticket_detail, ticket_json

    view = build_services(get_settings()).tickets.get(normalize_digits(tracking).strip())
    if view is None:
        typer.echo(f"no ticket {tracking}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(ticket_json(view), ensure_ascii=False, indent=2))
    else:
        typer.echo(ticket_detail(view))


# -- the working-day calendar -------------------------------------------------------------------

calendar_app = typer.Typer(
    no_args_is_help=True,
    help="Holidays, closures and Thursday rules; every change recomputes open tickets' deadlines.",
)
app.add_typer(calendar_app, name="calendar")

ProvinceOption = Annotated[
    str | None, typer.Option("--province", help="A province code; none: nationwide")
]
NameOption = Annotated[
    str | None, typer.Option("--name", help="Only the holiday with this name (a day may have two)")
]


def _calendar_engine() -> Engine:
    from ivr.tickets.db import make_engine

    return make_engine(get_settings().db_url)


def _day(text: str) -> date:
    from ivr.calendar.store import parse_day

    try:
        return parse_day(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def _recompute(engine: Engine, since: date | None) -> None:
    """Bring open tickets' deadlines in step with the calendar just changed, and say so."""
    from ivr.calendar import load_policies
    from ivr.calendar.store import load_calendar, recompute_open_tickets

    changed = recompute_open_tickets(engine, load_calendar(engine), load_policies(), since=since)
    typer.echo(f"deadlines of {changed} open tickets changed")


@calendar_app.command("list")
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
        jalali_day,
        list_holidays,
        tehran_today,
        thursday_rules,
    )

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


@calendar_app.command("add")
def calendar_add(
    day: str,
    name: str,
    province: ProvinceOption = None,
    closure: Annotated[bool, typer.Option("--closure", help="A one-off closure")] = False,
) -> None:
    """Add a holiday (or with --closure a one-off closure), confirmed; DATE 1405/02/10 or ISO."""
    from ivr.calendar.store import add_holiday, ensure_seeded, jalali_day, tehran_today

    when = _day(day)
    engine = _calendar_engine()
    ensure_seeded(engine, tehran_today())  # seed first, or the seed would skip this year later
    entry = add_holiday(
        engine, when, name, kind="closure" if closure else "lunar", province=province
    )
    typer.echo(f"added {entry.kind} {jalali_day(entry.day)} {entry.name} "
               f"({entry.province or 'all provinces'})")  # fmt: skip
    _recompute(engine, entry.day)


@calendar_app.command("remove")
def calendar_remove(day: str, province: ProvinceOption = None, name: NameOption = None) -> None:
    """Remove the day's holidays (nationwide ones, or --province's own)."""
    from ivr.calendar.store import jalali_day, remove_holidays

    when = _day(day)
    engine = _calendar_engine()
    removed = remove_holidays(engine, when, province=province, name=name)
    if not removed:
        typer.echo(f"no holiday on {jalali_day(when)} for {province or 'all provinces'}", err=True)
        raise typer.Exit(1)
    for h in removed:
        typer.echo(f"removed {h.kind} {jalali_day(h.day)} {h.name}")
    _recompute(engine, when)


@calendar_app.command("confirm")
def calendar_confirm(day: str, province: ProvinceOption = None, name: NameOption = None) -> None:
    """Confirm the day's estimated lunar holidays (the moon was sighted as expected)."""
    from ivr.calendar.store import confirm_holidays, jalali_day

    when = _day(day)
    engine = _calendar_engine()
    count = confirm_holidays(engine, when, province=province, name=name)
    if not count:
        typer.echo(f"no lunar holiday or closure on {jalali_day(when)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"confirmed {count} holidays on {jalali_day(when)}")
    _recompute(engine, when)  # a confirmation changes no day, but keeps the rule: always recompute


@calendar_app.command("move")
def calendar_move(
    day: str, to: str, province: ProvinceOption = None, name: NameOption = None
) -> None:
    """Move the day's lunar holidays to another day (moon sighting) and confirm them."""
    from ivr.calendar.store import jalali_day, move_holidays

    when, new = _day(day), _day(to)
    engine = _calendar_engine()
    count = move_holidays(engine, when, new, province=province, name=name)
    if not count:
        typer.echo(f"no lunar holiday or closure on {jalali_day(when)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"moved {count} holidays from {jalali_day(when)} to {jalali_day(new)}")
    _recompute(engine, min(when, new))


@calendar_app.command("thursday")
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
    from ivr.calendar.store import jalali_day, remove_thursday_rule, set_thursday_rule

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


@calendar_app.command("recompute")
def calendar_recompute() -> None:
    """Recompute every open ticket's deadlines (after editing ivr/sla_policy.toml)."""
    _recompute(_calendar_engine(), None)


@calendar_app.command("deadline")
def calendar_deadline(
    start: Annotated[str, typer.Argument(help='Registered: "1405/02/10" or ISO, "09:30" optional')],
    n: Annotated[int, typer.Argument(help="Working days")],
    province: Annotated[str | None, typer.Option(help="Province; default: this node's")] = None,
) -> None:
    """The deadline N working days after START: the close of the N-th working day after it."""
    from ivr.calendar.store import load_calendar, parse_moment
    from ivr.escalation import jalali_words
    from ivr.tickets.models import as_aware
    from ivr.tickets.render import iso_utc, jalali

    try:
        registered = parse_moment(start)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if n < 1:
        raise typer.BadParameter("N is at least 1: the registration day does not count")
    calendar = load_calendar(_calendar_engine())
    due = as_aware(calendar.add_working_days(registered, n, province or get_settings().province))
    typer.echo(f"{jalali(due)} Tehran  ({jalali_words(due)})  {iso_utc(due)}")


if __name__ == "__main__":
    app()
