"""What desk routes depend on: the desk's stores, the current user and their scope.

``CurrentUser`` is for pages: no live session → 303 to ``/desk/login?next=…``. ``ApiUser`` is
for JSON routes: 401. Both give a :class:`DeskUser` whose ``scope`` the ticket service applies
in its queries, so a ticket out of scope is not found rather than hidden by a template.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from ivr.tickets.scope import Scope
from ivr.users.models import Role, User
from ivr.users.sessions import Limits, OpenSession, SessionStore
from ivr.users.store import UserStore
from ivr.web.deps import AppContext, get_context
from ivr.web.desk.session import CookieSigner

log = logging.getLogger(__name__)
SUPERVISING_ROLES = frozenset({Role.SUPERVISOR, Role.NATIONAL, Role.ADMIN})
"""Who sees the live queue and the reports; agents work tickets and callbacks."""


@dataclass(frozen=True)
class DeskUser:
    user: User
    session_id: int
    csrf_token: str
    scope: Scope

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def supervises(self) -> bool:
        return self.user.role in SUPERVISING_ROLES

    @property
    def actor(self) -> str:
        """How the ticket history names them."""
        return self.user.name


class Desk:
    """The desk's parts, built once per app from its context."""

    def __init__(self, context: AppContext) -> None:
        settings = context.settings
        engine = context.services.tickets.engine
        self.context = context
        self.signer = CookieSigner(settings)
        self.sessions = SessionStore(engine, Limits.from_settings(settings))
        self.users = UserStore(engine)

    def current(self, request: Request) -> OpenSession | None:
        """The request's live session (looked up once per request), or None."""
        if hasattr(request.state, "desk_session"):
            return request.state.desk_session
        token = self.signer.session_token(request)
        found = None if token is None else self.sessions.resume(token)
        request.state.desk_session = found
        return found


def get_desk(request: Request) -> Desk:
    desk = getattr(request.app.state, "desk", None)
    if desk is None:
        desk = request.app.state.desk = Desk(get_context(request))
    return desk


DeskParts = Annotated[Desk, Depends(get_desk)]


def _desk_user(found: OpenSession) -> DeskUser:
    user = found.user
    return DeskUser(user, found.id, found.csrf_token, Scope.for_user(user.role, user.province))


def login_url(request: Request) -> str:
    root = request.scope.get("root_path", "")
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{root}/desk/login?next={quote(here, safe='')}"


def page_user(request: Request, desk: DeskParts) -> DeskUser:
    found = desk.current(request)
    if found is None:
        raise HTTPException(status_code=303, headers={"Location": login_url(request)})
    return _desk_user(found)


def desk_user_of(request: Request) -> DeskUser | None:
    """The request's user if it has a live session, for pages no route dependency reached (an
    error page): None when there is none or it cannot be looked up."""
    try:
        found = get_desk(request).current(request)
    except Exception:
        log.warning("the desk session could not be looked up for %s", request.url.path)
        return None
    return None if found is None else _desk_user(found)


def api_user(request: Request, desk: DeskParts) -> DeskUser:
    found = desk.current(request)
    if found is None:
        raise HTTPException(status_code=401, detail="log in at /desk/login")
    return _desk_user(found)


CurrentUser = Annotated[DeskUser, Depends(page_user)]
ApiUser = Annotated[DeskUser, Depends(api_user)]
Context = Annotated[AppContext, Depends(get_context)]
