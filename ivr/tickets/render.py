"""Tickets as text and JSON for ``ivr tickets list`` / ``ivr tickets show``.

Times are stored in UTC but people in Iran read Jalali dates on Tehran's clock, so the text
shows those; the JSON gives ISO UTC (for programs) plus the Jalali string (for people).  Codes
(category, place, agency, province) come with their Persian names from the data files, since a
supervisor reads names.  The national ID is personal data: left out unless asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ivr.agencies import agency_name
from ivr.categories import category_name
from ivr.clock import as_aware, iso_utc, jalali
from ivr.provinces import load_province
from ivr.tickets.service import TicketView

__all__ = ["iso_utc", "jalali", "ticket_detail", "ticket_json", "ticket_table"]


def ticket_table(views: Iterable[TicketView]) -> str:
    """One line per ticket, newest first, columns padded to line up."""
    header = ("tracking", "created (Tehran)", "status", "category", "place", "callback")
    rows = [
        (v.tracking, jalali(v.created_at), v.status, v.category, v.place or "-", v.callback_number)
        for v in sorted(views, key=lambda v: as_aware(v.created_at), reverse=True)
    ]
    if not rows:
        return "no tickets"
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    return "\n".join(lines)


def province_name(code: str) -> str:
    """The province's Persian name from its data file; its code when there is none."""
    try:
        return load_province(code).name
    except (OSError, KeyError, ValueError):
        return code


def place_name(province: str, place: str | None) -> str | None:
    """The place's Persian name from the province file; its id when the file lacks it."""
    if place is None:
        return None
    try:
        found = load_province(province).place(place)
    except (OSError, KeyError, ValueError):
        return place
    return place if found is None else found.name


def _named(code: str | None, name: str | None) -> str:
    return "-" if code is None else f"{code} ({name})" if name and name != code else code


def _moment(moment: Any) -> str:
    return f"{jalali(moment)}  ({iso_utc(moment)})" if moment else "-"


def ticket_detail(view: TicketView, *, personal_data: bool = False) -> str:
    """Every field of one ticket, then its history oldest first."""
    agency = None if view.agency is None else agency_name(view.agency)
    fields = [
        ("status", view.status),
        ("agency", _named(view.agency, agency)),
        ("category", _named(view.category, category_name(view.category))),
        ("province", _named(view.province, province_name(view.province))),
        ("place", _named(view.place, place_name(view.province, view.place))),
        ("channel", view.channel),
        ("callback", view.callback_number),
        ("caller", view.caller_number or "-"),
        ("created", _moment(view.created_at)),
        ("updated", _moment(view.updated_at)),
        ("responded", _moment(view.responded_at)),
        ("1st resp.", _moment(view.first_response_due_at)),
        ("due", _moment(view.due_at)),
        ("escalation", f"level {view.escalation_level}" + (
            f" since {jalali(view.escalated_at)}" if view.escalated_at else "")),
        ("recording", view.recording_path or "-"),
    ]  # fmt: skip
    if personal_data:
        fields.append(("national ID", view.national_id or "-"))
    lines = [f"ticket {view.tracking}"]
    lines += [f"  {name + ':':<13}{value}" for name, value in fields]
    lines.append("history")
    for h in view.history:
        change = f"{h.old_value or ''} -> {h.new_value or ''}" if h.new_value else ""
        line = f"  {jalali(h.at)}  {h.kind:<8} {change}".rstrip() + f"  by {h.actor}"
        lines.append(line + (f"  ({h.note})" if h.note else ""))
    return "\n".join(lines)


def ticket_json(view: TicketView, *, personal_data: bool = False) -> dict[str, Any]:
    """A JSON-ready dict: times as ISO UTC with Z plus ``*_jalali`` for people, codes with
    their Persian ``*_name``; ``national_id`` only with ``personal_data``."""
    data: dict[str, Any] = {
        "tracking": view.tracking,
        "status": view.status,
        "agency": view.agency,
        "agency_name": None if view.agency is None else agency_name(view.agency),
        "channel": view.channel,
        "province": view.province,
        "province_name": province_name(view.province),
        "category": view.category,
        "category_name": category_name(view.category),
        "place": view.place,
        "place_name": place_name(view.province, view.place),
        "callback_number": view.callback_number,
        "caller_number": view.caller_number,
        "recording_path": view.recording_path,
        "created_at": iso_utc(view.created_at),
        "updated_at": iso_utc(view.updated_at),
        "responded_at": iso_utc(view.responded_at),
        "first_response_due_at": iso_utc(view.first_response_due_at),
        "due_at": iso_utc(view.due_at),
        "escalation_level": view.escalation_level,
        "escalated_at": iso_utc(view.escalated_at),
        "created_jalali": jalali(view.created_at),
        "first_response_due_jalali": jalali(view.first_response_due_at) or None,
        "due_jalali": jalali(view.due_at) or None,
        "history": [
            {
                "at": iso_utc(h.at),
                "kind": h.kind,
                "old_value": h.old_value,
                "new_value": h.new_value,
                "actor": h.actor,
                "note": h.note,
            }
            for h in view.history
        ],
    }
    if personal_data:
        data["national_id"] = view.national_id
    return data
