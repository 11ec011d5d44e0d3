"""CSRF: every unsafe request to the desk carries a token a foreign page cannot read.

Inside a session the token is the session's own (``desk_session.csrf_token``), put in every
form as ``csrf_token`` (or sent as the ``X-CSRF-Token`` header by scripts). The login form,
before any session exists, uses a double-submit token: a signed cookie and the same value in
the form. A request without the right token gets 403 before the route runs, so nothing changes.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/desk/login"

STALE_FORM = "این فرم کهنه شده است: صفحه را دوباره باز کنید و دوباره بفرستید."
"""The desk's error page says it: the session changed since the form was drawn, or it is forged."""


async def submitted_token(request: Request) -> str:
    """The token the request carries: the header, else the form field (the form is parsed
    once and cached by Starlette, so the route can still read it)."""
    header = request.headers.get(HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(FIELD)
        return value if isinstance(value, str) else ""
    return ""


def same(expected: str | None, given: str) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), given)


async def csrf_guard(request: Request) -> None:
    """The dependency every desk router carries (see ``ivr.web.desk.desk_router``)."""
    if request.method in SAFE_METHODS:
        return
    from ivr.web.desk.deps import get_desk

    desk = get_desk(request)
    given = await submitted_token(request)
    if request.url.path.endswith(LOGIN_PATH):
        expected = desk.signer.login_token(request)
    else:
        found = desk.current(request)
        expected = None if found is None else found.csrf_token
    if not same(expected, given):
        raise HTTPException(status_code=403, detail=STALE_FORM)
