"""Routes for operators and load balancers: liveness and the benchmark's floor."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

router = APIRouter(tags=["health"])


@router.api_route("/twiml/ping", methods=["GET", "POST"])
def ping() -> PlainTextResponse:
    """The smallest TwiML this server can answer: the floor for the turn benchmark."""
    return PlainTextResponse(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>',
        media_type="application/xml",
    )


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
