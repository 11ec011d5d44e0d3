"""The /try page: call 124 from a browser — a phone keypad over the real call flow — and the
menu tree drawn from its data. HTTP only: ``ivr.telephony.browser`` translates, the call session
does the rest, and the calls write real tickets (channel ``web``).

Who may use it: ``IVR_TRY_ENABLED``; unset, the page is open only while the web server listens
on loopback alone (a development install) and answers 404 everywhere else. Until the desk has
logins, "only for desk users" means exactly that: off unless someone turns it on explicitly.
Every address may start ``CALLS_PER_WINDOW`` calls, send ``EVENTS_PER_WINDOW`` events and
upload ``RECORDINGS_PER_WINDOW`` recordings per ``WINDOW_S`` seconds (429 beyond that);
an upload is at most ``MAX_UPLOAD_BYTES`` and must arrive within ``UPLOAD_DEADLINE_S``.

Requests that change anything must be ``application/json`` or audio: types a foreign page can
only send after a CORS preflight, which this app never grants, so another site cannot make a
visitor's browser place calls here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ivr.flow import actions as act
from ivr.prompts import file_stem, load_catalog
from ivr.settings import Settings
from ivr.telephony.browser import (
    DEFAULT_CALLER,
    BadEvent,
    BrowserCalls,
    Turn,
    caller_from_json,
    event_from_json,
    is_call_id,
    render,
)
from ivr.web.deps import AppContext, Context
from ivr.web.pages import templates
from ivr.web.ratelimit import SlidingWindowLimiter

router = APIRouter(prefix="/try", tags=["try"])

WINDOW_S = 60
CALLS_PER_WINDOW = 10
EVENTS_PER_WINDOW = 300
RECORDINGS_PER_WINDOW = 10
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
"""Two minutes of a phone's WebM are about 2 MB; this leaves room for a chosen WAV file."""
UPLOAD_DEADLINE_S = 60
MAX_JSON_BYTES = 4096
AUDIO_TYPES = ("audio/", "video/webm", "video/mp4", "video/ogg", "application/octet-stream")
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def try_enabled(settings: Settings) -> bool:
    """IVR_TRY_ENABLED if set; otherwise whether the web server listens on loopback only."""
    if settings.try_enabled is not None:
        return settings.try_enabled
    return is_loopback(settings.web_host)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # "0.0.0.0", "", a host name: not loopback alone


def _open(ctx: Context) -> AppContext:
    if not try_enabled(ctx.settings):
        raise HTTPException(404)
    return ctx


Open = Annotated[AppContext, Depends(_open)]


# --- rate limits -------------------------------------------------------------------------


@dataclass
class Limits:
    calls: SlidingWindowLimiter
    events: SlidingWindowLimiter
    recordings: SlidingWindowLimiter


_LIMITS_LOCK = threading.Lock()


def _limits(request: Request) -> Limits:
    """One set per app, so two apps in one process (tests) do not share counts."""
    state = request.app.state
    with _LIMITS_LOCK:
        if not hasattr(state, "try_limits"):
            state.try_limits = Limits(
                SlidingWindowLimiter(CALLS_PER_WINDOW, WINDOW_S),
                SlidingWindowLimiter(EVENTS_PER_WINDOW, WINDOW_S),
                SlidingWindowLimiter(RECORDINGS_PER_WINDOW, WINDOW_S),
            )
        return state.try_limits


def _check(limiter: SlidingWindowLimiter, request: Request) -> None:
    address = request.client.host if request.client else "unknown"
    if not limiter.allow(address):
        wait = limiter.retry_after(address)
        raise HTTPException(429, "too many requests", headers={"Retry-After": str(wait)})


# --- the call ----------------------------------------------------------------------------


def _calls(ctx: AppContext) -> BrowserCalls:
    settings = ctx.settings
    return BrowserCalls(
        ctx.services, settings.province, settings.agent_queue, settings.recordings_dir
    )


@router.get("", response_class=HTMLResponse)
def try_page(request: Request, ctx: Open) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    config = {
        "calls_url": f"{root}/try/calls",
        "unlock_url": f"{root}/prompts/fa/{file_stem('pause')}.wav",
        "default_caller": DEFAULT_CALLER,
    }
    return templates.TemplateResponse(request, "try.html", {"config": config})


@router.post("/calls", status_code=201)
async def start_call(request: Request, ctx: Open) -> JSONResponse:
    """Start a call: ``{"caller": "09121234567"}`` (the caller ID; empty: anonymous)."""
    _check(_limits(request).calls, request)
    data = await _json(request)
    try:
        caller = caller_from_json(data) if "caller" in data else DEFAULT_CALLER
    except BadEvent as exc:
        raise HTTPException(422, str(exc)) from exc
    turn = await run_in_threadpool(_calls(ctx).start, caller)
    return _reply(turn, request, ctx, status_code=201)


