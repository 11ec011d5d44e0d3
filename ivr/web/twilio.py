"""Twilio's webhooks: form posts in, TwiML out (``ivr.telephony.twilio.render``); nothing here
decides where a call goes.

Every request must carry a valid ``X-Twilio-Signature`` (checked with the twilio library), or it
gets 403 and changes nothing. The call's state lives in the database, so any node behind a load
balancer can take any webhook of a call.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse
from twilio.request_validator import RequestValidator

from ivr.flow import actions as act
from ivr.flow.events import Digits, Event, Hangup, RecordingFailed, RecordingFinished, Timeout
from ivr.prompts import file_stem, read_wav_info
from ivr.session import CallSession
from ivr.settings import Settings
from ivr.telephony.twilio import render
from ivr.web.deps import AppContext, Context, get_context

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"])
ENDED_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}


async def verified_form(request: Request, ctx: Annotated[AppContext, Depends(get_context)]) -> dict:
    """The webhook's parameters, only if Twilio signed them; 403 otherwise."""
    form = {key: str(value) for key, value in (await request.form()).items()}
    settings = ctx.settings
    if not settings.twilio_auth_token:
        if settings.twilio_insecure_dev:
            return form
        log.warning("403: Twilio routes are closed (no IVR_TWILIO_AUTH_TOKEN): %s", request.url)
        raise HTTPException(403, "Twilio routes are closed: IVR_TWILIO_AUTH_TOKEN is not set")
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(settings.twilio_auth_token)
    if not signature or not validator.validate(_public_url(request, settings), form, signature):
        log.warning("403: the Twilio signature does not match %s", _public_url(request, settings))
        raise HTTPException(403, "invalid Twilio signature")
    return form


Form = Annotated[dict, Depends(verified_form)]


def _public_url(request: Request, settings: Settings) -> str:
    """The URL Twilio signed: the proxy's public address when one is configured."""
    if not settings.public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return settings.public_url.rstrip("/") + request.url.path + query


@router.post("/voice")
def voice(form: Form, ctx: Context, request: Request) -> Response:
    try:
        _, actions = CallSession.start(
            ctx.services,
            channel="twilio",
            external_id=form.get("CallSid", ""),
            caller=form.get("From"),
            called=form.get("To"),
            default_province=ctx.settings.province,
            channel_id=form.get("ParentCallSid") or form.get("CallSid") or None,
        )
    except Exception:
        log.exception("could not start Twilio call %s", form.get("CallSid"))
        return _unavailable(form, ctx, request)
    return _twiml(actions, ctx, request)


@router.post("/gather")
def gathered(form: Form, ctx: Context, request: Request) -> Response:
    return _advance(form, Digits(form.get("Digits", "")), ctx, request)


@router.post("/timeout")
def timed_out(form: Form, ctx: Context, request: Request) -> Response:
    return _advance(form, Timeout(), ctx, request)


@router.post("/recorded")
def recorded(form: Form, ctx: Context, request: Request) -> Response:
    url = form.get("RecordingUrl")
    if not url:
        return _advance(form, RecordingFinished(None, 0.0), ctx, request)
    try:
        path = _download(url, form.get("CallSid", "call"), form.get("RecordingSid", ""), ctx)
        duration = read_wav_info(path).duration
    except Exception:
        log.exception("could not fetch recording %s", url)
        return _advance(form, RecordingFailed(), ctx, request)
    return _advance(form, RecordingFinished(str(path), duration), ctx, request)


@router.post("/status")
def status(form: Form, ctx: Context) -> Response:
    if form.get("CallStatus") in ENDED_STATUSES:
        session = CallSession.resume(ctx.services, form.get("CallSid", ""))
        if session is not None:
            session.feed(Hangup())
    return Response(status_code=204)


@router.get("/recording/{name}")
def recording(name: str, ctx: Context, token: str = "") -> FileResponse:
    """The caller's own recording, played back to them; the token keeps other people out."""
    path = ctx.settings.recordings_dir / name
    if not hmac.compare_digest(token, _token(name, ctx.settings)) or not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type="audio/wav")


def _advance(form: dict, event: Event, ctx: Context, request: Request) -> Response:
    call_sid = form.get("CallSid", "")
    try:
        session = CallSession.resume(ctx.services, call_sid)
        if session is None:
            log.warning("webhook for unknown call %s: starting it over", call_sid)
            return voice(form, ctx, request)
        actions = session.feed(event)
    except Exception:
        log.exception("could not advance Twilio call %s", call_sid)
        return _unavailable(form, ctx, request)
    return _twiml(actions, ctx, request)


def _twiml(actions: tuple[act.Action, ...], ctx: AppContext, request: Request) -> Response:
    base = (ctx.settings.public_url or str(request.base_url)).rstrip("/")
    return Response(
        render(actions, base, lambda audio: _audio_url(audio, base, ctx.settings)),
        media_type="application/xml",
    )


def _unavailable(form: dict, ctx: AppContext, request: Request) -> Response:
    """The database is unreachable: say so in Persian and hand the caller to a person (the
    session records the transfer's cause when it still can)."""
    call_sid = form.get("CallSid", "")
    actions = CallSession.fail_over(ctx.services, call_sid, ctx.settings.province)
    return _twiml(actions, ctx, request)


def _audio_url(audio: act.Audio, base: str, settings: Settings) -> str:
    if isinstance(audio, act.Recorded):
        name = Path(audio.path).name
        return f"{base}/twilio/recording/{name}?token={_token(name, settings)}"
    return f"{base}/prompts/fa/{file_stem(audio)}.wav"


def _token(name: str, settings: Settings) -> str:
    key = settings.secret.encode()
    return hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:32]


def _download(url: str, call_sid: str, recording_sid: str, ctx: AppContext) -> Path:
    """Fetch ``<Record>``'s audio as WAV into storage/recordings, with the account's credentials."""
    settings = ctx.settings
    auth = None
    if settings.twilio_account_sid and settings.twilio_auth_token:
        auth = (settings.twilio_account_sid, settings.twilio_auth_token)
    wav_url = url if url.endswith(".wav") else f"{url}.wav"
    reply = httpx.get(wav_url, auth=auth, timeout=10, follow_redirects=True)
    if reply.status_code == 404 and wav_url != url:
        reply = httpx.get(url, auth=auth, timeout=10, follow_redirects=True)
    reply.raise_for_status()
    settings.recordings_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(c for c in f"{call_sid}-{recording_sid or 'rec'}" if c.isalnum() or c in "-_")
    path = settings.recordings_dir / f"twilio-{safe}.wav"
    path.write_bytes(reply.content)
    return path
