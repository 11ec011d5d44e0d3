"""Desk pages: the shared templates with the desk's filters (Persian digits, Jalali times)."""

from __future__ import annotations

import tomllib
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from ivr import CATALOG_DIR
from ivr.categories import load_categories
from ivr.clock import fa_digits, jalali, jalali_words
from ivr.web.desk.csrf import FIELD
from ivr.web.pages import templates

templates.env.filters.setdefault("fa", lambda value: fa_digits(str(value)))
templates.env.filters.setdefault("jalali_words", jalali_words)
templates.env.filters.setdefault("jalali", lambda moment: fa_digits(jalali(moment)))


@cache
def status_names() -> dict[str, str]:
    """The statuses' Persian names: the texts a caller hears (catalogue ``status.*``)."""
    with (CATALOG_DIR / "catalog.toml").open("rb") as f:
        table = tomllib.load(f)["status"]
    return {key: value if isinstance(value, str) else value["text"] for key, value in table.items()}


@cache
def category_names() -> dict[str, str]:
    return {c.code: c.name for c in load_categories().items}


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``desk/<name>``; ``user`` (a DeskUser) in ``context`` fills the nav and the
    forms' CSRF field."""
    user = context.get("user")
    context.setdefault("csrf_field", FIELD)
    context.setdefault("csrf_token", None if user is None else user.csrf_token)
    context.setdefault("root", request.scope.get("root_path", ""))
    context.setdefault("status_names", status_names())
    context.setdefault("category_names", category_names())
    return templates.TemplateResponse(request, f"desk/{name}", context, status_code=status_code)
