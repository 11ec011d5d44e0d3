"""``/desk/live``: the agents' queue now, for supervisors (their province) and national staff —
callers waiting, the longest wait, agents and their state — and the forms that log an agent in
or out of the queue and pause them with a reason (AMI QueueAdd / QueueRemove / QueuePause, via
``ivr.telephony.queue_members``).

The web process keeps one AMI connection of its own for these (opened at the first visit; its
watchdog logs in again after an Asterisk restart). A supervisor sees and acts on the agents of
their scope only, and the waiting callers whose calls belong to it.
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ivr.telephony.ami import AmiClient, AmiError
from ivr.telephony.queue_members import (
    LiveQueue,
    Member,
    QueueMemberError,
    live_queue,
    log_in,
    log_out,
    pause,
)
from ivr.users.models import User
from ivr.users.store import UserStore
from ivr.web.desk import desk_router
from ivr.web.desk.deps import Context, CurrentUser, DeskUser
from ivr.web.desk.render import page

log = logging.getLogger(__name__)
router = desk_router()

ACTIONS = frozenset({"login", "logout", "pause", "unpause"})
_ami_lock = threading.Lock()
_opened: list[AmiClient] = []


def desk_ami(request: Request) -> AmiClient | None:
    """The web process's AMI client (None when IVR_AMI_USERNAME is unset)."""
    settings = request.app.state.context.settings
    if not settings.ami_username:
        return None
    with _ami_lock:
        client = getattr(request.app.state, "desk_ami", None)
        if client is None:
            client = AmiClient(
                settings.ami_host,
                settings.ami_port,
                settings.ami_username,
                settings.ami_secret,
                event_mask="off",  # only the answers to its own actions
            )
            request.app.state.desk_ami = client
            _opened.append(client)
            try:
                client.connect(timeout=3.0)
            except AmiError as error:  # the watchdog keeps trying; the page says so
                log.warning("desk: AMI not reachable yet: %s", error)
        return client


def close_clients() -> None:
    """Log off every desk AMI client this process opened (tests; an exiting process needs
    nothing)."""
    with _ami_lock:
        while _opened:
            _opened.pop().close()


def _supervisor(user: DeskUser) -> None:
    if not user.supervises:
        raise HTTPException(status_code=403, detail="صف زنده فقط برای ناظران است.")


def _agents(users: UserStore, user: DeskUser) -> list[User]:
    """Users with an extension in the viewer's scope, by name."""
    return [
        u
        for u in users.list()
        if u.active and u.extension and u.province is not None and user.scope.allows(u.province)
    ]


def _scoped(live: LiveQueue, ctx: Any, user: DeskUser, agents: list[User]) -> LiveQueue:
    """Only the viewer's agents and the callers whose calls belong to their scope."""
    if user.scope.provinces is None:
        return live
    mine = {u.extension for u in agents}
    provinces = ctx.services.calls.provinces_of([c.uniqueid for c in live.callers])
    callers = tuple(
        c for c in live.callers if (p := provinces.get(c.uniqueid)) and user.scope.allows(p)
    )
    return LiveQueue(
        name=live.name,
        callers=callers,
        longest_wait_s=max((c.wait_s for c in callers), default=0),
        agents=tuple(a for a in live.agents if a.interface in mine),
        completed=live.completed,
        abandoned=live.abandoned,
        holdtime_s=live.holdtime_s,
    )


@router.get("/live", response_class=HTMLResponse)
def live_page(
    request: Request, user: CurrentUser, ctx: Context, done: str = "", error: str = ""
) -> HTMLResponse:
    _supervisor(user)
    agents = _agents(UserStore(ctx.services.calls.engine), user)
    ami = desk_ami(request)
    queue = ctx.settings.agent_queue
    view: LiveQueue | None = None
    problem = ""
    if ami is None:
        problem = "no_ami"
    else:
        try:
            members = [Member(u.name, u.extension or "") for u in agents]
            view = _scoped(live_queue(ami, queue, members), ctx, user, agents)
        except QueueMemberError as failure:
            log.warning("desk: %s", failure)
            problem = "unreadable"
    in_queue = {a.interface: a for a in view.agents} if view else {}
    return page(
        request,
        "live.html",
        user=user,
        nav="live",
        queue=queue,
        view=view,
        problem=problem,
        agents=agents,
        in_queue=in_queue,
        done=done,
        error=error,
    )


@router.post("/live/agents/{name}/{action}")
def member_action(
    request: Request,
    name: str,
    action: str,
    user: CurrentUser,
    ctx: Context,
    reason: Annotated[str, Form()] = "",
) -> RedirectResponse:
    _supervisor(user)
    if action not in ACTIONS:
        raise HTTPException(status_code=404)
    target = next(
        (u for u in _agents(UserStore(ctx.services.calls.engine), user) if u.name == name), None
    )
    if target is None:
        raise HTTPException(status_code=404)  # not theirs to move, or no extension
    root = request.scope.get("root_path", "")
    ami = desk_ami(request)
    member = Member(target.name, target.extension or "")
    queue = ctx.settings.agent_queue
    try:
        if ami is None:
            raise QueueMemberError("IVR_AMI_USERNAME is not set")
        if action == "login":
            log_in(ami, queue, member)
        elif action == "logout":
            log_out(ami, queue, member)
        else:
            pause(ami, queue, member, reason, paused=action == "pause")
    except QueueMemberError as failure:
        log.warning("desk: %s by %s: %s", action, user.name, failure)
        code = "reason" if action == "pause" and not reason.strip() else "ami"
        return RedirectResponse(f"{root}/desk/live?error={code}", status_code=303)
    log.info("desk: %s %s %s in %s", user.name, action, target.name, queue)
    return RedirectResponse(f"{root}/desk/live?done={action}", status_code=303)
