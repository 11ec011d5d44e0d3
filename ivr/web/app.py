"""The FastAPI application: routers by audience, one context built at start-up."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, PlainTextResponse

from ivr.services import build_services
from ivr.session import Services
from ivr.settings import Settings, get_settings
from ivr.telephony import twilio
from ivr.web.deps import AppContext, get_context

STEM = re.compile(r"^[A-Za-z0-9_-]+$")


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="ivr124", docs_url=None, redoc_url=None)
    app.state.context = AppContext(settings, services or build_services(settings))
    app.include_router(twilio.router)

    @app.get("/prompts/fa/{stem}.wav")
    def prompt_audio(stem: str, ctx: Annotated[AppContext, Depends(get_context)]) -> FileResponse:
        """Prompt audio for Twilio's <Play>: a studio recording if there is one, else generated."""
        if not STEM.match(stem):
            raise HTTPException(404)
        base = ctx.settings.prompts_dir
        for path in (base / "fa" / f"{stem}.wav", base / "generated" / "fa" / f"{stem}.wav"):
            if path.is_file():
                return FileResponse(path, media_type="audio/wav")
        raise HTTPException(404)

    @app.get("/twiml/ping")
    @app.post("/twiml/ping")
    def ping() -> PlainTextResponse:
        """The smallest TwiML this server can answer: the floor for the turn benchmark."""
        return PlainTextResponse(
            '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>',
            media_type="application/xml",
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
