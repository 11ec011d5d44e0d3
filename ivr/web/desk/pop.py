"""The screen pop: ``/desk/events`` streams each agent's pops (server-sent events) and the pop's
two links, "new ticket for this call" and "attach to ticket N", tie the call to a ticket.

The stream reads ``ivr.desk_events`` (rows, so the node holding the browser's connection need
not be the one that heard the call connect). Each event carries the pop as JSON and as the HTML
panel the frame's script (``static/desk-pop.js``) shows, rendered from ``desk/pop.html`` so no
Persian text lives in the script. A pop belongs to the user it was pushed to: its links answer
404 to anyone else, and its earlier tickets are only those of the user's scope.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sse_starlette.sse import EventSourceResponse

from ivr.call_tickets import CallTicketError, attach_call, new_ticket_for_call
from ivr.desk_events import DeskEvent, desk_events
from ivr.flow.node_names import node_name
from ivr.screen_pop import build_pop
from ivr.tickets.db import row_id
from ivr.web.deps import RowId
from ivr.web.desk import desk_router
from ivr.web.desk.csrf import FIELD
from ivr.web.desk.deps import ApiUser, Context, CurrentUser, DeskUser, get_desk
from ivr.web.desk.render import page, status_names
from ivr.web.pages import templates

router = desk_router()
PING_S = 15
"""A comment line this often keeps proxies from closing an idle stream."""
CHECK_S = 15.0
"""How often an open stream checks that its session is still open."""


def _panel(ctx: Any, user: DeskUser, pop: Any, root: str) -> str:
    return templates.env.get_template("desk/pop.html").render(
        pop=pop,
        user=user,
        root=root,
        csrf_field=FIELD,
        csrf_token=user.csrf_token,
        categories=ctx.services.tickets.categories.names(),
        status_names=status_names(),
        node_name=node_name,
    )


@router.get("/events")
async def events(request: Request, user: ApiUser, ctx: Context) -> EventSourceResponse:
    """The user's pops from now on (or after ``Last-Event-ID`` when the browser reconnects)."""
    engine = ctx.services.calls.engine
    hub = desk_events(engine)
    user_id = user.user.id
    assert user_id is not None
    header = request.headers.get("last-event-id", "")
    # Where the stream starts is fixed before the response begins: a pop pushed once the
    # browser sees the stream open is always newer.
    last = row_id(header)  # None for anything no pop can have had
    if last is None:
        last = await anyio.to_thread.run_sync(hub.last_id, user_id)
    provinces = user.scope.provinces
    root = request.scope.get("root_path", "")

    sessions = get_desk(request).sessions

    def still_logged_in() -> bool:
        return sessions.is_live(user.session_id)

    async def stream() -> AsyncIterator[dict[str, str]]:
        # Logout, the idle limit or the session's lifetime ends the stream; the browser's
        # reconnect then gets 401 and stops.
        async for event in hub.stream(user_id, last, alive=still_logged_in, check_s=CHECK_S):
            pop = await anyio.to_thread.run_sync(build_pop, engine, event, provinces)
            body = pop.as_json() | {"html": _panel(ctx, user, pop, root)}
            yield {"event": "pop", "id": str(event.id), "data": json.dumps(body)}

    return EventSourceResponse(stream(), ping=PING_S, headers={"Cache-Control": "no-store"})


def _own_event(ctx: Any, user: DeskUser, event_id: int) -> DeskEvent:
    event = desk_events(ctx.services.calls.engine).get(event_id)
    if event is None or event.user_id != user.user.id:
        raise HTTPException(status_code=404)
    return event


@router.get("/pop/{event_id}", response_class=HTMLResponse)
def pop_page(request: Request, event_id: RowId, user: CurrentUser, ctx: Context) -> HTMLResponse:
    """The pop as a page of its own (a link to come back to once the panel is closed)."""
    event = _own_event(ctx, user, event_id)
    pop = build_pop(ctx.services.calls.engine, event, user.scope.provinces)
    panel = _panel(ctx, user, pop, request.scope.get("root_path", ""))
    return page(request, "pop_page.html", user=user, panel=panel, nav="home")


def _to_ticket(request: Request, tracking: str) -> RedirectResponse:
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/desk/tickets/{tracking}", status_code=303)


def _refused(request: Request, user: DeskUser, error: CallTicketError) -> HTMLResponse:
    return page(request, "pop_error.html", status_code=400, user=user, error=str(error))


@router.post("/pop/{event_id}/ticket")
def new_ticket(
    request: Request,
    event_id: RowId,
    user: CurrentUser,
    ctx: Context,
    category: Annotated[str, Form()],
    place: Annotated[str, Form()] = "",
    callback_number: Annotated[str, Form()] = "",
) -> Any:
    event = _own_event(ctx, user, event_id)
    province = user.user.province or ""
    try:
        tracking = new_ticket_for_call(
            ctx.services.tickets,
            ctx.services.calls,
            event.external_id,
            category=category,
            actor=user.actor,
            province=province,
            place=place.strip() or None,
            callback_number=callback_number.strip() or event.caller,
        )
    except CallTicketError as error:
        return _refused(request, user, error)
    return _to_ticket(request, tracking)


@router.post("/pop/{event_id}/attach")
def attach(
    request: Request,
    event_id: RowId,
    user: CurrentUser,
    ctx: Context,
    tracking: Annotated[str, Form()],
) -> Any:
    event = _own_event(ctx, user, event_id)
    try:
        linked = attach_call(
            ctx.services.tickets,
            ctx.services.calls,
            event.external_id,
            tracking.strip(),
            actor=user.actor,
            provinces=user.scope.provinces,
        )
    except CallTicketError as error:
        return _refused(request, user, error)
    return _to_ticket(request, linked)
