"""Build the process's services once: database engine, ticket store, call store, deadlines."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from ivr.calendar import WorkCalendar, deadlines, load_policies, seed_current_and_next
from ivr.session import Services
from ivr.settings import Settings
from ivr.tickets.db import make_engine
from ivr.tickets.models import utcnow
from ivr.tickets.service import CallStore, TicketService


@lru_cache(maxsize=1)
def _calendar(today: str) -> WorkCalendar:
    """This and next Jalali year's holidays; rebuilt when the date changes."""
    return WorkCalendar(seed_current_and_next(datetime.fromisoformat(today).date()))


def resolution_deadline(category: str, province: str, created_utc: datetime) -> datetime | None:
    """When an answer is promised: the category's resolution budget in Iranian working days."""
    calendar = _calendar(utcnow().date().isoformat())
    return deadlines(created_utc, category, province, calendar, load_policies()).resolution_due


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.db_url)
    return Services(
        tickets=TicketService(engine, settings),
        calls=CallStore(engine),
        deadline=resolution_deadline,
    )
