"""Logging in and out of the desk (``/desk/login``, ``/desk/logout``).

The form's fields are ``username`` and ``password`` (a contract with tests outside the
project). Wrong passwords are counted per name and per address in the database; past the limit
the answer is 429 and the try is logged, without checking the password at all.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ivr.users.sessions import LoginThrottled
from ivr.web.desk import desk_router
from ivr.web.desk.deps import CurrentUser, DeskParts
from ivr.web.desk.render import page

log = logging.getLogger(__name__)

router = desk_router()
HOME = "/desk/"


def safe_next(target: str | None) -> str:
    """Where to go after login: a path inside the desk, never another site."""
    if target and target.startswith("/desk") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(
    request: Request, desk: DeskParts, *, next_: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The form, with a login CSRF token (the one already issued while it is still good)."""
    token = desk.signer.login_token(request) or secrets.token_urlsafe(24)
    response = page(request, "login.html", status, next=next_, error=error, login_token=token)
    desk.signer.new_login_token(response, token)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, desk: DeskParts, next: str | None = None) -> HTMLResponse:
    return _login_page(request, desk, next_=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    desk: DeskParts,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = HOME,
) -> Response:
    target = safe_next(next)
    try:
        user = desk.sessions.authenticate(username, password, client_address(request))
    except LoginThrottled:
        return _login_page(request, desk, next_=target, error="throttled", status=429)
    if user is None:
        return _login_page(request, desk, next_=target, error="wrong", status=401)
    token, _opened = desk.sessions.open(user, client_address(request))
    response = RedirectResponse(request.scope.get("root_path", "") + target, status_code=303)
    desk.signer.set_session(response, token)
    return response


@router.get("/logout", response_class=HTMLResponse)
def logout_form(request: Request, user: CurrentUser) -> HTMLResponse:
    """A page with the logout button (a GET changes nothing: logging out is a form post)."""
    return page(request, "logout.html", user=user)


@router.post("/logout")
def logout(request: Request, desk: DeskParts, user: CurrentUser) -> Response:
    desk.sessions.end(user.session_id)
    log.info("desk logout: user %r", user.name)
    response = RedirectResponse(request.scope.get("root_path", "") + "/desk/login", 303)
    desk.signer.clear_session(response)
    return response
