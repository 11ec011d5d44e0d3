"""Build the process's services once: database engine, ticket store, call store, deadlines.

The database is opened through :func:`ivr.tickets.db.open_database`, so every command and server
works on a schema it knows (an embedded SQLite upgrades itself; PostgreSQL says to run
``ivr db upgrade``). Deadlines come from the calendar in the database (holidays an administrator
confirmed or moved, closures, Thursday decrees), cached per process and reloaded when that data
changes, so the deadline a caller hears is the one the escalation watch enforces.
"""

from __future__ import annotations

from ivr.calendar import load_policies
from ivr.calendar.store import CachedCalendar, SlaClock
from ivr.session import Services
from ivr.settings import Settings
from ivr.tickets.calls import CallStore
from ivr.tickets.db import open_database
from ivr.tickets.service import TicketService


def build_services(settings: Settings, *, outage_ok: bool = False) -> Services:
    """``outage_ok``: start even if the database is unreachable (the hotline spools tickets)."""
    engine = open_database(settings.db_url, outage_ok=outage_ok)
    clock = SlaClock(CachedCalendar(engine), load_policies())
    return Services(
        tickets=TicketService(engine, settings, sla=clock),
        calls=CallStore(engine),
    )
