"""Build the process's services once: database engine, ticket store, call store, deadlines.

Deadlines come from the calendar in the database (holidays an administrator confirmed or moved,
closures, Thursday decrees), cached per process and reloaded when that data changes, so the
deadline a caller hears is the one the escalation watch enforces.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from ivr.calendar import WorkCalendar, deadlines, load_policies, seed_current_and_next
from ivr.calendar.store import CachedCalendar, SlaClock
from ivr.session import Services
from ivr.settings import Settings
from ivr.tickets.db import make_engine
from ivr.tickets.models import utcnow
from ivr.tickets.service import CallStore, TicketService


@lru_cache(maxsize=1)
def _calendar(today: str) -> WorkCalendar:
    """This and next Jalali year's holidays as seeded, without a database."""
    return WorkCalendar(seed_current_and_next(datetime.fromisoformat(today).date()))


def resolution_deadline(category: str, province: str, created_utc: datetime) -> datetime | None:
    """The resolution deadline on the seeded calendar: for tools that have no database."""
    calendar = _calendar(utcnow().date().isoformat())
    return deadlines(created_utc, category, province, calendar, load_policies()).resolution_due


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.db_url)
    clock = SlaClock(CachedCalendar(engine), load_policies())
    return Services(
        tickets=TicketService(engine, settings, sla=clock),
        calls=CallStore(engine),
        deadline=clock,
    )
