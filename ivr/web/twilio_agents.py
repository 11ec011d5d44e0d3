"""The agents' own Twilio number: an agent calls it, types the PIN and takes the next caller.

``POST /twilio/agent`` is that number's voice webhook. The calling number must be an active
agent's (``ivr users add … --phone``), else a polite refusal; then the PIN (``ivr users pin``),
three tries per call; then ``<Dial><Queue url=…>`` takes the caller who has waited longest, and
the whisper URL tells the agent, before the bridge, whose call it is (the number digit by digit).
The try count rides in the action URL's query, which Twilio signs, so a caller cannot reset it.

The line also tells the callback dispatcher which agents are free on Twilio (``agent_line``):
after the PIN the agent waits in ``<Dial><Queue>`` (idle); the whisper URL says a caller was
dequeued to them (talking); the ``<Dial action>`` (``/twilio/agent/next``) comes when that
call ends, or after the Dial's 600 s without a caller, and dials the queue again (idle); the
agents' number's status callback (``/twilio/agent/status``) says their own call ended.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from twilio.twiml.voice_response import Dial, VoiceResponse

from ivr.callbacks.agent_line import AgentLine
from ivr.callbacks.twilio import twilio_outcome
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
DIAL_TIMEOUT_S = 600
"""Twilio's longest <Dial>: an agent waiting that long for a caller is dialled in again."""


def _users(ctx: AppContext) -> UserStore:
    return UserStore(ctx.services.calls.engine)


def _line(ctx: AppContext) -> AgentLine:
    return AgentLine(ctx.services.calls.engine)


def _dial_queue(response: VoiceResponse, ctx: AppContext, base: str) -> Response:
    """Wait for the next caller; the Dial's action comes back when that call ends."""
    dial = Dial(action=f"{base}/twilio/agent/next", method="POST", timeout=DIAL_TIMEOUT_S)
    dial.queue(ctx.settings.agent_queue, url=f"{base}/twilio/agent/whisper", method="POST")
    response.append(dial)
    return _goodbye(response, base, "agent_line.goodbye")


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
    _line(ctx).idle(form.get("CallSid", ""), agent.name)
    response.play(prompt_url(base, "agent_line.connecting"))
    return _dial_queue(response, ctx, base)


@router.post("/next")
def next_caller(form: Form, ctx: Context, request: Request) -> Response:
    """The ``<Dial action>``: the agent's caller hung up (or nobody came for 600 s); the agent
    waits for the next one. Their own call over, or no longer an agent: off the line."""
    base = base_url(ctx, request)
    call_sid = form.get("CallSid", "")
    line = _line(ctx)
    agent = _users(ctx).agent_by_phone(form.get("From"))
    if agent is None or twilio_outcome(form.get("CallStatus", "")) is not None:
        line.gone([call_sid])
        return _goodbye(VoiceResponse(), base, "agent_line.goodbye")
    line.idle(call_sid, agent.name)
    return _dial_queue(VoiceResponse(), ctx, base)


@router.post("/status")
def agent_call_status(form: Form, ctx: Context) -> Response:
    """The agents' number's status callback: a final CallStatus takes the agent off the line."""
    if twilio_outcome(form.get("CallStatus", "")) is not None:
        _line(ctx).gone([form.get("CallSid", "")])
    return Response(status_code=204)


@router.post("/whisper")
def whisper(form: Form, ctx: Context, request: Request) -> Response:
    """Played to the agent before the bridge: the waiting caller's number, in written groups.

    Twilio posts the dequeued caller's CallSid; the number comes from that call's record (the
    one the IVR answered), else from the request's own From.
    """
    base = base_url(ctx, request)
    dequeuing = form.get("DequeingCallSid", "")
    if dequeuing and not _line(ctx).talking(dequeuing, form.get("CallSid")):
        log.warning("whisper: agent's call %s is not on the line", dequeuing)
    number = _caller_number(ctx, form.get("CallSid", "")) or normalize_phone(form.get("From"))
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
