"""Tickets as text and JSON for ``ivr tickets list`` / ``ivr tickets show``.

Times are stored in UTC but people in Iran read Jalali dates on Tehran's clock, so the text
shows those; the JSON gives ISO UTC (for programs) plus the Jalali string (for people).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ivr.clock import as_aware, iso_utc, jalali
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


def ticket_detail(view: TicketView) -> str:
    """Every field of one ticket, then its history oldest first."""
    fields = [
        ("status", view.status),
        ("agency", view.agency or "-"),
        ("category", view.category),
        ("province", view.province),
        ("place", view.place or "-"),
        ("channel", view.channel),
        ("callback", view.callback_number),
        ("caller", view.caller_number or "-"),
        ("created", f"{jalali(view.created_at)}  ({iso_utc(view.created_at)})"),
        ("updated", f"{jalali(view.updated_at)}  ({iso_utc(view.updated_at)})"),
        ("due", f"{jalali(view.due_at)}  ({iso_utc(view.due_at)})" if view.due_at else "-"),
        ("recording", view.recording_path or "-"),
    ]
    lines = [f"ticket {view.tracking}"]
    lines += [f"  {name + ':':<11}{value}" for name, value in fields]
    lines.append("history")
    for h in view.history:
        change = f"{h.old_value or ''} -> {h.new_value or ''}" if h.new_value else ""
        line = f"  {jalali(h.at)}  {h.kind:<8} {change}".rstrip() + f"  by {h.actor}"
        lines.append(line + (f"  ({h.note})" if h.note else ""))
    return "\n".join(lines)


def ticket_json(view: TicketView) -> dict[str, Any]:
    """A JSON-ready dict: times as ISO UTC with Z, plus ``created_jalali`` for people."""
    return {
        "tracking": view.tracking,
        "status": view.status,
        "agency": view.agency,
        "channel": view.channel,
        "province": view.province,
        "category": view.category,
        "place": view.place,
        "callback_number": view.callback_number,
        "caller_number": view.caller_number,
        "recording_path": view.recording_path,
        "created_at": iso_utc(view.created_at),
        "updated_at": iso_utc(view.updated_at),
        "due_at": iso_utc(view.due_at),
        "created_jalali": jalali(view.created_at),
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
