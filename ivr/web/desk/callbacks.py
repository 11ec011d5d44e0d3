"""``/desk/callbacks``: the callbacks of the user's scope, pending and done, and "call now".

"Call now" places one callback at once through the dispatcher's own rules
(``ivr.callbacks.job.call_now`` → ``Dispatcher.call_now``): inside its province's agents' hours
only, one attempt at a time per number, and only onto a free agent nobody else is promised to.
A callback outside the user's scope is not found (404), listed or not.
"""

from __future__ import annotations

import logging

import anyio.to_thread
from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ivr.callbacks import job
from ivr.callbacks.dispatcher import CallNowRefused
from ivr.callbacks.models import OPEN_STATUSES, CallbackStatus
from ivr.web.deps import RowId
from ivr.web.desk import desk_router
from ivr.web.desk.deps import Context, CurrentUser
from ivr.web.desk.render import page

log = logging.getLogger(__name__)
router = desk_router()

DONE_STATUSES = (CallbackStatus.DONE, CallbackStatus.FAILED, CallbackStatus.CANCELLED)
DONE_SHOWN = 50


@router.get("/callbacks", response_class=HTMLResponse)
def callbacks_page(
    request: Request, user: CurrentUser, ctx: Context, done: str = "", error: str = ""
) -> HTMLResponse:
    service = ctx.services.callbacks
    provinces = user.scope.provinces
    pending = service.list(OPEN_STATUSES, provinces=provinces)
    finished = service.list(DONE_STATUSES, DONE_SHOWN, provinces=provinces, newest_first=True)
    return page(
        request,
        "callbacks.html",
        user=user,
        nav="callbacks",
        pending=pending,
        finished=finished,
        done=done,
        error=error,
    )


@router.post("/callbacks/{callback_id}/call-now")
async def call_now(
    request: Request, callback_id: RowId, user: CurrentUser, ctx: Context
) -> RedirectResponse:
    callback = ctx.services.callbacks.get(callback_id)
    if callback is None or not user.scope.allows(callback.province):
        raise HTTPException(status_code=404)
    root = request.scope.get("root_path", "")
    engine = ctx.services.callbacks.engine
    try:
        attempt = await anyio.to_thread.run_sync(job.call_now, engine, ctx.settings, callback_id)
    except CallNowRefused as refused:
        log.info("desk: call now %d by %s refused: %s", callback_id, user.name, refused)
        return RedirectResponse(f"{root}/desk/callbacks?error={refused.code}", status_code=303)
    log.info("desk: %s placed callback %d now (attempt %d)", user.name, callback_id, attempt)
    return RedirectResponse(f"{root}/desk/callbacks?done={callback_id}", status_code=303)
