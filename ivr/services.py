"""Build the process's services once: database engine, ticket store, call store, deadlines.

The database is opened through :func:`ivr.tickets.db.open_database`, so every command and server
works on a schema it knows (an embedded SQLite upgrades itself; PostgreSQL says to run
``ivr db upgrade``). Deadlines come from the calendar in the database (holidays an administrator
confirmed or moved, closures, Thursday decrees), cached per process and reloaded when that data
changes, so the deadline a caller hears is the one the escalation watch enforces.
"""

from __future__ import annotations

from ivr.availability import AgentAvailability, AmiPresence
from ivr.calendar import load_policies
from ivr.calendar.agent_hours import AgentHours, load_agent_hours
from ivr.calendar.store import CachedCalendar, SlaClock
from ivr.callbacks.service import CallbackService
from ivr.clock import utcnow
from ivr.followup_guard import FollowupGuard
from ivr.session import Services
from ivr.settings import Settings
from ivr.telephony.ami import AmiClient
from ivr.tickets.calls import CallStore
from ivr.tickets.db import open_database
from ivr.tickets.service import TicketService


def build_services(settings: Settings, *, outage_ok: bool = False) -> Services:
    """``outage_ok``: start even if the database is unreachable (the hotline spools tickets)."""
    engine = open_database(settings.db_url, outage_ok=outage_ok)
    calendar = CachedCalendar(engine)
    clock = SlaClock(calendar, load_policies())
    return Services(
        tickets=TicketService(engine, settings, sla=clock),
        calls=CallStore(engine),
        agents=None if settings.agents_always_open else agent_availability(settings, calendar),
        callbacks=CallbackService.from_settings(engine, settings),
        followup_guard=FollowupGuard(
            engine,
            per_ticket=settings.followup_tries_per_ticket,
            per_caller=settings.followup_tries_per_caller,
        ),
    )


def warm_up(services: Services, province: str) -> None:
    """Set one deadline now, as a ticket would: the calendar is read from the database at start,
    not inside the first caller's confirm (about 100 ms). An unreachable database leaves the
    seeded calendar, as it would for that caller."""
    tickets = services.tickets
    if tickets.sla is not None:
        tickets.sla.deadlines(tickets.categories.codes[0], province, utcnow())


def agent_availability(settings: Settings, calendar: CachedCalendar) -> AgentAvailability:
    """The agents' hours for every call; for Asterisk calls also who is logged in, when AMI
    is configured (IVR_AMI_USERNAME)."""
    presence = {}
    if settings.ami_username:

        def connect() -> AmiClient:
            client = AmiClient(
                settings.ami_host,
                settings.ami_port,
                settings.ami_username,
                settings.ami_secret,
                action_timeout=2.0,
                connect_timeout=2.0,
                event_mask="off",  # only its own answers: QueueStatus lists come anyway
            )
            client.connect(timeout=3.0)
            return client

        presence["asterisk"] = AmiPresence(connect, settings.agent_queue)
    return AgentAvailability(AgentHours(load_agent_hours(), calendar.get), presence)
