"""Twilio's side of the agents' queue: what a waiting caller hears, and how the queue ends.

``<Enqueue waitUrl=… action=…>`` (``ivr.telephony.twilio.render``) points here. The wait URL is
asked again each time its document ends (the ``<Redirect>`` at its end), so each answer is one
announcement: the caller's position and expected wait in Persian, then hold music; from the
second announcement on (counted in the ``n`` query parameter, which Twilio signs with the URL)
the callback key is offered while someone is ahead. Key 1 answers ``<Leave/>``, and Twilio then
requests the action URL with ``QueueResult=leave``: the flow goes on at the callback step.
"""

from __future__ import annotations

import contextlib
import logging
import wave
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from twilio.twiml.voice_response import VoiceResponse

from ivr.callbacks.models import Outcome
from ivr.callbacks.twilio import twilio_outcome
from ivr.clock import utcnow
from ivr.flow.engine import QUEUE_REFUSED
from ivr.flow.events import QueueLeft
from ivr.hold_music import HOLD_MUSIC_FILE, MAX_MUSIC_S, hold_music_cut, hold_music_path
from ivr.prompts import audio_path, file_stem, read_wav_info
from ivr.speech import number_fragments
from ivr.tickets.db import row_id
from ivr.web.deps import AppContext, Context
from ivr.web.twilio import Form, _advance

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio/queue", tags=["twilio"])

MAX_POSITION = 999
"""Larger positions (a malformed request) are not spoken as a number."""
RECORDED_OUTCOME = {"bridged": "connected", "hangup": "abandoned"}
"""Twilio's ``QueueResult`` in the call record's words, the ones AMI's queue events give on
Asterisk (so the nightly report counts both alike): an agent took the call, the caller hung up
waiting, or else ``left`` — the queue let the caller go (the callback key, a full queue, an
error)."""
CONTINUES_FLOW = frozenset({"leave"}) | QUEUE_REFUSED
"""Queue results after which the menus go on (the callback step, the "no agent" menu); after
the others (bridged, hangup, redirected) the call is over for the IVR."""


def base_url(ctx: AppContext, request: Request) -> str:
    return (ctx.settings.public_url or str(request.base_url)).rstrip("/")


def prompt_url(base: str, prompt_id: str) -> str:
    return f"{base}/prompts/fa/{file_stem(prompt_id)}.wav"


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def position_prompts(position: int) -> list[str]:
    """«نفر بعدی شما هستید» for 1, «شما در صف، نفر شماره‌ی n هستید» after; nothing when unknown."""
    if position == 1:
        return ["queue.youarenext"]
    if 2 <= position <= MAX_POSITION:
        return ["queue.thereare", *number_fragments(position), "queue.callswaiting"]
    return []


def wait_prompts(average_s: int) -> list[str]:
    """The expected wait in whole minutes, said only from one minute on."""
    minutes = average_s // 60
    if minutes < 1:
        return []
    return ["queue.holdtime", *number_fragments(min(minutes, MAX_POSITION)), "queue.minutes"]


@lru_cache(maxsize=512)
def _seconds_of(path: Path, mtime_ns: int) -> float:
    try:
        return read_wav_info(path).duration
    except (OSError, wave.Error, EOFError):
        return 0.0


def prompts_seconds(ctx: AppContext, prompt_ids: list[str]) -> float:
    """How long these prompts play (0 for one not rendered yet)."""
    total = 0.0
    for prompt_id in prompt_ids:
        path = audio_path(ctx.settings.prompts_dir, prompt_id, ctx.settings.generated_prompts_dir)
        if path is not None:
            with contextlib.suppress(OSError):
                total += _seconds_of(path, path.stat().st_mtime_ns)
    return total


def music_seconds(interval_s: int, spoken_s: float) -> int:
    """The hold music that fills an announcement's turn up to ``interval_s`` (at least 5 s, so
    a long announcement is still followed by some music rather than by the next one)."""
    return max(5, min(MAX_MUSIC_S, round(interval_s - spoken_s)))


def _xml(response: VoiceResponse) -> Response:
    return Response(str(response), media_type="application/xml")


def _hangup() -> Response:
    response = VoiceResponse()
    response.hangup()
    return _xml(response)


@router.post("/wait")
def wait(form: Form, ctx: Context, request: Request, n: int = 0) -> Response:
    """One announcement and the music up to the next one (IVR_TWILIO_QUEUE_ANNOUNCE_SECONDS
    from the start of this one); the redirect at its end asks for the next (``n`` + 1)."""
    base = base_url(ctx, request)
    position = _int(form.get("QueuePosition"))
    spoken = position_prompts(position) + wait_prompts(_int(form.get("AvgQueueTime")))
    offer = ["queue.periodic-announce"] if n >= 1 and position >= 2 else []
    response = VoiceResponse()
    for prompt in spoken:
        response.play(prompt_url(base, prompt))
    seconds = music_seconds(
        ctx.settings.twilio_queue_announce_seconds, prompts_seconds(ctx, spoken + offer)
    )
    music = f"{base}/twilio/queue/{HOLD_MUSIC_FILE}?s={seconds}"
    if offer:
        gather = response.gather(
            input="dtmf",
            num_digits=1,
            action=f"{base}/twilio/queue/key?n={n}",
            method="POST",
            timeout=1,
        )
        for prompt in offer:
            gather.play(prompt_url(base, prompt))
        gather.play(music)
    else:
        response.play(music)
    response.redirect(f"{base}/twilio/queue/wait?n={n + 1}", method="POST")
    return _xml(response)


