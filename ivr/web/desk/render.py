"""Desk pages: the shared templates with the desk's filters (Persian digits, Jalali times)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from ivr.clock import fa_digits, jalali
from ivr.web.desk.csrf import FIELD
from ivr.web.pages import templates

templates.env.filters.setdefault("fa", lambda value: fa_digits(str(value)))
templates.env.filters.setdefault("jalali", lambda moment: fa_digits(jalali(moment)))


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``desk/<name>``; ``user`` (a DeskUser) in ``context`` fills the nav and the
    forms' CSRF field."""
    user = context.get("user")
    context.setdefault("csrf_field", FIELD)
    context.setdefault("csrf_token", None if user is None else user.csrf_token)
    context.setdefault("root", request.scope.get("root_path", ""))
    return templates.TemplateResponse(request, f"desk/{name}", context, status_code=status_code)
