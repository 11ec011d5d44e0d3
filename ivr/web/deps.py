"""The dependencies routes take: settings plus the process's services (later: the current user)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ivr.session import Services
from ivr.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    services: Services


def get_context(request: Request) -> AppContext:
    return request.app.state.context


Context = Annotated[AppContext, Depends(get_context)]
