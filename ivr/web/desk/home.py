"""``/desk/``: my work — tickets of my province (mine first) by deadline, overdue first; the
callbacks due; the callers waiting in the queue now."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from ivr.callbacks.models import OPEN_STATUSES
from ivr.clock import utcnow
from ivr.tickets.desk_queries import DeskQueries
from ivr.web.desk import desk_router
from ivr.web.desk.deps import Context, CurrentUser
from ivr.web.desk.render import page

router = desk_router()

CALLBACKS_SHOWN = 10


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: CurrentUser, ctx: Context) -> HTMLResponse:
    queries = DeskQueries(ctx.services.tickets.engine)
    now = utcnow()
    work = queries.my_work(user.scope, user.name)
    callbacks = ctx.services.callbacks.list(
        OPEN_STATUSES, CALLBACKS_SHOWN, provinces=user.scope.provinces
    )
    waiting = queries.waiting_now(user.scope, now)
    return page(
        request,
        "home.html",
        user=user,
        nav="home",
        work=work,
        callbacks=callbacks,
        waiting=waiting,
        now=now,
    )
