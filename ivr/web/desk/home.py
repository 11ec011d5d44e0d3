"""``/desk/``: my work — tickets of my province (mine first) by deadline, overdue first."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from ivr.clock import utcnow
from ivr.tickets.desk_queries import DeskQueries
from ivr.web.desk import desk_router
from ivr.web.desk.deps import Context, CurrentUser
from ivr.web.desk.render import page

router = desk_router()


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: CurrentUser, ctx: Context) -> HTMLResponse:
    work = DeskQueries(ctx.services.tickets.engine).my_work(user.scope, user.name)
    return page(request, "home.html", user=user, nav="home", work=work, now=utcnow())
