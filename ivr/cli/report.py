"""``ivr report``: render any day's report again, and mail it if asked.

The day is a Jalali (``1405-09-06``, ``۱۴۰۵/۰۹/۰۶``) or ISO (``2026-11-27``) date; the figures
come from the database as the nightly job computes them, so the same day gives the same figures.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings


def report(
    day: Annotated[
        str, typer.Option("--date", help="The day: Jalali 1405-09-06 or ISO 2026-11-27")
    ],
    province: Annotated[
        str | None, typer.Option("--province", help="One province's report (e.g. qom)")
    ] = None,
    national: Annotated[bool, typer.Option("--national", help="The national report only")] = False,
    send: Annotated[
        bool, typer.Option("--send", help="Mail it to the supervisors now (again if sent before)")
    ] = False,
) -> None:
    """Write the day's report (HTML, PDF, CSV) under storage/reports/; by default every
    province with calls, tickets or supervisors, and the national one."""
    from ivr.calendar.offices import UnknownProvince, check_province
    from ivr.calendar.store import parse_day
    from ivr.notify import send_due
    from ivr.reports.delivery import deliver
    from ivr.reports.figures import provinces_of_day
    from ivr.tickets.db import open_database

    if province is not None and national:
        fail("give --province or --national, not both")
    try:
        when = parse_day(day)
    except ValueError as error:
        fail(f"--date: {error}")
    try:
        code = check_province(province)
    except UnknownProvince as error:
        fail(f"--province: {str(error).strip(chr(34))}")
    settings = get_settings()
    engine = open_database(settings.db_url)
    if national:
        scopes: list[str | None] = [None]
    elif code is not None:
        scopes = [code]
    else:
        scopes = [*provinces_of_day(engine, when), None]
    for scope in scopes:
        if send:
            done = deliver(engine, settings, when, scope, again=True)
            report = done.report
            told = f"; mailed to {len(done.recipients)}" if done.recipients else "; nobody to mail"
        else:
            from ivr.reports.store import write_report

            report = write_report(
                engine,
                settings.reports_dir,
                when,
                scope,
                service_level_s=settings.report_service_level_seconds,
            )
            told = ""
        f = report.figures
        typer.echo(
            f"{report.folder}: {f.received} calls, {f.tickets_new} new tickets, "
            f"{f.overdue} overdue{told}"
        )
    if send:
        sent = send_due(engine, now=None, settings=settings)
        typer.echo(
            f"{sent} mails handed to SMTP"
            if settings.smtp_url
            else "no IVR_SMTP_URL: mails wait in the outbox"
        )
