"""Callbacks for administrators and scripts: list, show, cancel; the agents' hours."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ivr.cli.usage import fail
from ivr.settings import get_settings

if TYPE_CHECKING:
    from ivr.callbacks.models import Callback, CallbackAttempt
    from ivr.callbacks.service import CallbackService

app = typer.Typer(no_args_is_help=True, help="Callbacks callers asked for, and the agents' hours.")

JsonOption = Annotated[bool, typer.Option("--json", help="JSON output")]


@contextmanager
def _errors() -> Iterator[None]:
    """Bad input and an unready database as one line on stderr, exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from ivr.callbacks.service import CallbackError, CallbackNotFound

    try:
        yield
    except (CallbackError, CallbackNotFound) as error:
        fail(str(error.args[0] if error.args else error))
    except SQLAlchemyError as error:
        first = str(error).splitlines()[0]
        message = f"the database cannot be read ({first}); is it upgraded (ivr db upgrade)?"
        fail(message)


def _service() -> CallbackService:
    from ivr.callbacks.service import CallbackService
    from ivr.tickets.db import open_database

    settings = get_settings()
    return CallbackService.from_settings(open_database(settings.db_url), settings)


def _id(text: str) -> int:
    from ivr.speech import normalize_digits
    from ivr.tickets.db import row_id

    number = row_id(normalize_digits(text).strip())
    if number is None:
        fail(f"not a callback id: {text!r}")
    return number


def _callback_json(row: Callback) -> dict[str, Any]:
    from ivr.clock import iso_utc

    return {
        "id": row.id,
        "status": row.status,
        "number": row.number,
        "province": row.province,
        "requested_at": iso_utc(row.requested_at),
        "entered_at": iso_utc(row.entered_at),
        "attempts": row.attempts,
        "next_attempt_at": iso_utc(row.next_attempt_at) if row.status == "pending" else None,
        "finished_at": iso_utc(row.finished_at),
        "call_id": row.call_id,
        "ticket_id": row.ticket_id,
    }


def _attempt_json(row: CallbackAttempt) -> dict[str, Any]:
    from ivr.clock import iso_utc

    return {
        "slot": row.slot,
        "node": row.node,
        "dialer": row.dialer,
        "started_at": iso_utc(row.started_at),
        "connected_at": iso_utc(row.connected_at),
        "ended_at": iso_utc(row.ended_at),
        "outcome": row.outcome or "open",
        "agent": row.agent,
        "detail": row.detail,
    }


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, Callable[[Any], str]]]) -> str:
    cells = [[show(row[key]) for key, _title, show in columns] for row in rows]
    titles = [title for _key, title, _show in columns]
    widths = [max([len(t), *(len(c[i]) for c in cells)]) for i, t in enumerate(titles)]
    lines = ["  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _when(iso: str | None) -> str:
    from datetime import datetime

    from ivr.clock import jalali

    return jalali(datetime.fromisoformat(iso.replace("Z", "+00:00"))) if iso else "-"


def _plain(value: Any) -> str:
    return "-" if value is None else str(value)


@app.command("list")
def callbacks_list(
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="pending, queued, in_progress, done, failed or cancelled (repeatable); "
            "default: all",
        ),
    ] = None,
    as_json: JsonOption = False,
    limit: Annotated[int, typer.Option(help="At most this many")] = 100,
) -> None:
    """Callbacks in the order they are served (original entry time, Tehran, Jalali)."""
    if not 1 <= limit <= 100_000:
        fail("--limit must be between 1 and 100000")
    wanted = [s.strip().replace("-", "_").replace(" ", "_") for s in status or []]
    with _errors():
        rows = [_callback_json(r) for r in _service().list(wanted or None, limit=limit)]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no callbacks")
        return
    typer.echo(
        _table(
            rows,
            [
                ("id", "id", _plain),
                ("status", "status", _plain),
                ("number", "number", _plain),
                ("province", "province", _plain),
                ("entered_at", "entered (Tehran)", _when),
                ("attempts", "attempts", _plain),
                ("next_attempt_at", "next attempt", _when),
            ],
        )
    )


@app.command("show")
def callbacks_show(
    callback_id: Annotated[str, typer.Argument(metavar="ID")], as_json: JsonOption = False
) -> None:
    """One callback and every attempt at it."""
    number = _id(callback_id)
    with _errors():
        service = _service()
        row = service.get(number)
        if row is None:
            fail(f"no callback {number}")
        detail = _callback_json(row) | {
            "tries": [_attempt_json(a) for a in service.attempts_of(number)]
        }
    if as_json:
        typer.echo(json.dumps(detail, ensure_ascii=False, indent=2))
        return
    for key in ("id", "status", "number", "province", "entered_at", "requested_at", "attempts"):
        value = detail[key]
        typer.echo(f"{key:>14}  {_when(value) if key.endswith('_at') else value}")
    if detail["tries"]:
        typer.echo(
            _table(
                detail["tries"],
                [
                    ("slot", "slot", _plain),
                    ("started_at", "started (Tehran)", _when),
                    ("outcome", "outcome", _plain),
                    ("agent", "agent", _plain),
                    ("node", "node", _plain),
                    ("detail", "detail", _plain),
                ],
            )
        )


@app.command("cancel")
def callbacks_cancel(callback_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Cancel a callback that is not finished (a call already ringing is not cut off)."""
    number = _id(callback_id)
    with _errors():
        row = _service().cancel(number)
    typer.echo(f"callback {row.id} ({row.number}) cancelled")


@app.command("hours")
def callbacks_hours(
    province: Annotated[
        str | None, typer.Option(help="A province code; default: IVR_PROVINCE")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(help="A moment, Jalali or ISO, Tehran time (1405/01/05 09:30); default: now"),
    ] = None,
    days: Annotated[int, typer.Option(help="Also list this many days from that moment")] = 0,
) -> None:
    """The agents' hours (the same as ``ivr calendar hours``, kept for scripts)."""
    from ivr.cli.calendar import calendar_hours

    calendar_hours(province=province, at=at, days=days)
