"""The FastAPI application: one router per audience, one context built at start-up."""

from __future__ import annotations

from fastapi import FastAPI

from ivr.scheduler import SchedulerStatus
from ivr.services import build_services
from ivr.session import Services
from ivr.settings import Settings, get_settings
from ivr.web import health, pages, prompts, try_, twilio, twilio_agents, twilio_queue
from ivr.web.deps import AppContext
from ivr.web.desk import auth as desk_auth
from ivr.web.desk import callbacks as desk_callbacks
from ivr.web.desk import errors as desk_errors
from ivr.web.desk import home as desk_home
from ivr.web.desk import live as desk_live
from ivr.web.desk import pop as desk_pop
from ivr.web.desk import reports as desk_reports
from ivr.web.desk import tickets as desk_tickets


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    scheduler: SchedulerStatus | None = None,
) -> FastAPI:
    """The app; ``scheduler`` is this process's scheduler for /healthz (None: not run here)."""
    settings = settings or get_settings()
    app = FastAPI(title="ivr124", docs_url=None, redoc_url=None)
    app.state.context = AppContext(settings, services or build_services(settings))
    app.state.scheduler = scheduler or SchedulerStatus(settings, enabled=False)
    app.mount("/static", pages.static_files(), name="static")
    for router in (
        twilio.router,
        twilio_queue.router,
        twilio_agents.router,
        prompts.router,
        health.router,
        try_.router,
        desk_auth.router,
        desk_home.router,
        desk_reports.router,
        desk_tickets.router,
        desk_pop.router,
        desk_live.router,
        desk_callbacks.router,
    ):
        app.include_router(router)
    desk_errors.install(app)
    return app
