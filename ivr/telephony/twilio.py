"""Twilio transport: flow actions as TwiML. Pure: the webhooks that call it are in ``ivr.web``."""

from __future__ import annotations

from collections.abc import Callable

from ivr.flow import actions as act
from ivr.telephony.twiml import VoiceResponse


def render(
    actions: tuple[act.Action, ...],
    base: str,
    url_of: Callable[[act.Audio], str],
    turn: int | None = None,
) -> str:
    """Flow actions as TwiML. Prompts before a gather are nested in it, so a key interrupts them.

    Webhook URLs are absolute under ``base`` (the public URL), so a proxy that serves the app
    under a path prefix keeps every later webhook under it too. ``turn``: the answer's number,
    carried by each webhook URL (Twilio signs it), so a retried or replayed request is known
    for what it is. Built with ``ivr.telephony.twiml``, the library's output at less cost.
    """
    query = "" if turn is None else f"?turn={turn}"
    response = VoiceResponse()
    for action in actions:
        match action:
            case act.Play(prompts):
                for audio in prompts:
                    response.play(url_of(audio))
            case act.Gather():
                gather = response.gather(
                    input="dtmf",
                    action=f"{base}/twilio/gather{query}",
                    method="POST",
                    num_digits=action.max_digits,
                    finish_on_key=action.finish_on_key or "",
                    timeout=action.timeout_s,
                    action_on_empty_result=action.allow_empty,
                )
                for audio in action.prompts:
                    gather.play(url_of(audio))
                response.redirect(f"{base}/twilio/timeout{query}", method="POST")
            case act.Record():
                response.record(
                    action=f"{base}/twilio/recorded{query}",
                    method="POST",
                    max_length=action.max_s,
                    finish_on_key=action.finish_on_key,
                    play_beep=action.beep,
                    timeout=5,
                    trim="trim-silence",
                )
                response.redirect(f"{base}/twilio/recorded{query}", method="POST")
            case act.Transfer(queue):
                # The wait URL speaks the position and offers the callback; the action URL hears
                # how the caller left the queue (ivr.web.twilio_queue).
                response.enqueue(
                    queue,
                    wait_url=f"{base}/twilio/queue/wait",
                    wait_url_method="POST",
                    action=f"{base}/twilio/queue/done",
                    method="POST",
                )
            case act.HangUp():
                response.hangup()
    return str(response)
