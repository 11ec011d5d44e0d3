"""The dependencies routes take: settings plus the process's services, and the id types of URLs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request

from ivr.session import Services
from ivr.settings import Settings
from ivr.tickets.db import MAX_ROW_ID


@dataclass
class AppContext:
    settings: Settings
    services: Services


def get_context(request: Request) -> AppContext:
    return request.app.state.context


Context = Annotated[AppContext, Depends(get_context)]

RowId = Annotated[int, Path(le=MAX_ROW_ID)]
"""A row's id in a URL's path: one past what a row can hold is refused (422), not sent to the
database driver to overflow."""
RowIdQuery = Annotated[int | None, Query(le=MAX_ROW_ID)]
"""The same, as an optional query parameter."""
