"""Twilio's webhooks: form posts in, TwiML out (``ivr.telephony.twilio.render``); nothing here
decides where a call goes.

Every request must carry a valid ``X-Twilio-Signature`` (checked with the twilio library), or it
gets 403 and changes nothing; a signed request whose fields are nonsense (too long, a CallSid
missing or malformed) gets 400. The call's state lives in the database, so any node behind a
load balancer can take any webhook of a call.

Turns are idempotent: each answer's webhook URLs carry its number (``?turn=N``, signed by
Twilio with the rest of the URL), and the call keeps its last answer. A request for a turn
already answered — Twilio's retry after a slow answer, a replay — gets that answer again and
changes nothing; so does a request carrying the ``I-Twilio-Idempotency-Token`` of the last
answer, and a second ``/twilio/voice`` for a call in progress.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse
from starlette.datastructures import URL
from twilio.request_validator import RequestValidator, compare

from ivr.flow import actions as act
from ivr.flow.events import Digits, Event, Hangup, RecordingFailed, RecordingFinished, Timeout
from ivr.prompts import file_stem
from ivr.session import CallSession
from ivr.settings import Settings
from ivr.telephony.twilio import render
from ivr.tickets.calls import TurnTaken
from ivr.web import playback
from ivr.web.deps import AppContext, Context, get_context
from ivr.web.twilio_recordings import fetch
from ivr.web.workers import on_call_worker

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"])
ENDED_STATUSES = {"completed", "busy", "failed", "no-answer", "canceled"}
MAX_BODY = 16 * 1024
"""Twilio's voice webhooks are a few hundred bytes; anything far larger is refused unread."""
MAX_FIELDS = 80
_SID = re.compile(r"[A-Za-z0-9]{2,64}")
_DIGITS = re.compile(r"[0-9*#]{0,64}|hangup|timeout")
FIELD_LIMITS: dict[str, re.Pattern[str] | int] = {
    "CallSid": _SID,
    "AccountSid": _SID,
    "ParentCallSid": _SID,
    "RecordingSid": re.compile(r"[A-Za-z0-9]{0,64}"),
    "Digits": _DIGITS,
    "From": 64,
    "To": 64,
    "Caller": 64,
    "Called": 64,
    "CallStatus": 32,
    "RecordingUrl": 512,
    "RecordingDuration": 16,
}
"""Each field Twilio sends that we read: a pattern it must match, or its longest length."""
OTHER_FIELD_MAX = 1024
MAX_TURN = 100_000
NAME = re.compile(r"(?:twilio|answer)-[A-Za-z0-9_-]{1,140}\.wav")
"""Callers' recordings, and the desk's answers (ivr.answers) played on following up."""


class Webhook:
    """A signed webhook's fields, the turn its URL names and its idempotency token."""

    def __init__(self, form: dict[str, str], turn: int | None, token: str | None) -> None:
        self.form = form
        self.turn = turn
        self.token = token

    @property
    def call_sid(self) -> str:
        return self.form["CallSid"]

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.form.get(name, default)


async def verified_form(
    request: Request, ctx: Annotated[AppContext, Depends(get_context)]
) -> Webhook:
    """The webhook's parameters, only if Twilio signed them (403 otherwise) and they are
    within bounds (400 otherwise)."""
    return await _verified(request, ctx)


async def _webhook(request: Request) -> tuple[Webhook, AppContext]:
    """``verified_form`` without FastAPI's dependency solving, for this module's routes:
    resolving two dependencies per request cost about as much CPU as a whole turn's SQL."""
    ctx = get_context(request)
    return await _verified(request, ctx), ctx


async def _verified(request: Request, ctx: AppContext) -> Webhook:
    body = await _bounded_body(request)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(400, "the form is not one Twilio sends") from None
    form = _SignedForm(pairs)
    settings = ctx.settings
    if not settings.twilio_auth_token:
        if not settings.twilio_insecure_dev:
            log.warning("403: Twilio routes are closed (no IVR_TWILIO_AUTH_TOKEN): %s", request.url)
            raise HTTPException(403, "Twilio routes are closed: IVR_TWILIO_AUTH_TOKEN is not set")
    else:
        signature = request.headers.get("X-Twilio-Signature", "")
        validator = _validator(settings.twilio_auth_token)
        url = _public_url(request, settings)
        if not signature or len(signature) > 128 or not _signed(validator, url, form, signature):
            log.warning("403: the Twilio signature does not match %s", url[:300])
            raise HTTPException(403, "invalid Twilio signature")
    _check_bounds(form)
    turn = _turn(request.query_params.get("turn"))
    token = request.headers.get("I-Twilio-Idempotency-Token")
    if token is not None and (not token or len(token) > 64):
        raise HTTPException(400, "I-Twilio-Idempotency-Token: not one Twilio sends")
    return Webhook(form, turn, token)


