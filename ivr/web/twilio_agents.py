"""The agents' own Twilio number: an agent calls it, types the PIN and takes the next caller.

``POST /twilio/agent`` is that number's voice webhook. The calling number must be an active
agent's (``ivr users add … --phone``), else a polite refusal; then the PIN (``ivr users pin``),
three tries per call; then ``<Dial><Queue url=…>`` takes the caller who has waited longest, and
the whisper URL tells the agent, before the bridge, whose call it is (the number digit by digit).
The try count rides in the action URL's query, which Twilio signs, so a caller cannot reset it.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from twilio.twiml.voice_response import Dial, VoiceResponse

from ivr.desk_events import desk_events
from ivr.flow.state import CallState
from ivr.identifiers import normalize_phone
from ivr.speech import digits_fragments, phone_groups
from ivr.users.store import UserStore
from ivr.web.deps import AppContext, Context
from ivr.web.twilio import Form
from ivr.web.twilio_queue import base_url, prompt_url

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio/agent", tags=["twilio"])

MAX_PIN_TRIES = 3
PIN_TIMEOUT_S = 10


def _users(ctx: AppContext) -> UserStore:
    return UserStore(ctx.services.calls.engine)


def _xml(response: VoiceResponse) -> Response:
    return Response(str(response), media_type="application/xml")


def _goodbye(response: VoiceResponse, base: str, *prompts: str) -> Response:
    for prompt in prompts:
        response.play(prompt_url(base, prompt))
    response.hangup()
    return _xml(response)


def _ask_pin(response: VoiceResponse, base: str, tries: int) -> Response:
    gather = response.gather(
        input="dtmf",
        action=f"{base}/twilio/agent/pin?tries={tries}",
        method="POST",
        finish_on_key="#",
        num_digits=9,
        timeout=PIN_TIMEOUT_S,
        action_on_empty_result=True,
    )
    gather.play(prompt_url(base, "agent_line.pin"))
    return _goodbye(response, base, "agent_line.goodbye")


@router.post("")
def agent_line(form: Form, ctx: Context, request: Request) -> Response:
    base = base_url(ctx, request)
    agent = _users(ctx).agent_by_phone(form.get("From"))
    if agent is None:
        log.warning("agents' line: %s is no active agent's number", form.get("From"))
        return _goodbye(VoiceResponse(), base, "agent_line.refused")
    return _ask_pin(VoiceResponse(), base, 0)


@router.post("/pin")
def pin(form: Form, ctx: Context, request: Request, tries: int = 0) -> Response:
    base = base_url(ctx, request)
    users = _users(ctx)
    agent = users.agent_by_phone(form.get("From"))
    if agent is None:  # disabled since the call began
        return _goodbye(VoiceResponse(), base, "agent_line.refused")
    response = VoiceResponse()
    if not users.pin_matches(agent, form.get("Digits", "")):
        tries += 1
        log.warning("agents' line: wrong PIN for %s (%d of %d)", agent.name, tries, MAX_PIN_TRIES)
        response.play(prompt_url(base, "agent_line.wrong_pin"))
        if tries >= MAX_PIN_TRIES:
            return _goodbye(response, base, "agent_line.goodbye")
        return _ask_pin(response, base, tries)
    log.info("agents' line: %s takes the next caller", agent.name)
    response.play(prompt_url(base, "agent_line.connecting"))
    dial = Dial()
    # The agent rides in the whisper URL (signed by Twilio like the rest): whose desk pops up.
    whisper_url = f"{base}/twilio/agent/whisper?agent={agent.id}"
    dial.queue(ctx.settings.agent_queue, url=whisper_url, method="POST")
    response.append(dial)
    return _goodbye(response, base, "agent_line.goodbye")


@router.post("/whisper")
def whisper(form: Form, ctx: Context, request: Request, agent: int | None = None) -> Response:
    """Played to the agent before the bridge: the waiting caller's number, in written groups.

    Twilio posts the dequeued caller's CallSid; the number comes from that call's record (the
    one the IVR answered), else from the request's own From. This is the moment the call
    connects to ``agent``: their desk gets the screen pop (``ivr.desk_events``).
    """
    base = base_url(ctx, request)
    call_sid = form.get("CallSid", "")
    number = _caller_number(ctx, call_sid) or normalize_phone(form.get("From"))
    if agent is not None and call_sid:
        _pop(ctx, agent, call_sid, number or form.get("From"))
    response = VoiceResponse()
    if number is None:
        response.play(prompt_url(base, "agent_line.whisper_unknown"))
        return _xml(response)
    response.play(prompt_url(base, "agent_line.whisper"))
    for fragment in digits_fragments(number, phone_groups(number)):
        response.play(prompt_url(base, fragment))
    return _xml(response)


def _caller_number(ctx: AppContext, call_sid: str) -> str | None:
    try:
        found = ctx.services.calls.load_state(call_sid)
    except Exception:
        log.exception("whisper: could not read call %s", call_sid)
        return None
    if found is None:
        return None
    state = CallState.from_json(found[1])
    return state.caller_number or normalize_phone(state.caller_id)


def _pop(ctx: AppContext, agent_id: int, call_sid: str, caller: str | None) -> None:
    """The screen pop for the agent; a failure costs the pop, never the call."""
    try:
        desk_events(ctx.services.calls.engine).push(agent_id, "twilio", call_sid, caller)
    except Exception:
        log.exception("whisper: could not push the screen pop of %s to user %s", call_sid, agent_id)
