"""Stored times: UTC always; aware or naive as each column's type takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ivr.tickets.models import as_aware


def as_stored(column: Any, dt: datetime) -> datetime:
    """``dt`` as ``column`` takes it: aware for a timezone type, naive UTC for a plain DateTime.

    SQLModel's UTCDateTime refuses naive values and a plain DateTime on PostgreSQL would shift
    aware ones by the session's time zone; every write goes through here, so the service works
    whichever way the models declare their times.
    """
    dt = as_aware(dt)
    return dt if getattr(column.type, "timezone", False) else dt.replace(tzinfo=None)
