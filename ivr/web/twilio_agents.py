"""The agents' own Twilio number: an agent calls it, types the PIN and takes the next caller.

``POST /twilio/agent`` is that number's voice webhook. The calling number must be an active
agent's (``ivr users add … --phone``), else a polite refusal; then the PIN (``ivr users pin``),
three tries per call; then ``<Dial><Queue url=…>`` takes the caller who has waited longest, and
the connect URL (``<Queue url>``, played to the caller) tells the caller an agent answers and pops
the call up on that agent's desk.
The try count rides in the action URL's query, which Twilio signs, so a caller cannot reset it.

The line also tells the callback dispatcher which agents are free on Twilio (``agent_line``):
after the PIN the agent waits in ``<Dial><Queue>`` (idle); the connect URL says a caller was
dequeued to them (talking); the ``<Dial action>`` (``/twilio/agent/next``) comes when that
call ends, or after the Dial's 600 s without a caller, and dials the queue again (idle); the
agents' number's status callback (``/twilio/agent/status``) says their own call ended.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, Request, Response
from twilio.twiml.voice_response import Dial, VoiceResponse

from ivr.callbacks.agent_line import AgentLine
from ivr.callbacks.twilio import twilio_outcome
from ivr.desk_events import desk_events
from ivr.flow.state import CallState
from ivr.identifiers import normalize_phone
from ivr.tickets.db import row_id
from ivr.users.models import User
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


def _dial_queue(response: VoiceResponse, ctx: AppContext, base: str, agent: User) -> Response:
    """Wait for the next caller; the Dial's action comes back when that call ends. The agent
    rides in the connect URL (Twilio signs it with its query): whose desk pops up."""
    dial = Dial(action=f"{base}/twilio/agent/next", method="POST", timeout=DIAL_TIMEOUT_S)
    connect_url = f"{base}/twilio/agent/connect?agent={agent.id}"
    dial.queue(ctx.settings.agent_queue, url=connect_url, method="POST")
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
    return _dial_queue(response, ctx, base, agent)


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
    _record_talk(ctx, line.caller_of(call_sid), form.get("DialCallDuration"))
    line.idle(call_sid, agent.name)
    return _dial_queue(VoiceResponse(), ctx, base, agent)


def _record_talk(ctx: AppContext, caller_sid: str | None, duration: str | None) -> None:
    """The Dial's ``DialCallDuration`` is the conversation the agent just had: the caller's
    talk time in the call record (AMI's ``AgentComplete`` gives it on Asterisk)."""
    if not caller_sid or not (duration or "").strip().isdigit():
        return
    try:
        ctx.services.calls.update_queue(caller_sid, {"queue_talk_s": float(duration or 0)})
    except Exception:
        log.exception("agents' line: could not record the talk time of call %s", caller_sid)


@router.post("/status")
def agent_call_status(form: Form, ctx: Context) -> Response:
    """The agents' number's status callback: a final CallStatus takes the agent off the line."""
    if twilio_outcome(form.get("CallStatus", "")) is not None:
        _line(ctx).gone([form.get("CallSid", "")])
    return Response(status_code=204)


@router.post("/connect")
def connect(form: Form, ctx: Context, request: Request, agent: str = "") -> Response:
    """The ``<Queue url>``: Twilio runs it on the *waiting caller's* leg just before the bridge
    (its docs: "executed on the queued caller's end"), so it tells the caller an agent is
    answering. It is also the moment the call connects to ``agent``: their line is marked
    talking and their desk gets the screen pop with the caller's number and IVR path
    (``ivr.desk_events``) — the agent learns who calls from the desk, not by ear. An ``agent``
    that is no user's id loses the pop, never the bridge.
    """
    base = base_url(ctx, request)
    agent_id = row_id(agent)
    dequeuing = form.get("DequeingCallSid", "")
    call_sid = form.get("CallSid", "")
    line = _line(ctx)
    if dequeuing and not line.talking(dequeuing, call_sid):
        log.warning("connect: agent's call %s is not on the line", dequeuing)
    name = line.agent_of(dequeuing) if dequeuing else None
    if name and call_sid:
        with contextlib.suppress(Exception):  # the record's agent; never the call's failure
            ctx.services.calls.update_queue(call_sid, {"agent": name})
    if agent_id is not None and call_sid:
        number = _caller_number(ctx, call_sid) or normalize_phone(form.get("From"))
        _pop(ctx, agent_id, call_sid, number or form.get("From"))
    response = VoiceResponse()
    response.play(prompt_url(base, "agent_line.connected"))
    return _xml(response)


def _caller_number(ctx: AppContext, call_sid: str) -> str | None:
    try:
        found = ctx.services.calls.load_state(call_sid)
    except Exception:
        log.exception("connect: could not read call %s", call_sid)
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
        log.exception("connect: could not push the screen pop of %s to user %s", call_sid, agent_id)