@router.post("/key")
def key(form: Form, ctx: Context, request: Request, n: int = 0) -> Response:
    """1 leaves the queue for the callback step; any other key goes back to waiting."""
    response = VoiceResponse()
    if form.get("Digits", "").strip() == "1":
        response.leave()
    else:
        response.redirect(f"{base_url(ctx, request)}/twilio/queue/wait?n={n + 1}", method="POST")
    return _xml(response)


@router.get(f"/{HOLD_MUSIC_FILE}")
def music(ctx: Context, s: int = 0) -> Response:
    """The hold music ``ivr prompts build`` made, cut to ``s`` seconds when asked (the rest of
    an announcement's turn); 404 until it has been built."""
    from fastapi import HTTPException
    from fastapi.responses import FileResponse

    path = hold_music_path(ctx.settings.generated_prompts_dir)
    if not path.is_file():
        raise HTTPException(404, "no hold music: run `ivr prompts build`")
    if s <= 0:
        return FileResponse(path, media_type="audio/wav")
    try:
        body = _music_cut(path, path.stat().st_mtime_ns, min(s, MAX_MUSIC_S))
    except (OSError, wave.Error, EOFError) as error:
        log.error("hold music %s unreadable: %s", path, error)
        raise HTTPException(404, "hold music unreadable: run `ivr prompts build`") from error
    return Response(body, media_type="audio/wav")


@lru_cache(maxsize=16)
def _music_cut(path: Path, mtime_ns: int, seconds: int) -> bytes:
    return hold_music_cut(path, seconds)


@router.post("/done")
def done(form: Form, ctx: Context, request: Request) -> Response:
    """The ``<Enqueue action>``: the queue's result and time go into the call record; after
    ``leave`` (and a refused queue) the flow goes on, otherwise the call ends quietly."""
    call_sid = form.get("CallSid", "")
    result = form.get("QueueResult", "").strip() or "unknown"
    waited = max(0, _int(form.get("QueueTime")))
    left = utcnow()
    entered = left - timedelta(seconds=waited)
    try:
        ctx.services.calls.update_queue(
            call_sid,
            {
                "queue": ctx.settings.agent_queue,
                "queue_joined_at": entered,
                "queue_left_at": left,
                "queue_wait_s": float(waited),
                "queue_outcome": RECORDED_OUTCOME.get(result, "left"),
            },
        )
    except Exception:
        log.exception("call %s: could not record the queue result %s", call_sid, result)
    if result not in CONTINUES_FLOW:
        return _hangup()
    try:
        known = ctx.services.calls.load(call_sid) is not None
    except Exception:  # _advance fails the caller over to a person if the database is out
        known = True
    if not known:
        log.warning("queue result %s for unknown call %s: hanging up", result, call_sid)
        return _hangup()
    # A turn like any other: idempotent, saved with its answer, failing over when it must.
    return _advance(form, lambda: QueueLeft(result, entered_at=entered), ctx, request)


# --- callbacks on Twilio (ivr.callbacks.twilio places them with calls.create) -----------------

CALLBACK_FAILED_RESULTS = frozenset({"queue-full", "error", "system-error", "redirected-from"})
"""Enqueue results of a called-back caller that no agent reached through no doing of theirs:
the attempt counts as failed, and the callback is tried again (inside the agents' hours)."""


def _attempt(value: str | None) -> int | None:
    return row_id((value or "").strip())


@router.post("/callback")
def callback_answer(form: Form, ctx: Context, request: Request, attempt: str = "") -> Response:
    """The called-back caller answered: the greeting, then the agents' queue, where the free
    agent the dispatcher counted on (waiting in ``<Dial><Queue>``) takes them."""
    base = base_url(ctx, request)
    attempt_id = _attempt(attempt)
    if attempt_id is None:
        return _hangup()
    response = VoiceResponse()
    response.play(prompt_url(base, "callback_call.greeting"))
    response.enqueue(
        ctx.settings.agent_queue,
        wait_url=f"{base}/twilio/queue/wait",
        wait_url_method="POST",
        action=f"{base}/twilio/queue/callback/done?attempt={attempt_id}",
        method="POST",
    )
    return _xml(response)


@router.post("/callback/done")
def callback_done(form: Form, ctx: Context, request: Request, attempt: str = "") -> Response:
    """The called-back caller left the queue: bridged or hung up, the call's status callback
    closes the attempt; a queue that refused them closes it as failed, with a goodbye."""
    attempt_id = _attempt(attempt)
    result = form.get("QueueResult", "").strip() or "unknown"
    if attempt_id is None or result not in CALLBACK_FAILED_RESULTS:
        return _hangup()
    try:
        ctx.services.callbacks.finish(attempt_id, Outcome.FAILED, f"QueueResult={result}")
    except Exception:
        log.exception("callback attempt %s: could not record QueueResult=%s", attempt_id, result)
    response = VoiceResponse()
    response.play(prompt_url(base_url(ctx, request), "no_agent.goodbye"))
    response.hangup()
    return _xml(response)


@router.post("/callback/status")
def callback_status(form: Form, ctx: Context, attempt: str = "") -> Response:
    """``StatusCallback`` of a callback's call: its final CallStatus is the attempt's outcome
    (a later one for a closed attempt changes nothing)."""
    attempt_id = _attempt(attempt)
    status = form.get("CallStatus", "")
    outcome = twilio_outcome(status)
    if attempt_id is not None and outcome is not None:
        try:
            ctx.services.callbacks.finish(attempt_id, outcome, f"CallStatus={status}")
        except Exception:
            log.exception("callback attempt %s: could not record CallStatus=%s", attempt_id, status)
    return Response(status_code=204)