class _SignedForm(dict[str, str]):
    """The form, with the ``getall`` twilio's ``RequestValidator`` asks a multi-dict for: a
    plain dict costs it two caught AttributeErrors per field for each URL variant it checks
    (about 80 for a webhook), 40 % of the validation's CPU. The values are the dict's own, so
    what is signed is the same."""

    def getall(self, name: str) -> list[str]:
        return [self[name]]


def _signed(validator: RequestValidator, url: str, form: _SignedForm, signature: str) -> bool:
    """Twilio signs the URL it requested: that is checked first, one HMAC. ``validate`` then
    tries the URL with and without its port (two more, always both), which only a proxy that
    changed the port needs: 73 → 23 µs for a signed turn (``timeit``)."""
    if compare(validator.compute_signature(url, form), signature):
        return True
    return bool(validator.validate(url, form, signature))


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(400, "the form is larger than any Twilio sends")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise HTTPException(400, "the form is larger than any Twilio sends")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_bounds(form: dict[str, str]) -> None:
    if not form.get("CallSid"):
        raise HTTPException(400, "CallSid is missing")
    for name, value in form.items():
        limit = FIELD_LIMITS.get(name, OTHER_FIELD_MAX)
        if len(name) > 64:
            raise HTTPException(400, "a field name longer than any Twilio sends")
        fits = len(value) <= limit if isinstance(limit, int) else limit.fullmatch(value)
        if not fits or "\x00" in value:
            raise HTTPException(400, f"{name}: not a value Twilio sends")


