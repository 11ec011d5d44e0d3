"""The one dependency every route takes: settings plus the process's services."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ivr.session import Services
from ivr.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    services: Services


def get_context(request: Request) -> AppContext:
    return request.app.state.context
