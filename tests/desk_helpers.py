"""Shared by the desk's tests: an app on a temporary database served by a real uvicorn, its
users, and an HTTP client that logs in through the real form (with its CSRF token)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from twilio_phone import serve_app

from ivr.services import build_services
from ivr.session import Services
from ivr.settings import Settings
from ivr.users.store import UserStore
from ivr.web.app import create_app

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class DeskSite:
    base_url: str
    settings: Settings
    services: Services
    users: UserStore

    def client(self, address: str = "127.0.0.1") -> httpx.Client:
        """A browser-like client (cookies kept, redirects not followed) from ``address``."""
        transport = httpx.HTTPTransport(local_address=address)
        return httpx.Client(base_url=self.base_url, transport=transport, timeout=30)

    def login(
        self, name: str, password: str = PASSWORD, address: str = "127.0.0.1"
    ) -> httpx.Client:
        client = self.client(address)
        reply = post_login(client, name, password)
        assert reply.status_code == 303, reply.text
        return client


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no csrf_token field in the page"
    return found.group(1)


def post_login(client: httpx.Client, name: str, password: str, **extra: Any) -> httpx.Response:
    form = client.get("/desk/login")
    assert form.status_code == 200
    data = {"username": name, "password": password, "csrf_token": csrf_of(form.text), **extra}
    return client.post("/desk/login", data=data)


def desk_settings(storage: Path, **values: Any) -> Settings:
    storage.mkdir(parents=True, exist_ok=True)
    return Settings(
        storage_dir=storage,
        prompts_dir=PROJECT_ROOT / "prompts",
        generated_prompts_dir=PROJECT_ROOT / "prompts" / "generated",
        scheduler_enabled=False,
        agents_always_open=True,
        secret_key="desk-test-secret",
        **values,
    )


@contextmanager
def desk_site(settings: Settings) -> Iterator[DeskSite]:
    services = build_services(settings)
    base_url, stop = serve_app(create_app(settings, services))
    try:
        yield DeskSite(base_url, settings, services, UserStore(services.tickets.engine))
    finally:
        stop()
        services.tickets.engine.dispose()
