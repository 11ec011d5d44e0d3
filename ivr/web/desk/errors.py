"""What a person at the desk sees when a page cannot be shown: a Persian page, right to left in
the app's own font, that says why and leads back, with the same status code.

FastAPI answers an ``HTTPException`` or a malformed path, query or form with English JSON; a
browser shows that to an agent who followed an old link or typed a tracking number by hand.
The desk's two machine routes — the screen pop's event stream and a ticket's ``.json`` — keep
that JSON, and so does every route outside ``/desk``; a redirect (303 to the login page) stays a
redirect.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ivr.web.desk.deps import desk_user_of
from ivr.web.desk.render import page

MACHINE_PATHS = ("/desk/events",)
"""Desk routes read by scripts, not people (besides every ``….json``)."""


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _malformed)


def _for_people(request: Request) -> bool:
    path = request.url.path.removeprefix(request.scope.get("root_path", ""))
    return path.startswith("/desk/") and not path.endswith(".json") and path not in MACHINE_PATHS


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code < 400 or not _for_people(request):
        return await http_exception_handler(request, error)
    detail = error.detail if isinstance(error.detail, str) else ""
    if detail == HTTPStatus(error.status_code).phrase:
        detail = ""  # Starlette's own English words ("Not Found"): the page says it in Persian
    return _error_page(request, error.status_code, detail, error.headers)


async def _malformed(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    if not _for_people(request):
        return await request_validation_exception_handler(request, error)
    return _error_page(request, 422, "", None)


def _error_page(
    request: Request, status: int, detail: str, headers: dict[str, str] | None
) -> Response:
    response = page(request, "error.html", status, user=desk_user_of(request), status=status,
                    detail=detail)  # fmt: skip
    if headers:
        response.headers.update(headers)
    return response
