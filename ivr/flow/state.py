"""A call's state: where the caller is in the menus and what they have told us so far.

Plain JSON-friendly values only, so a call's state can be stored between Twilio webhooks and any
node of a cluster can take the next one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any

from ivr.flow.events import TicketInfo


@dataclass(frozen=True)
class CallState:
    node: str = "new"
    failures: int = 0
    channel: str = ""
    province: str = "qom"
    caller_id: str | None = None
    caller_number: str | None = None
    """The caller ID in national form when it is an Iranian number, else None."""
    category: str | None = None
    place: str | None = None
    recording_path: str | None = None
    callback: str | None = None
    pending_callback: str | None = None
    national_id: str | None = None
    tracking: str | None = None
    ticket: dict[str, Any] | None = None
    """The ticket a follow-up looked up (never spoken before the caller is verified)."""
    queue_entered_at: str | None = None
    """When the caller joined the agents' queue (ISO, UTC): a callback keeps this place."""
    queue_refused: bool = False
    """The queue gave this call back (nobody could answer): agents are not available."""
    next_opening: str | None = None
    """When agents answer next (ISO, UTC), for the "no agent" menu; None: inside their hours
    but nobody free."""
    opening_in_days: int = 0
    """How many days ahead of the check the next opening is (its date is said from 7 on)."""
    ended: bool = False

    def without_personal_data(self) -> CallState:
        """What may stay stored once the call is over: no number the caller typed (callback,
        national ID, tracking number) and nothing about a ticket they looked up."""
        return replace(
            self,
            callback=None,
            pending_callback=None,
            national_id=None,
            tracking=None,
            ticket=None,
        )

    def to_json(self) -> str:
        # Not ``asdict``: it deep-copies every value (the looked-up ticket's dict too), which
        # json.dumps, only reading them, does not need (36 µs a turn against 8).
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CallState:
        data = json.loads(text or "{}")
        return cls(**{key: value for key, value in data.items() if key in _KNOWN})


_FIELDS = tuple(f.name for f in fields(CallState))
"""The state's field names, in order: what is stored."""
_KNOWN = frozenset(_FIELDS)
"""What is read back: a field an older version stored and this one dropped is ignored."""


def ticket_to_dict(info: TicketInfo) -> dict[str, Any]:
    data = asdict(info)
    data["created_at"] = info.created_at.isoformat()
    data["due_at"] = info.due_at.isoformat() if info.due_at else None
    return data


def ticket_from_dict(data: dict[str, Any]) -> TicketInfo:
    due = data.get("due_at")
    return TicketInfo(
        **{
            **data,
            "created_at": datetime.fromisoformat(data["created_at"]),
            "due_at": datetime.fromisoformat(due) if due else None,
        }
    )
