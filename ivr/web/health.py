"""Routes for operators and load balancers: health and the benchmark's floor."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.exc import SQLAlchemyError

from ivr.scheduler import SchedulerStatus
from ivr.tickets.db import schema_state
from ivr.web.deps import Context

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)
LOG_EVERY_S = 60.0
"""A load balancer asks every few seconds: an outage is logged once a minute, not each time."""
_last_logged = 0.0


@router.api_route("/twiml/ping", methods=["GET", "POST"])
def ping() -> PlainTextResponse:
    """The smallest TwiML this server can answer: the floor for the turn benchmark."""
    return PlainTextResponse(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>',
        media_type="application/xml",
    )


@router.get("/healthz")
def healthz(request: Request, ctx: Context) -> JSONResponse:
    """This node: the database (reachable, schema revision) and its scheduler (leader,
    follower, starting, disabled or dead; whether its job store works, how often its thread
    was rebuilt or the lead given up); 503 unless the database answers with the schema this
    version needs and the scheduler, where it runs, is alive and can store its jobs."""
    problems: list[str] = []
    database = _database(ctx, problems)
    status: SchedulerStatus = request.app.state.scheduler
    state = status.state
    if state == "dead":
        problems.append("the scheduler thread is dead")
    if state == "leader" and status.store_error is not None:
        problems.append(
            f"the scheduler's job store has failed for {status.store_failing_s:.0f} s "
            f"({status.store_error}); the lead is given up if it goes on"
        )
    body = {
        "status": "unhealthy" if problems else "ok",
        "node": ctx.settings.node_name,
        "database": database,
        "scheduler": {
            "state": state,
            "silent_s": round(status.silent_s, 1),
            "job_store": "ok" if status.store_error is None else "failing",
            "job_store_error": status.store_error,
            "rebuilds": status.rebuilds,
            "gave_up_lead": status.gave_up,
        },
        "problems": problems,
    }
    return JSONResponse(body, status_code=503 if problems else 200)


def _database(ctx: Any, problems: list[str]) -> dict[str, Any]:
    engine = ctx.services.tickets.engine
    report: dict[str, Any] = {"backend": engine.dialect.name, "reachable": False}
    try:
        state = schema_state(engine)
    except SQLAlchemyError as error:
        problems.append(f"the database cannot be reached ({type(error).__name__})")
        _log_outage(error)
        return report
    report.update(reachable=True, schema=state.current, newest=state.head, state=state.status)
    if state.status != "current":
        problems.append(f"the database schema is {state.status} ({state.current or 'none'}, "
                        f"this version needs {state.head})")  # fmt: skip
    return report


def _log_outage(error: SQLAlchemyError) -> None:
    global _last_logged
    now = time.monotonic()
    if now - _last_logged >= LOG_EVERY_S or _last_logged == 0.0:
        _last_logged = now
        log.warning("/healthz: the database cannot be reached: %s", getattr(error, "orig", error))