@router.post("/calls/{call_id}/events")
async def call_event(call_id: str, request: Request, ctx: Open) -> JSONResponse:
    """The caller's next move: a JSON event, or the recording's audio as the body."""
    limits = _limits(request)
    _check(limits.events, request)
    if not is_call_id(call_id):
        raise HTTPException(404, "no such call")
    calls = _calls(ctx)
    if _is_audio(request):
        _check(limits.recordings, request)
        audio = await _body(request, MAX_UPLOAD_BYTES)
        turn = await run_in_threadpool(calls.record, call_id, audio)
    else:
        data = await _json(request)
        try:
            event = event_from_json(data)
        except BadEvent as exc:
            raise HTTPException(422, str(exc)) from exc
        turn = await run_in_threadpool(calls.feed, call_id, event)
    if turn is None:
        raise HTTPException(404, "no such call")
    return _reply(turn, request, ctx)


@router.get("/calls/{call_id}/recordings/{name}")
def call_recording(call_id: str, name: str, ctx: Open) -> FileResponse:
    """The caller's own recording, played back to the same call only."""
    path = _calls(ctx).recording_of(call_id, name)
    if path is None:
        raise HTTPException(404)
    return FileResponse(path, media_type="audio/wav")


def _reply(turn: Turn, request: Request, ctx: AppContext, status_code: int = 200) -> JSONResponse:
    root = request.scope.get("root_path", "")
    texts = _catalog_texts(ctx.settings.prompts_dir)

    def url_of(audio: act.Audio) -> str:
        if isinstance(audio, act.Recorded):
            return f"{root}/try/calls/{turn.call_id}/recordings/{Path(audio.path).name}"
        return f"{root}/prompts/fa/{file_stem(audio)}.wav"

    body = {
        "call": turn.call_id,
        "events_url": f"{root}/try/calls/{turn.call_id}/events",
        "actions": render(turn.actions, url_of, lambda pid: texts.get(pid, "")),
        "tracking": turn.tracking,
        "ended": turn.ended,
    }
    return JSONResponse(body, status_code=status_code)


@lru_cache(maxsize=4)
def _catalog_texts(prompts_dir: Path) -> dict[str, str]:
    return {pid: prompt.text for pid, prompt in load_catalog(prompts_dir).items()}


# --- request bodies ----------------------------------------------------------------------


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _is_audio(request: Request) -> bool:
    kind = _media_type(request)
    return any(kind.startswith(allowed) for allowed in AUDIO_TYPES)


async def _json(request: Request) -> dict[str, Any]:
    if _media_type(request) != "application/json":
        raise HTTPException(415, "send application/json (or the recording's audio)")
    raw = await _body(request, MAX_JSON_BYTES)
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        raise HTTPException(422, "the body is not JSON") from exc
    if not isinstance(data, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return data


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes and (408) past the deadline."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"at most {limit} bytes")
    received = bytearray()
    try:
        async with asyncio.timeout(UPLOAD_DEADLINE_S):
            async for chunk in request.stream():
                received += chunk
                if len(received) > limit:
                    raise HTTPException(413, f"at most {limit} bytes")
    except TimeoutError as exc:
        raise HTTPException(408, "the upload took too long") from exc
    return bytes(received)


# --- the menu tree -----------------------------------------------------------------------

GraphFormat = Annotated[str, Query(alias="format", pattern="^(html|svg|dot|mermaid)$")]


@router.get("/flow")
def flow_page(
    request: Request,
    ctx: Open,
    graph_format: GraphFormat = "html",
) -> Response:
    """The menus drawn from ``ivr/flow/menus.py``: a page, or ``?format=svg|dot|mermaid``."""
    settings = ctx.settings
    drawn = _drawn(settings.province, settings.prompts_dir)
    if graph_format == "dot":
        return Response(drawn.dot, media_type="text/vnd.graphviz; charset=utf-8")
    if graph_format == "mermaid":
        return Response(drawn.mermaid, media_type="text/plain; charset=utf-8")
    if graph_format == "svg":
        if drawn.svg is None:
            raise HTTPException(503, drawn.error)
        return Response(drawn.svg, media_type="image/svg+xml")
    svg = drawn.svg[drawn.svg.find("<svg") :] if drawn.svg else None
    context = {"svg": svg, "dot": drawn.dot, "error": drawn.error, "province": settings.province}
    return templates.TemplateResponse(request, "flow.html", context)


@dataclass(frozen=True)
class Drawn:
    dot: str
    mermaid: str
    svg: str | None
    error: str


@lru_cache(maxsize=8)
def _drawn(province: str, prompts_dir: Path) -> Drawn:
    """Drawn once per process: the menus and the catalogue change only with a restart."""
    from ivr.flow.graph import flow_graph, to_dot, to_mermaid
    from ivr.graphviz import GraphvizError, dot_to_svg

    graph = flow_graph(province, _catalog_texts(prompts_dir))
    dot = to_dot(graph)
    try:
        return Drawn(dot, to_mermaid(graph), dot_to_svg(dot), "")
    except GraphvizError as exc:
        return Drawn(dot, to_mermaid(graph), None, str(exc))
