"""The desk: the web app agents and supervisors work tickets in (``/desk/…``).

One router module per concern: ``auth`` (login, logout), ``tickets`` (the lists, a ticket's
page and its actions, the recording); ``deps`` gives pages the current user and their scope,
``session`` the signed cookie, ``csrf`` the token every form post carries. Other desk pages
(live queue, callbacks, reports) build on the same ``deps`` and :func:`desk_router`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ivr.web.desk.csrf import csrf_guard


def desk_router() -> APIRouter:
    """A router under ``/desk`` whose every unsafe request (POST …) must carry the session's
    CSRF token: 403 and nothing done otherwise."""
    return APIRouter(prefix="/desk", dependencies=[Depends(csrf_guard)])
