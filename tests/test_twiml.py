"""The fast TwiML builder writes exactly what the twilio library's ``VoiceResponse`` writes:
for every verb and attribute we use or will use, for any text, and through ``render`` for
every action shape (checked against the same ``render`` built on the library)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.twiml import voice_response as library

from ivr.flow import actions as act
from ivr.telephony import twiml
from ivr.telephony.twilio import render

Builder = Callable[[Any, str, str], None]
SHAPES: dict[str, Builder] = {
    "play": lambda r, text, _a: r.play(text),
    "play loop": lambda r, text, _a: r.play(text, loop=2),
    "say": lambda r, text, a: r.say(text, language=a, voice="alice"),
    "pause": lambda r, _t, _a: r.pause(length=2),
    "gather": lambda r, text, a: r.gather(
        input="dtmf",
        action=a,
        method="POST",
        num_digits=1,
        finish_on_key="",
        timeout=5,
        action_on_empty_result=True,
    ).play(text),
    "gather say pause": lambda r, text, a: _nested(r.gather(action=a, finish_on_key="#"), text),
    "record": lambda r, _t, a: r.record(
        action=a,
        method="POST",
        max_length=120,
        finish_on_key="#",
        play_beep=False,
        timeout=5,
        trim="trim-silence",
    ),
    "redirect": lambda r, text, _a: r.redirect(text, method="POST"),
    "enqueue": lambda r, text, a: r.enqueue(text, wait_url=a, action=a, method="POST"),
    "enqueue plain": lambda r, text, _a: r.enqueue(text),
    "leave": lambda r, _t, _a: r.leave(),
    "dial queue": lambda r, text, a: r.dial(timeout=20).queue(text, url=a),
    "hangup": lambda r, _t, _a: r.hangup(),
}


def _nested(gather: Any, text: str) -> None:
    gather.say(text)
    gather.pause(length=1)
    gather.play(text)


def both(shape: Builder, text: str, attribute: str) -> tuple[str, str]:
    ours, theirs = twiml.VoiceResponse(), library.VoiceResponse()
    shape(ours, text, attribute)
    shape(theirs, text, attribute)
    return str(ours), str(theirs)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_verb_is_written_as_the_library_writes_it(name: str) -> None:
    ours, theirs = both(SHAPES[name], 'سلام & <"x">', "https://ivr.example.org/a?b=1&c='2'")
    assert ours == theirs


XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x0b\x0c\ufffe\uffff"
                  ).filter(lambda c: c >= " " or c in "\t\n\r"),
    max_size=40,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(SHAPES)), XML_TEXT, XML_TEXT)
def test_any_text_is_escaped_as_the_library_escapes_it(name: str, text: str, attr: str) -> None:
    ours, theirs = both(SHAPES[name], text, attr)
    assert ours == theirs


def library_render(actions: tuple[act.Action, ...], base: str, turn: int | None) -> str:
    """``render`` as it was written on the twilio library (the reference)."""
    query = "" if turn is None else f"?turn={turn}"
    response = library.VoiceResponse()
    for action in actions:
        match action:
            case act.Play(prompts):
                for audio in prompts:
                    response.play(url_of(audio))
            case act.Gather():
                gather = response.gather(
                    input="dtmf", action=f"{base}/twilio/gather{query}", method="POST",
                    num_digits=action.max_digits, finish_on_key=action.finish_on_key or "",
                    timeout=action.timeout_s, action_on_empty_result=action.allow_empty,
                )  # fmt: skip
                for audio in action.prompts:
                    gather.play(url_of(audio))
                response.redirect(f"{base}/twilio/timeout{query}", method="POST")
            case act.Record():
                response.record(
                    action=f"{base}/twilio/recorded{query}", method="POST",
                    max_length=action.max_s, finish_on_key=action.finish_on_key,
                    play_beep=action.beep, timeout=5, trim="trim-silence",
                )  # fmt: skip
                response.redirect(f"{base}/twilio/recorded{query}", method="POST")
            case act.Transfer(queue):
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


def url_of(audio: act.Audio) -> str:
    name = audio.path if isinstance(audio, act.Recorded) else str(audio)
    return f"https://ivr.example.org/a/{name}?x=1&y=2"


ACTIONS = [
    act.Play(("main.menu", act.Recorded("/r/t-1.wav"))),
    act.Gather(("main.menu",), 1, None, 5),
    act.Gather(("followup.enter",), 12, "#", 10, allow_empty=True),
    act.Gather((), 11, "#", 7, allow_empty=False),
    act.Record(120, "#"),
    act.Record(60, "*", beep=False),
    act.Transfer("124-agents"),
    act.HangUp(),
]


@pytest.mark.parametrize("turn", [None, 1, 17])
@pytest.mark.parametrize("index", range(len(ACTIONS)))
def test_render_writes_each_action_shape_as_the_library_did(index: int, turn: int | None) -> None:
    actions = (ACTIONS[index], ACTIONS[(index + 1) % len(ACTIONS)])
    base = "https://ivr.example.org/p"
    assert render(actions, base, url_of, turn) == library_render(actions, base, turn)