def _turn(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or int(text) > MAX_TURN:
        raise HTTPException(400, "turn: not a number this server gave")
    return int(text)


Form = Annotated[Webhook, Depends(verified_form)]


Endpoint = Callable[[Request], Awaitable[Response]]


def _webhook_route(path: str) -> Callable[[Endpoint], Endpoint]:
    """A plain Starlette route for a webhook: FastAPI's route wrapper (dependency solving,
    its exit stack) cost 23 µs a request, a tenth of the ``/twiml/ping`` floor, for handlers
    that read their request themselves (``_webhook``). Exception handlers still apply."""

    def add(endpoint: Endpoint) -> Endpoint:
        router.add_route(router.prefix + path, endpoint, methods=["POST"], include_in_schema=False)
        return endpoint

    return add


def _public_url(request: Request, settings: Settings) -> str:
    """The URL Twilio signed: the proxy's public address when one is configured. What
    ``str(request.url)`` gives, from the address made once (``_base_url``) and the path."""
    scope = request.scope
    path = scope["path"]
    if "?" in path or "#" in path or "\\" in path:  # escaped as Starlette escapes them
        path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = scope.get("query_string", b"")
    tail = f"{path}?{query.decode()}" if query else path
    if settings.public_url:
        return settings.public_url.rstrip("/") + tail
    server = scope.get("server")
    address = tuple(server) if server else None
    return _base_url(scope.get("scheme", "http"), request.headers.get("host"), address, "") + tail


@_webhook_route("/voice")
async def voice_route(request: Request) -> Response:
    form, ctx = await _webhook(request)
    return await on_call_worker(voice, form, ctx, request)


def voice(form: Webhook, ctx: AppContext, request: Request) -> Response:
    try:
        saved = ctx.services.calls.load(form.call_sid)
        if saved is not None and saved.reply is not None:  # the call goes on where it was
            log.info("call %s: /voice again at turn %d: its last answer", saved.id, saved.turn)
            return _xml(saved.reply)
        session, _ = CallSession.start(
            ctx.services,
            channel="twilio",
            external_id=form.call_sid,
            caller=form.get("From"),
            called=form.get("To"),
            default_province=ctx.settings.province,
            channel_id=form.get("ParentCallSid") or form.call_sid,
            render=_renderer(form, ctx, request),
        )
    except TurnTaken:
        return _last_reply(form, ctx, request)
    except Exception:
        log.exception("could not start Twilio call %s", form.call_sid)
        return _unavailable(form, ctx, request)
    return _xml(session.reply or "")


@_webhook_route("/gather")
async def gathered(request: Request) -> Response:
    form, ctx = await _webhook(request)
    digits = Digits(form.get("Digits", "") or "")
    return await on_call_worker(_advance, form, lambda: digits, ctx, request)


@_webhook_route("/timeout")
async def timed_out(request: Request) -> Response:
    form, ctx = await _webhook(request)
    return await on_call_worker(_advance, form, Timeout, ctx, request)


@_webhook_route("/recorded")
async def recorded(request: Request) -> Response:
    """The recording is fetched on a download thread (``twilio_recordings``), so a slow one
    holds no call worker; a replayed turn is answered before anything is fetched."""
    form, ctx = await _webhook(request)
    session = await on_call_worker(_session_for_turn, form, ctx)
    if isinstance(session, Response):
        return session
    url = form.get("RecordingUrl")
    event: Event
    if not url:
        event = RecordingFinished(None, 0.0)
    else:
        safe = "".join(
            c
            for c in f"{form.call_sid}-{form.get('RecordingSid') or 'rec'}"
            if c.isalnum() or c in "-_"
        )
        try:
            fetched = await fetch(
                url,
                ctx.settings.recordings_dir,
                f"twilio-{safe}.wav",
                ctx.settings,
                form.get("AccountSid"),
            )
            event = RecordingFinished(str(fetched.path), fetched.seconds)
        except Exception as error:
            log.warning("call %s: recording not fetched: %s", form.call_sid, error)
            event = RecordingFailed()
    return await on_call_worker(_advance, form, lambda: event, ctx, request, session)


@_webhook_route("/status")
async def status_route(request: Request) -> Response:
    form, ctx = await _webhook(request)
    if form.get("CallStatus") not in ENDED_STATUSES:
        return Response(status_code=204)
    return await on_call_worker(status, form, ctx)


def status(form: Webhook, ctx: AppContext) -> Response:
    if form.get("CallStatus") in ENDED_STATUSES:
        session = CallSession.resume(ctx.services, form.call_sid)
        if session is not None and not session.state.ended:
            session.feed(Hangup())
    return Response(status_code=204)


@router.get("/recording/{name}")
def recording(
    name: str, ctx: Context, token: str = "", call: str = "", expires: str = ""
) -> FileResponse:
    """The caller's own recording, played back to them during their call; the signed,
    expiring link keeps other people out."""
    if not NAME.fullmatch(name) or len(token) > 64 or len(call) > 64:
        raise HTTPException(404)
    path = ctx.settings.recordings_dir / name
    if not playback.valid(name, call, expires, token, ctx.settings) or not path.is_file():
        raise HTTPException(404)
    return FileResponse(path, media_type="audio/wav")


# --- turns ---------------------------------------------------------------------------------


def _session_for_turn(form: Webhook, ctx: AppContext) -> CallSession | Response | None:
    """The call to advance, or the answer already given when this request is a retry or a
    replay; None for a call this server never saw (or cannot load: the turn then fails over)."""
    try:
        session = CallSession.resume(ctx.services, form.call_sid, at_turn=form.turn)
    except Exception:
        log.exception("could not load Twilio call %s", form.call_sid)
        return None
    saved = session.saved if session is not None else None
    if saved is None or saved.reply is None:
        return session
    if form.token is not None and form.token == saved.reply_token:
        log.info("call %s: a retry of turn %d (same idempotency token)", saved.id, saved.turn)
        return _xml(saved.reply)
    if form.turn is not None and form.turn < saved.turn:
        log.warning(
            "call %s: a request for turn %d, answered already (now %d): the same answer again",
            saved.id, form.turn, saved.turn,
        )  # fmt: skip
        return _xml(saved.reply)
    return session


def _advance(
    form: Webhook,
    event: Callable[[], Event],
    ctx: AppContext,
    request: Request,
    session: CallSession | Response | bool | None = False,
) -> Response:
    if session is False:
        session = _session_for_turn(form, ctx)
    if isinstance(session, Response):
        return session
    try:
        if session is None:
            if ctx.services.calls.load(form.call_sid) is not None:
                raise RuntimeError("the call's record exists but could not be loaded")
            log.warning("webhook for unknown call %s: starting it over", form.call_sid)
            return voice(form, ctx, request)
        session.feed(event(), render=_renderer(form, ctx, request), token=form.token)
    except TurnTaken:
        return _last_reply(form, ctx, request)
    except Exception:
        log.exception("could not advance Twilio call %s", form.call_sid)
        return _unavailable(form, ctx, request)
    return _xml(session.reply or "")


def _last_reply(form: Webhook, ctx: AppContext, request: Request) -> Response:
    """Another request answered this turn a moment earlier: its answer is the one to give."""
    saved = ctx.services.calls.load(form.call_sid)
    if saved is None or saved.reply is None:
        return _unavailable(form, ctx, request)
    return _xml(saved.reply)


def _renderer(
    form: Webhook, ctx: AppContext, request: Request
) -> Callable[[tuple[act.Action, ...], int], str]:
    base = _base(ctx, request)
    call = form.call_sid

    def answer(actions: tuple[act.Action, ...], turn: int) -> str:
        if not _plays_recording(actions):
            return _prompts_answer(actions, base, turn)
        return render(
            actions, base, lambda audio: _audio_url(audio, base, call, ctx.settings), turn
        )

    return answer


@lru_cache(maxsize=512)
def _prompts_answer(actions: tuple[act.Action, ...], base: str, turn: int) -> str:
    """An answer that plays catalogue prompts only is the same for every call at that turn,
    and callers walk the same menus: rendered once, it is given again (rendering one is about
    20 µs, a sixth of what the session does for a menu turn)."""
    return render(actions, base, lambda audio: _prompt_url(audio, base), turn)


def _plays_recording(actions: tuple[act.Action, ...]) -> bool:
    """A caller's own recording is played with a link for that call only: never cached."""
    return any(
        isinstance(audio, act.Recorded)
        for action in actions
        if isinstance(action, act.Play | act.Gather)
        for audio in action.prompts
    )


def _base(ctx: AppContext, request: Request) -> str:
    if ctx.settings.public_url:
        return ctx.settings.public_url.rstrip("/")
    scope = request.scope
    root = scope.get("app_root_path", scope.get("root_path", ""))
    server = scope.get("server")  # ASGI allows a list: hashable as a tuple
    host = request.headers.get("host")
    return _base_url(scope.get("scheme", "http"), host, tuple(server) if server else None, root)


@lru_cache(maxsize=64)
def _base_url(scheme: str, host: str | None, server: tuple[str, int] | None, root_path: str) -> str:
    """What ``request.base_url`` gives for these parts of a request, made once per address:
    Starlette copies the whole request scope to build it, a sixtieth of a turn's CPU."""
    path = root_path if root_path.endswith("/") else f"{root_path}/"
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    scope = {"scheme": scheme, "server": server, "path": path, "root_path": root_path,
             "query_string": b"", "headers": headers}  # fmt: skip
    return str(URL(scope=scope)).rstrip("/")


def _xml(text: str) -> Response:
    return Response(text, media_type="application/xml")


def _unavailable(form: Webhook, ctx: AppContext, request: Request) -> Response:
    """The database is unreachable: say so in Persian and hand the caller to a person (the
    session records the transfer's cause when it still can)."""
    actions = CallSession.fail_over(ctx.services, form.call_sid, ctx.settings.province)
    base = _base(ctx, request)
    call = form.call_sid
    return _xml(render(actions, base, lambda audio: _audio_url(audio, base, call, ctx.settings)))


def _audio_url(audio: act.Audio, base: str, call: str, settings: Settings) -> str:
    if isinstance(audio, act.Recorded):
        return playback.link(base, Path(audio.path).name, call, settings)
    return _prompt_url(audio, base)


def _prompt_url(audio: act.Audio, base: str) -> str:
    return f"{base}/prompts/fa/{file_stem(audio)}.wav"
