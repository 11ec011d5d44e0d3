"""Answers given again from memory (``ivr.web.twilio._prompts_answer``): byte for byte what
rendering them gives, for every base and turn, and never for an answer that plays a caller's
own recording (its link is for that call only). Property-based."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.flow import actions as act
from ivr.telephony.twilio import render
from ivr.web import twilio

prompt_ids = st.sampled_from(["main-menu", "new-category", "digit-3", "followup-enter"])
recordings = st.builds(act.Recorded, st.sampled_from(["/s/r/twilio-CA1-RE1.wav"]))
audio = st.one_of(prompt_ids, recordings)
prompt_lists = st.lists(audio, max_size=6).map(tuple)
one_action = st.one_of(
    st.builds(act.Play, prompt_lists),
    st.builds(
        act.Gather,
        prompt_lists,
        st.integers(1, 12),
        st.sampled_from([None, "#"]),
        st.integers(1, 10),
        st.booleans(),
    ),
    st.builds(act.Record, st.integers(5, 120), st.sampled_from(["#", "*"]), st.booleans()),
    st.builds(act.Transfer, st.sampled_from(["124-agents"])),
    st.just(act.HangUp()),
)
answers = st.lists(one_action, min_size=1, max_size=4).map(tuple)
bases = st.sampled_from(["http://127.0.0.1:8080", "https://ivr.example.ir", "https://x.ir/ivr"])


@settings(max_examples=300, deadline=None)
@given(answers, bases, st.integers(1, 60))
def test_an_answer_given_again_is_the_one_rendering_gives(
    actions: tuple[act.Action, ...], base: str, turn: int
) -> None:
    recorded = "Recorded(" in repr(actions)  # told apart without the code under test's walk
    assert twilio._plays_recording(actions) is recorded
    if recorded:
        return
    rendered = render(actions, base, lambda a: twilio._prompt_url(a, base), turn)
    assert twilio._prompts_answer(actions, base, turn) == rendered
    assert twilio._prompts_answer(actions, base, turn) == rendered  # from memory now
    if any(isinstance(action, act.Gather | act.Record) for action in actions):
        assert f"?turn={turn}" in rendered
    # The same answer at another turn, or for another address, is its own.
    for other_base, other_turn in ((base, turn + 1), (f"{base}/node-b", turn)):
        assert twilio._prompts_answer(actions, other_base, other_turn) == render(
            actions, other_base, lambda a, b=other_base: twilio._prompt_url(a, b), other_turn
        )
