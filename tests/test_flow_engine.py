"""The call flow engine against the 124 menu contract.

Every event goes through ``flow_helpers.Call``, which checks the engine's invariants at each step
(purity, JSON round trip of the state, prompt ids in the catalogue, exactly one waiting action or
ticket operation per answer). The tests here play the caller and, when the engine asks for a
ticket operation, the ticket store.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from flow_helpers import (
    AVAILABLE,
    CATALOG_IDS,
    CLOSED,
    LANDLINE,
    MOBILE,
    NATIONAL_ID,
    OTHER_MOBILE,
    RECORDING,
    TRACKING,
    Call,
    call_at,
    check_create_ticket,
    check_transition,
    digit_fragments,
    prompts_of,
    ticket,
    walk_tree,
)

from ivr.flow import CallState, advance
from ivr.flow import menus as m
from ivr.flow.actions import (
    CreateTicket,
    Gather,
    HangUp,
    LookupTicket,
    Play,
    Record,
    Recorded,
    RequestCallback,
    Transfer,
)
from ivr.flow.events import (
    AgentsChecked,
    CallbackFiled,
    Digits,
    FollowupChecked,
    Hangup,
    QueueLeft,
    RecordingFailed,
    RecordingFinished,
    SystemFailed,
    TicketCreated,
    TicketLookedUp,
    Timeout,
)
from ivr.flow.outcomes import EventKind, StepOutcome
from ivr.identifiers import is_valid_callback_number
from ivr.tickets.models import Status
from ivr.tickets.tracking import is_valid_tracking, tracking_from_sequence

MENUS = m.menus_for("qom")
ENTERED = datetime(2024, 5, 15, 9, 12, 30, tzinfo=UTC)
NOWRUZ_OPENING = datetime(2026, 3, 25, 4, 30, tzinfo=UTC)
ROUTES = walk_tree()
"""The shortest way to each node of the tree, found by walking it (see flow_helpers)."""

AGENT_QUEUE = "124-agents"
TO_AGENT = (Play(("agent.transfer",)), Transfer(AGENT_QUEUE))
MENU_TIMEOUT_S = 5
DESCRIBE = (Play(("describe.instructions",)), Record(120, "#"))

TOWNS = {
    "1": "shokouhieh",
    "2": "alghadir",
    "3": "chap-va-nashr",
    "4": "salafchegan",
    "5": "mahmoudabad",
    "6": "doroudgaran",
    "7": "ict",
}
ZONES = {"1": "khorabad", "2": "dastjerd", "3": "siro", "4": "toghroud"}
CATEGORIES = {
    "1": "industry",
    "2": "mining",
    "3": "trade",
    "4": "consumer",
    "5": "permits",
    "6": "other",
}

CONTRACT_KEYS = {
    "main": "120*",
    "category": "123456*9",
    "place": "123456780*",
    "zone": "12340*",
    "describe.review": "123*",
    "callback.confirm_caller": "12*",
    "callback.confirm_entered": "12*",
    "summary": "12*",
    "registered": "10*",
    "followup.report": "10*",
    "no_agent": "12*",
    "recall.confirm_caller": "12*",
    "recall.confirm_entered": "12*",
}
"""The keys each menu takes, from the contract; every other key is invalid there."""

REPEAT_KEYS = {node: ("1", "*") if node == "registered" else ("*",) for node in CONTRACT_KEYS}
REPEAT_KEYS["followup.report"] = ("1",)
REPEAT_KEYS["no_agent"] = ()  # its * is the main menu

ENTRIES = {
    # node: (max digits, a wrong answer, the prompt that refuses it)
    "callback.enter": (11, "0912123456", "callback.invalid"),
    "recall.enter": (11, "0912123456", "callback.invalid"),
    "nid": (10, "7731689957", "nid.invalid"),
    "followup.enter": (10, "1000000420", "followup.invalid"),
    "followup.verify": (4, "123", "followup.mismatch"),
}

NOWRUZ_1403 = ("ord.1", "month.1", "num.1000-o", "num.400-o", "num.3")
"""2024-03-20 in Tehran, spoken as its Jalali date: 1 Farvardin 1403."""
ESFAND_29_1402 = ("num.20-o", "ord.9", "month.12")
DRAFT_FIELDS = ("category", "place", "recording_path", "callback", "pending_callback")


def kind(node: str) -> type:
    return type(MENUS[node])


INPUT_NODES = sorted(n for n in ROUTES if kind(n) in (m.Menu, m.Entry, m.Recorder))
MENU_NODES = sorted(n for n in ROUTES if kind(n) is m.Menu)
GOODBYE_NODES = frozenset(n for n in MENU_NODES if MENUS[n].gave_up is not None)
"""Menus whose third failure ends the call politely (no agent could take it either)."""
TO_AGENT_NODES = [n for n in INPUT_NODES if n not in GOODBYE_NODES]


def own_actions(call: Call) -> tuple:
    """What arriving at the call's node said and did, without the once-a-call greeting."""
    first, *rest = call.actions
    return (replace(first, prompts=tuple(p for p in first.prompts if p != "greeting")), *rest)


def said_with(actions: tuple, *prefix: str) -> tuple:
    """``actions`` with ``prefix`` said first (a retry prompt before the node's own prompts)."""
    first, *rest = actions
    return (replace(first, prompts=(*prefix, *first.prompts)), *rest)


def contains_run(said: tuple, run: tuple) -> bool:
    return any(said[i : i + len(run)] == run for i in range(len(said) - len(run) + 1))


def to_describe(call: Call, category_key: str, place_keys: tuple[str, ...] = ()) -> None:
    call.run(["1", category_key, *place_keys])
    assert call.node == "describe"


def finish_request(
    call: Call,
    *,
    recording: str = RECORDING,
    callback: str | None = None,
    national_id: str = "",
) -> CreateTicket:
    """From the describe node to CreateTicket: record, confirm, callback, national ID, register.

    ``callback`` None confirms the caller ID; otherwise that number is keyed in and confirmed.
    """
    call.record(recording)
    call.press("2")
    if callback is None:
        assert call.node == "callback.confirm_caller"
        call.press("1")
    else:
        if call.node == "callback.confirm_caller":
            call.press("2")
        assert call.node == "callback.enter"
        call.press(callback)
        assert call.node == "callback.confirm_entered"
        call.press("1")
    assert call.node == "nid"
    call.press(national_id)
    assert call.node == "summary"
    result = call.press("1")
    assert call.node == "register"
    assert len(result.actions) == 1 and isinstance(result.actions[0], CreateTicket)
    return result.actions[0]


def fail(call: Call, how: str):
    """One failed try at the call's node: an invalid answer or silence."""
    node = call.node
    if how == "timeout":
        return call.timeout()
    if kind(node) is m.Recorder:
        return call.record(RECORDING, 1.5)
    if kind(node) is m.Entry:
        return call.press(ENTRIES[node][1])
    invalid = next(k for k in "0123456789*#" if k not in CONTRACT_KEYS[node])
    return call.press(invalid)


def gave_up_prompt(node: str, how: str) -> str:
    """What is said before the agent when the third failure in a row at ``node`` was ``how``."""
    if kind(node) is m.Recorder:
        return "retry.too_many_unrecorded"  # a short recording and silence: nothing recorded
    if how == "timeout":
        return "retry.too_many"
    if kind(node) is m.Entry:
        return "retry.too_many_mismatch" if node == "followup.verify" else "retry.too_many_entries"
    return "retry.too_many_invalid"


def retry_prompt(node: str, how: str) -> str:
    if kind(node) is m.Recorder:
        return "describe.too_short"
    if how == "timeout":
        return "retry.no_input"
    return ENTRIES[node][2] if kind(node) is m.Entry else "retry.invalid"


# --- the tree ---------------------------------------------------------------------------------


def test_walking_the_tree_reaches_every_node():
    # Branches are passed through; the goodbye takes three failures (tested on its own).
    assert set(ROUTES) | {"callback", "recall", "no_agent.goodbye"} == set(MENUS)
    assert kind("callback") is m.Branch  # a decision, never a place where the call waits


def test_every_menu_and_entry_is_covered_by_the_contract_tables():
    assert set(MENU_NODES) == set(CONTRACT_KEYS)
    assert {n for n in ROUTES if kind(n) is m.Entry} == set(ENTRIES)


@pytest.mark.parametrize("node", MENU_NODES)
def test_menus_gather_one_key_without_finish_key(node):
    call = call_at(node, ROUTES)
    (gather,) = call.actions
    assert isinstance(gather, Gather)
    assert (gather.max_digits, gather.finish_on_key, gather.timeout_s) == (1, None, MENU_TIMEOUT_S)


@pytest.mark.parametrize("node", sorted(ENTRIES))
def test_entries_gather_digits_ended_by_hash(node):
    call = call_at(node, ROUTES)
    (gather,) = call.actions
    assert isinstance(gather, Gather)
    assert gather.max_digits == ENTRIES[node][0] + 1  # room for the closing #
    assert (gather.finish_on_key, gather.timeout_s) == ("#", MENU_TIMEOUT_S)


@pytest.mark.parametrize("node", sorted(ENTRIES))
def test_only_the_optional_national_id_takes_hash_alone(node):
    (gather,) = call_at(node, ROUTES).actions
    assert gather.allow_empty is (node == "nid")


# --- main menu --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "caller_id", [MOBILE, LANDLINE, None, "", "anonymous", "1001", "+989121234567"]
)
def test_call_starts_with_the_greeting_and_the_main_menu(caller_id):
    call = Call(caller_id)
    assert call.node == "main"
    assert call.actions == (Gather(("greeting", "main.menu"), 1, None, MENU_TIMEOUT_S),)
    assert call.last.outcome is StepOutcome.STARTED


@pytest.mark.parametrize(
    ("key", "node", "actions"),
    [
        ("1", "category", (Gather(("category.menu",), 1, None, MENU_TIMEOUT_S),)),
        ("2", "followup.enter", (Gather(("followup.enter",), 10 + 1, "#", MENU_TIMEOUT_S),)),
        ("0", "agent", TO_AGENT),
        ("*", "main", (Gather(("main.menu",), 1, None, MENU_TIMEOUT_S),)),
        ("۱", "category", (Gather(("category.menu",), 1, None, MENU_TIMEOUT_S),)),
        ("۲", "followup.enter", (Gather(("followup.enter",), 10 + 1, "#", MENU_TIMEOUT_S),)),
        ("۰", "agent", TO_AGENT),
    ],
    ids=["1-new", "2-followup", "0-agent", "star-repeat", "persian-1", "persian-2", "persian-0"],
)
def test_main_menu_keys(key, node, actions):
    call = Call()
    call.press(key)
    assert call.node == node
    assert call.actions == actions


# --- categories -------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "code"), sorted(CATEGORIES.items()))
def test_category_keys(key, code):
    call = Call()
    call.run(["1", key])
    assert call.state.category == code
    if code == "industry":
        assert call.node == "place"
        assert call.said[0] == "place.intro"
    else:
        assert call.node == "describe"
        assert call.actions == DESCRIBE


def test_category_nine_goes_back_to_the_main_menu():
    call = Call()
    call.run(["1", "9"])
    assert call.node == "main"
    assert call.actions == (Gather(("main.menu",), 1, None, MENU_TIMEOUT_S),)


def test_category_nine_clears_the_draft_and_a_new_request_carries_only_new_answers():
    call = Call()
    to_describe(call, "1", ("8", "4"))
    call.record("/rec/first.wav")
    call.run(["2", "2", OTHER_MOBILE, "1", NATIONAL_ID])
    assert call.node == "summary"
    call.run(["2", "9"])  # start again, then back to the main menu
    assert call.node == "main"
    for name in (*DRAFT_FIELDS, "national_id"):
        assert getattr(call.state, name) is None, name
    to_describe(call, "5")
    created = finish_request(call, recording="/rec/second.wav")
    assert created == CreateTicket(
        channel="twilio",
        province="qom",
        category="permits",
        place=None,
        recording_path="/rec/second.wav",
        caller_number=MOBILE,
        callback_number=MOBILE,
        national_id=None,
    )
    assert len(call.created()) == 1


# --- places -----------------------------------------------------------------------------------


def test_place_menu_names_each_town_with_its_key_then_zones_then_none():
    call = Call()
    call.run(["1", "1"])
    towns = [x for key, pid in TOWNS.items() for x in (f"place.qom.{pid}", f"key.{key}")]
    assert call.said == ("place.intro", *towns, "place.zones", "key.8", "place.none", "key.0")


def test_zone_menu_names_each_zone_with_its_key_then_none():
    call = Call()
    call.run(["1", "1", "8"])
    zones = [x for key, pid in ZONES.items() for x in (f"place.qom.{pid}", f"key.{key}")]
    assert call.node == "zone"
    assert call.said == ("zone.intro", *zones, "place.none", "key.0")


def test_every_place_of_the_catalogue_is_offered():
    offered = set(TOWNS.values()) | set(ZONES.values())
    in_catalog = {p.removeprefix("place.qom.") for p in CATALOG_IDS if p.startswith("place.qom.")}
    assert offered == in_catalog


PLACE_CHOICES = [
    *((f"town-{key}", (key,), pid) for key, pid in TOWNS.items()),
    *((f"zone-{key}", ("8", key), pid) for key, pid in ZONES.items()),
    ("zone-none", ("8", "0"), None),
    ("none", ("0",), None),
]


@pytest.mark.parametrize(
    ("keys", "place"), [c[1:] for c in PLACE_CHOICES], ids=[c[0] for c in PLACE_CHOICES]
)
def test_place_keys_lead_to_describe_and_onto_the_ticket(keys, place):
    call = Call()
    to_describe(call, "1", keys)
    assert call.actions == DESCRIBE
    assert call.state.place == place
    created = finish_request(call)
    assert (created.category, created.place) == ("industry", place)


# --- repeating --------------------------------------------------------------------------------


@pytest.mark.parametrize(("node", "key"), [(n, k) for n in MENU_NODES for k in REPEAT_KEYS[n]])
def test_repeat_key_says_the_menu_again(node, key):
    call = call_at(node, ROUTES)
    expected = own_actions(call)
    before = call.state
    call.press(key)
    assert call.node == node
    assert call.actions == expected
    assert replace(call.state, failures=0) == replace(before, failures=0)


def test_star_in_the_followup_report_goes_to_the_main_menu():
    call = call_at("followup.report", ROUTES)
    call.press("*")
    assert call.node == "main"
    assert call.actions == (Gather(("main.menu",), 1, None, MENU_TIMEOUT_S),)


# --- a whole new request ----------------------------------------------------------------------

REQUESTS = [
    *((f"{code}", key, (), None) for key, code in sorted(CATEGORIES.items()) if code != "industry"),
    ("industry-town", "1", ("6",), "doroudgaran"),
    ("industry-zone", "1", ("8", "3"), "siro"),
    ("industry-none", "1", ("0",), None),
]
CALLBACKS = [
    ("caller-id", MOBILE, None),
    ("entered", MOBILE, OTHER_MOBILE),
    ("anon", None, LANDLINE),
]
NATIONAL_IDS = [("no-nid", "", None), ("nid", NATIONAL_ID, NATIONAL_ID)]


@pytest.mark.parametrize(
    ("nid_keys", "nid"), [n[1:] for n in NATIONAL_IDS], ids=[n[0] for n in NATIONAL_IDS]
)
@pytest.mark.parametrize(
    ("caller_id", "entered"), [c[1:] for c in CALLBACKS], ids=[c[0] for c in CALLBACKS]
)
@pytest.mark.parametrize(
    ("category_key", "place_keys", "place"), [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS]
)
def test_full_new_request_creates_exactly_one_right_ticket(
    category_key, place_keys, place, caller_id, entered, nid_keys, nid
):
    call = Call(caller_id, channel="asterisk")
    to_describe(call, category_key, place_keys)
    created = finish_request(call, recording="/rec/x.wav", callback=entered, national_id=nid_keys)
    assert created == CreateTicket(
        channel="asterisk",
        province="qom",
        category=CATEGORIES[category_key],
        place=place,
        recording_path="/rec/x.wav",
        caller_number=caller_id,
        callback_number=entered or caller_id,
        national_id=nid,
    )
    check_create_ticket(created)
    call.send(TicketCreated(TRACKING))
    assert call.node == "registered"
    call.run(["1", "*", "1"])
    call.press("0")
    assert call.transferred()
    assert call.created() == [created]


def test_registered_reads_the_tracking_number_twice_in_groups_of_3_3_4():
    call = call_at("register", ROUTES)
    tracking = tracking_from_sequence(123_456)  # 1001234566
    call.send(TicketCreated(tracking))
    number = digit_fragments(tracking[:3], tracking[3:6], tracking[6:])
    assert number.count("pause") == 2
    assert call.actions == (
        Gather(
            ("registered.done", *number, "registered.repeat", *number, "registered.menu"),
            1,
            None,
            MENU_TIMEOUT_S,
        ),
    )
    assert call.last.outcome is StepOutcome.CREATED


def test_registered_one_says_the_tracking_number_again_and_zero_transfers():
    call = call_at("register", ROUTES)
    call.send(TicketCreated(TRACKING))
    first = call.actions
    call.press("1")
    assert call.actions == first
    call.press("1")
    assert call.actions == first
    call.press("0")
    assert call.actions == TO_AGENT
    assert len(call.created()) == 1


def test_registered_without_a_tracking_number_says_it_will_be_sent_later():
    call = call_at("register", ROUTES)
    call.send(TicketCreated(None))
    assert call.said == ("registered.pending", "registered.menu")
    call.press("1")
    assert call.said == ("registered.pending", "registered.menu")


@pytest.mark.parametrize(
    "event",
    [
        Timeout(),
        Digits("1"),
        Digits(""),
        RecordingFinished(RECORDING, 10.0),
        TicketLookedUp(ticket()),
    ],
    ids=["timeout", "key", "empty", "recording", "lookup-result"],
)
def test_waiting_for_the_ticket_store_ignores_stray_events_and_never_asks_twice(event):
    call = call_at("register", ROUTES)
    call.send(event)
    assert call.actions == ()
    assert call.last.outcome is StepOutcome.IGNORED
    assert call.node == "register"
    call.send(TicketCreated(TRACKING))
    assert call.node == "registered"
    assert len(call.created()) == 1


@pytest.mark.parametrize(
    "event",
    [TicketCreated(TRACKING), TicketLookedUp(ticket()), RecordingFinished(RECORDING, 30.0)],
    ids=["ticket-created", "ticket-looked-up", "recording"],
)
@pytest.mark.parametrize("node", ["main", "category", "summary", "nid", "followup.enter"])
def test_an_event_that_does_not_belong_to_a_menu_says_the_menu_again(node, event):
    call = call_at(node, ROUTES)
    expected = own_actions(call)
    call.send(event)
    assert call.node == node
    assert call.actions == expected
    assert not call.created() and not call.lookups()


# --- recording the description ----------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        RecordingFinished(RECORDING, 1.5),
        RecordingFinished(RECORDING, 0.0),
        RecordingFinished(RECORDING, 1.99),
        RecordingFinished(None, 30.0),
        RecordingFinished("", 30.0),
        Timeout(),
        Digits("#"),
    ],
    ids=["1.5s", "0s", "1.99s", "no-path", "empty-path", "timeout", "hash"],
)
def test_an_empty_recording_is_asked_for_again(event):
    call = call_at("describe", ROUTES)
    call.send(event)
    assert call.node == "describe"
    assert call.actions == (
        Play(("describe.too_short", "describe.instructions")),
        Record(120, "#"),
    )


def test_a_two_second_recording_is_enough():
    call = call_at("describe", ROUTES)
    call.record(RECORDING, 2.0)
    assert call.node == "describe.review"
    assert call.actions == (Gather(("describe.review",), 1, None, MENU_TIMEOUT_S),)


def test_three_empty_recordings_transfer_to_an_agent():
    call = call_at("describe", ROUTES)
    call.record(RECORDING, 1.5)
    call.record(None, 0.0)
    call.timeout()
    assert call.node == "agent"
    assert prompts_of(call.actions) == ("retry.too_many_unrecorded", "agent.transfer")
    assert call.actions[-1] == Transfer(AGENT_QUEUE)
    assert call.last.outcome is StepOutcome.TRANSFER_AFTER_FAILURES


def test_review_one_plays_the_recording_then_the_review_menu():
    call = call_at("describe", ROUTES)
    call.record("/rec/mine.wav", 40.0)
    call.press("1")
    assert call.node == "describe.review"
    assert call.actions == (
        Gather((Recorded("/rec/mine.wav"), "describe.review"), 1, None, MENU_TIMEOUT_S),
    )
    call.press("1")
    assert call.said == (Recorded("/rec/mine.wav"), "describe.review")


def test_review_three_records_again_and_the_new_recording_is_kept():
    call = Call()
    to_describe(call, "3")
    call.record("/rec/first.wav")
    call.press("3")
    assert call.node == "describe"
    assert call.actions == DESCRIBE
    created = finish_request(call, recording="/rec/second.wav")
    assert created.recording_path == "/rec/second.wav"


# --- callback number --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller_id", "groups"),
    [
        (MOBILE, ("0912", "123", "4567")),
        ("+989121234567", ("0912", "123", "4567")),
        ("00989121234567", ("0912", "123", "4567")),
        ("۰۹۱۲۱۲۳۴۵۶۷", ("0912", "123", "4567")),
        (OTHER_MOBILE, ("0935", "111", "2233")),
        (LANDLINE, ("025", "3712", "3456")),
    ],
    ids=["mobile", "plus98", "0098", "persian", "other-mobile", "landline"],
)
def test_a_valid_caller_id_is_read_back_digit_by_digit(caller_id, groups):
    call = Call(caller_id)
    to_describe(call, "2")
    call.record()
    call.press("2")
    assert call.node == "callback.confirm_caller"
    assert call.actions == (
        Gather(
            ("callback.your_number", *digit_fragments(*groups), "callback.confirm_menu"),
            1,
            None,
            MENU_TIMEOUT_S,
        ),
    )
    call.press("1")
    assert call.node == "nid"
    assert call.state.callback == "".join(groups)


def test_confirmed_caller_id_is_the_callback_and_the_raw_caller_id_is_kept():
    call = Call("+989121234567")
    to_describe(call, "4")
    created = finish_request(call)
    assert created.caller_number == "+989121234567"
    assert created.callback_number == MOBILE


def test_caller_id_two_asks_for_another_number():
    call = call_at("callback.confirm_caller", ROUTES)
    call.press("2")
    assert call.node == "callback.enter"
    assert call.actions == (Gather(("callback.enter",), 11 + 1, "#", MENU_TIMEOUT_S),)


@pytest.mark.parametrize("caller_id", ["1001", "", None, "anonymous", "+14155550100", "12345"])
def test_an_unusable_caller_id_goes_straight_to_number_entry(caller_id):
    call = Call(caller_id)
    to_describe(call, "6")
    call.record()
    call.press("2")
    assert call.node == "callback.enter"
    assert call.actions == (Gather(("callback.enter",), 11 + 1, "#", MENU_TIMEOUT_S),)
    created = finish_request_from_entry(call, OTHER_MOBILE)
    assert created.caller_number == caller_id
    assert created.callback_number == OTHER_MOBILE


def finish_request_from_entry(call: Call, number: str) -> CreateTicket:
    call.run([number, "1", ""])
    assert call.node == "summary"
    (created,) = call.press("1").actions
    return created


@pytest.mark.parametrize(
    "number",
    [
        "0912123456",  # 10 digits
        "091212345678",  # 12 digits
        "19121234567",  # 11 digits, no leading 0
        "00121234567",  # not an Iranian number
        "0912123456*",
        "1",
    ],
)
def test_an_invalid_callback_number_is_refused(number):
    call = call_at("callback.enter", ROUTES)
    call.press(number)
    assert call.node == "callback.enter"
    assert call.actions == (
        Gather(("callback.invalid", "callback.enter"), 11 + 1, "#", MENU_TIMEOUT_S),
    )
    assert call.state.pending_callback is None


def test_hash_alone_at_callback_entry_counts_as_no_input():
    call = call_at("callback.enter", ROUTES)
    call.press("")
    assert call.node == "callback.enter"
    assert call.said == ("retry.no_input", "callback.enter")


@pytest.mark.parametrize(
    ("keys", "number", "groups"),
    [
        (OTHER_MOBILE, OTHER_MOBILE, ("0935", "111", "2233")),
        ("۰۹۱۲۱۲۳۴۵۶۷", MOBILE, ("0912", "123", "4567")),
        (LANDLINE, LANDLINE, ("025", "3712", "3456")),
        (OTHER_MOBILE + "#", OTHER_MOBILE, ("0935", "111", "2233")),
    ],
    ids=["mobile", "persian-digits", "landline", "with-hash"],
)
def test_an_entered_number_is_read_back_and_confirmed(keys, number, groups):
    call = call_at("callback.enter", ROUTES)
    call.press(keys)
    assert call.node == "callback.confirm_entered"
    assert call.actions == (
        Gather(
            ("callback.entered", *digit_fragments(*groups), "callback.confirm_menu"),
            1,
            None,
            MENU_TIMEOUT_S,
        ),
    )
    call.press("1")
    assert call.node == "nid"
    assert call.state.callback == number


def test_an_entered_number_can_be_entered_again():
    call = Call()
    to_describe(call, "2")
    call.record()
    call.run(["2", "2", LANDLINE])
    call.press("2")
    assert call.node == "callback.enter"
    assert call.actions == (Gather(("callback.enter",), 11 + 1, "#", MENU_TIMEOUT_S),)
    call.press(OTHER_MOBILE)
    assert call.said[1:-1] == digit_fragments("0935", "111", "2233")
    call.run(["1", ""])
    (created,) = call.press("1").actions
    assert created.callback_number == OTHER_MOBILE


# --- national ID ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "kept"),
    [
        ("", None),
        ("#", None),
        (NATIONAL_ID, NATIONAL_ID),
        (NATIONAL_ID + "#", NATIONAL_ID),
        ("۷۷۳۱۶۸۹۹۵۶", NATIONAL_ID),
        ("0084575948", "0084575948"),
    ],
    ids=["skip", "skip-hash", "valid", "valid-hash", "persian", "leading-zero"],
)
def test_national_id_skipped_or_valid_goes_to_the_summary(keys, kept):
    call = call_at("nid", ROUTES)
    call.press(keys)
    assert call.node == "summary"
    (created,) = call.press("1").actions
    assert created.national_id == kept


@pytest.mark.parametrize(
    "keys",
    ["7731689957", "7731689950", "773168995", "77316899561", "1111111111", "۷۷۳۱۶۸۹۹۵۷"],
    ids=["check+1", "check-0", "9-digits", "11-digits", "repeated", "persian-wrong"],
)
def test_an_invalid_national_id_is_refused(keys):
    call = call_at("nid", ROUTES)
    call.press(keys)
    assert call.node == "nid"
    assert call.said == ("nid.invalid", "nid.enter")
    assert call.state.national_id is None


# --- summary ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category_key", "place_keys", "read"),
    [
        ("1", ("3",), ("category.industry", "place.qom.chap-va-nashr")),
        ("1", ("8", "1"), ("category.industry", "place.qom.khorabad")),
        ("1", ("0",), ("category.industry",)),
        ("3", (), ("category.trade",)),
        ("4", (), ("category.consumer",)),
    ],
    ids=["town", "zone", "no-place", "trade", "consumer"],
)
def test_summary_reads_back_category_and_place(category_key, place_keys, read):
    call = Call()
    to_describe(call, category_key, place_keys)
    call.record()
    call.run(["2", "1", ""])
    assert call.node == "summary"
    assert call.actions == (
        Gather(("summary.intro", *read, "summary.menu"), 1, None, MENU_TIMEOUT_S),
    )


def test_summary_two_starts_again_with_the_draft_cleared():
    call = Call()
    to_describe(call, "1", ("8", "2"))
    call.record("/rec/first.wav")
    call.run(["2", "2", LANDLINE, "1", NATIONAL_ID])
    call.press("2")
    assert call.node == "category"
    assert call.actions == (Gather(("category.menu",), 1, None, MENU_TIMEOUT_S),)
    for name in (*DRAFT_FIELDS, "national_id"):
        assert getattr(call.state, name) is None, name
    call.press("3")
    call.record("/rec/second.wav")
    call.run(["2", "1", ""])
    assert call.said == ("summary.intro", "category.trade", "summary.menu")
    (created,) = call.press("1").actions
    assert created == CreateTicket(
        channel="twilio",
        province="qom",
        category="trade",
        place=None,
        recording_path="/rec/second.wav",
        caller_number=MOBILE,
        callback_number=MOBILE,
        national_id=None,
    )
    assert len(call.created()) == 1


# --- follow-up --------------------------------------------------------------------------------


def single_digit_errors(number: str) -> list[str]:
    return [
        number[:i] + d + number[i + 1 :]
        for i in range(len(number))
        for d in "0123456789"
        if d != number[i]
    ]


@pytest.mark.parametrize("wrong", single_digit_errors(TRACKING))
def test_a_tracking_number_with_one_wrong_digit_is_refused_without_a_lookup(wrong):
    call = call_at("followup.enter", ROUTES)
    call.press(wrong)
    assert call.node == "followup.enter"
    assert call.actions == (
        Gather(("followup.invalid", "followup.enter"), 10 + 1, "#", MENU_TIMEOUT_S),
    )
    assert call.lookups() == []


@pytest.mark.parametrize(
    "wrong",
    [
        TRACKING[:i] + TRACKING[i + 1] + TRACKING[i] + TRACKING[i + 2 :]
        for i in range(len(TRACKING) - 1)
        if TRACKING[i] != TRACKING[i + 1]
    ]
    + ["1", "12345678901", "", "*"],
)
def test_swapped_digits_and_malformed_tracking_numbers_are_refused_without_a_lookup(wrong):
    call = call_at("followup.enter", ROUTES)
    call.press(wrong)
    assert call.node == "followup.enter"
    assert call.said[0] in ("followup.invalid", "retry.no_input")
    assert call.lookups() == []


@pytest.mark.parametrize(
    ("keys", "tracking"),
    [
        (TRACKING, TRACKING),
        (TRACKING + "#", TRACKING),
        (TRACKING.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")), TRACKING),
        (tracking_from_sequence(0), tracking_from_sequence(0)),
        (tracking_from_sequence(899_999_999), tracking_from_sequence(899_999_999)),
    ],
    ids=["plain", "hash", "persian", "first", "last"],
)
def test_a_valid_tracking_number_is_looked_up(keys, tracking):
    call = call_at("followup.enter", ROUTES)
    call.press(keys)
    assert call.node == "followup.lookup"
    assert call.actions == (LookupTicket(tracking),)
    assert is_valid_tracking(tracking)


@pytest.mark.parametrize("caller_id", [MOBILE, "+989121234567", "۰۹۱۲۱۲۳۴۵۶۷"])
def test_calling_from_the_tickets_callback_number_hears_the_report_at_once(caller_id):
    call = Call(caller_id)
    call.run(["2", TRACKING])
    call.send(TicketLookedUp(ticket(callback=MOBILE, status="registered")))
    assert call.node == "followup.report"
    assert "status.registered" in call.said
    assert call.said[-1] == "followup.menu"


BEFORE_VERIFICATION = {
    "followup.verify",
    "followup.mismatch",
    "retry.no_input",
    "retry.too_many",
    "retry.too_many_mismatch",
    "agent.transfer",
}
"""All a caller may hear between the lookup and proving who they are: nothing about a ticket."""


def says_nothing_about_a_ticket(said) -> bool:
    return set(said) <= BEFORE_VERIFICATION


@pytest.mark.parametrize(
    ("caller_id", "callback"),
    [
        (OTHER_MOBILE, MOBILE),
        (None, MOBILE),
        ("anonymous", MOBILE),
        (LANDLINE, MOBILE),
        ("1001", MOBILE),
    ],
    ids=["other-mobile", "no-caller-id", "anonymous", "landline", "extension"],
)
def test_another_caller_must_give_the_last_four_digits_first(caller_id, callback):
    call = Call(caller_id)
    call.run(["2", TRACKING])
    call.send(TicketLookedUp(ticket(callback=callback)))
    assert call.node == "followup.verify"
    assert call.actions == (Gather(("followup.verify",), 4 + 1, "#", MENU_TIMEOUT_S),)
    assert says_nothing_about_a_ticket(call.said)
    call.press(callback[-4:])
    assert call.node == "followup.report"
    assert "category.trade" in call.said


@pytest.mark.parametrize("digits", ["2234", "0000", "4567", "3322", "۲۲۳۴"])
def test_wrong_last_four_digits_are_refused(digits):
    call = call_at("followup.verify", ROUTES)  # ticket's callback is OTHER_MOBILE (…2233)
    call.press(digits)
    assert call.node == "followup.verify"
    assert call.actions == (
        Gather(("followup.mismatch", "followup.verify"), 4 + 1, "#", MENU_TIMEOUT_S),
    )


def test_right_last_four_in_persian_digits_are_accepted():
    call = call_at("followup.verify", ROUTES)
    call.press("۲۲۳۳")
    assert call.node == "followup.report"


def test_three_wrong_last_four_transfer_to_an_agent_without_saying_anything():
    call = call_at("followup.verify", ROUTES)
    call.run(["0000", "1111"])
    call.press("9999")
    assert call.actions == (
        Play(("retry.too_many_mismatch", "agent.transfer")),
        Transfer(AGENT_QUEUE),
    )


def _lookup(caller_id: str | None, found) -> Call:
    call = Call(caller_id)
    call.run(["2", TRACKING])
    call.send(TicketLookedUp(found))
    return call


@pytest.mark.parametrize("caller_id", [MOBILE, None, LANDLINE])
def test_not_found_sounds_exactly_like_a_ticket_of_someone_else(caller_id):
    missing = _lookup(caller_id, None)
    other = _lookup(caller_id, ticket(callback=OTHER_MOBILE))
    assert missing.actions == other.actions
    assert missing.node == other.node == "followup.verify"
    assert missing.last.outcome == other.last.outcome


@pytest.mark.parametrize(
    ("missing_inputs", "wrong_inputs"),
    [
        (["2233"], ["0000"]),  # 2233 would be right if the ticket existed
        (["0000"], ["0000"]),
        (["1234", "2233"], ["1234", "5678"]),
        (["0000", "1111", "2233"], ["0000", "1111", "4444"]),
        ([Timeout(), "2233"], [Timeout(), "1234"]),
        (["", "12", "2233"], ["", "12", "9999"]),
        (["۲۲۳۳"], ["۰۰۰۰"]),
    ],
    ids=["once", "same-digits", "twice", "three-times", "timeout", "empty-short", "persian"],
)
def test_not_found_and_wrong_digits_answer_identically(missing_inputs, wrong_inputs):
    missing = _lookup(OTHER_MOBILE, None)
    found = _lookup(OTHER_MOBILE, ticket(callback=MOBILE))
    for a, b in zip(missing_inputs, wrong_inputs, strict=True):
        heard_missing = missing.run([a])
        heard_found = found.run([b])
        assert heard_missing.actions == heard_found.actions
        assert heard_missing.outcome == heard_found.outcome
        assert missing.node == found.node
        assert says_nothing_about_a_ticket(prompts_of(heard_missing.actions))


def test_report_reads_everything_in_order():
    call = Call(MOBILE)
    call.run(["2", TRACKING])
    call.send(
        TicketLookedUp(
            ticket(
                callback=MOBILE,
                category="consumer",
                status="referred",
                agency="tazirat",
                created_at=datetime(2024, 3, 19, 21, 0, tzinfo=UTC),
                due_at=datetime(2024, 4, 1, 8, 0, tzinfo=UTC),
            )
        )
    )
    farvardin_13_1403 = ("ord.13", *NOWRUZ_1403[1:])
    assert call.actions == (
        Gather(
            (
                "followup.registered_on",
                *NOWRUZ_1403,
                "followup.registered_on_end",
                "followup.category",
                "category.consumer",
                "followup.status",
                "status.referred",
                "followup.agency",
                "agency.tazirat",
                "followup.due",
                *farvardin_13_1403,
                "followup.menu",
            ),
            1,
            None,
            MENU_TIMEOUT_S,
        ),
    )


@pytest.mark.parametrize(
    ("created_at", "date"),
    [
        (datetime(2024, 3, 19, 21, 0, tzinfo=UTC), NOWRUZ_1403),  # 00:30 on 20 March in Tehran
        (datetime(2024, 3, 19, 21, 0), NOWRUZ_1403),  # naive means UTC, as the database stores
        (datetime(2024, 3, 19, 20, 29, tzinfo=UTC), ESFAND_29_1402),  # 23:59 on 19 March
        (datetime(2024, 3, 19, 20, 30, tzinfo=UTC), NOWRUZ_1403),  # midnight in Tehran
    ],
    ids=["after-midnight-tehran", "naive-utc", "before-midnight-tehran", "midnight"],
)
def test_report_says_the_jalali_date_in_tehran(created_at, date):
    call = _lookup(MOBILE, ticket(callback=MOBILE, created_at=created_at))
    assert contains_run(call.said, ("followup.registered_on", *date))


@pytest.mark.parametrize("status", [s.value for s in Status])
def test_report_says_every_status_and_no_agency_when_none(status):
    call = _lookup(MOBILE, ticket(callback=MOBILE, status=status, agency=None))
    assert f"status.{status}" in call.said
    assert "followup.agency" not in call.said
    assert not any(str(p).startswith("agency.") for p in call.said)


AGENCIES = sorted(p.removeprefix("agency.") for p in CATALOG_IDS if p.startswith("agency."))


@pytest.mark.parametrize("agency", AGENCIES)
def test_report_says_the_agency_when_referred(agency):
    call = _lookup(MOBILE, ticket(callback=MOBILE, status="referred", agency=agency))
    assert contains_run(call.said, ("status.referred", "followup.agency", f"agency.{agency}"))


@pytest.mark.parametrize("category", list(CATEGORIES.values()))
def test_report_says_the_category(category):
    call = _lookup(MOBILE, ticket(callback=MOBILE, category=category))
    assert contains_run(call.said, ("followup.category", f"category.{category}"))


@pytest.mark.parametrize(
    ("due_at", "date"),
    [
        (None, None),
        (datetime(2024, 4, 1, 8, 0, tzinfo=UTC), ("ord.13", *NOWRUZ_1403[1:])),
        (datetime(2024, 4, 1, 20, 45, tzinfo=UTC), ("ord.14", *NOWRUZ_1403[1:])),
    ],
    ids=["no-due-date", "due", "due-after-midnight-tehran"],
)
def test_report_says_the_due_date_only_when_there_is_one(due_at, date):
    call = _lookup(MOBILE, ticket(callback=MOBILE, due_at=due_at))
    if date is None:
        assert "followup.due" not in call.said
    else:
        assert contains_run(call.said, ("followup.due", *date, "followup.menu"))


def test_report_menu_repeats_transfers_and_returns_to_main():
    call = _lookup(MOBILE, ticket(callback=MOBILE))
    report = call.actions
    call.press("1")
    assert call.actions == report
    call.press("*")
    assert call.node == "main"
    assert call.actions == (Gather(("main.menu",), 1, None, MENU_TIMEOUT_S),)
    call.run(["2", TRACKING])
    call.send(TicketLookedUp(ticket(callback=MOBILE)))
    call.press("0")
    assert call.actions == TO_AGENT


def test_a_second_followup_does_not_reuse_the_first_ticket():
    call = Call(OTHER_MOBILE)
    call.run(["2", TRACKING])
    call.send(TicketLookedUp(ticket(callback=MOBILE)))
    call.press(MOBILE[-4:])
    assert call.node == "followup.report"
    second = tracking_from_sequence(7)
    call.run(["*", "2", second])
    assert call.actions == (LookupTicket(second),)
    call.send(TicketLookedUp(None))
    call.press(MOBILE[-4:])  # right for the first ticket, but it is not this one
    assert call.node == "followup.verify"
    assert call.said[0] == "followup.mismatch"


# --- invalid keys and silence, everywhere -----------------------------------------------------


@pytest.mark.parametrize(
    ("node", "key"),
    [(n, k) for n in MENU_NODES for k in "0123456789*#" if k not in CONTRACT_KEYS[n]],
)
def test_every_key_outside_the_contract_is_invalid(node, key):
    call = call_at(node, ROUTES)
    expected = said_with(own_actions(call), "retry.invalid")
    call.press(key)
    assert call.node == node
    assert call.actions == expected
    assert call.last.outcome is StepOutcome.INVALID


@pytest.mark.parametrize("how", ["invalid", "timeout"])
@pytest.mark.parametrize("node", INPUT_NODES)
def test_a_failed_try_says_why_and_the_node_again(node, how):
    call = call_at(node, ROUTES)
    expected = said_with(own_actions(call), retry_prompt(node, how))
    fail(call, how)
    assert call.node == node
    assert call.actions == expected
    fail(call, how)
    assert call.node == node
    assert call.actions == expected


@pytest.mark.parametrize(
    "pattern",
    [
        ("invalid", "invalid", "invalid"),
        ("timeout", "timeout", "timeout"),
        ("invalid", "timeout", "invalid"),
        ("timeout", "invalid", "timeout"),
    ],
    ids=["invalid", "timeout", "mixed-1", "mixed-2"],
)
@pytest.mark.parametrize("node", TO_AGENT_NODES)
def test_three_failures_in_a_row_transfer_to_an_agent(node, pattern):
    call = call_at(node, ROUTES)
    operations_before = (call.created(), call.lookups())
    for how in pattern[:-1]:
        fail(call, how)
        assert not call.transferred()
    fail(call, pattern[-1])
    assert call.node == "agent"
    assert prompts_of(call.actions) == (gave_up_prompt(node, pattern[-1]), "agent.transfer")
    assert call.actions[-1] == Transfer(AGENT_QUEUE)
    assert call.last.outcome is StepOutcome.TRANSFER_AFTER_FAILURES
    assert (call.created(), call.lookups()) == operations_before


@pytest.mark.parametrize("node", [n for n in MENU_NODES if REPEAT_KEYS[n]])
def test_a_valid_key_resets_the_failure_count(node):
    call = call_at(node, ROUTES)
    fail(call, "invalid")
    fail(call, "timeout")
    call.press(REPEAT_KEYS[node][0])
    fail(call, "invalid")
    fail(call, "timeout")
    assert call.node == node
    assert not call.transferred()
    fail(call, "invalid")
    assert call.transferred()


def test_failures_do_not_carry_over_to_the_next_menu():
    call = Call()
    call.run(["7", "8", "1"])  # two wrong keys, then a new request
    call.run(["7", "8"])
    assert call.node == "category"
    assert not call.transferred()


@pytest.mark.parametrize(
    ("node", "valid", "next_node"),
    [
        ("callback.enter", OTHER_MOBILE, "callback.confirm_entered"),
        ("nid", NATIONAL_ID, "summary"),
        ("followup.verify", OTHER_MOBILE[-4:], "followup.report"),
        ("describe", RecordingFinished(RECORDING, 10.0), "describe.review"),
    ],
)
def test_a_valid_answer_after_two_failures_resets_the_count(node, valid, next_node):
    call = call_at(node, ROUTES)
    fail(call, "invalid")
    fail(call, "timeout")
    call.run([valid])
    assert call.node == next_node
    assert call.state.failures == 0
    fail(call, "invalid")
    fail(call, "timeout")
    assert call.node == next_node


def test_a_valid_tracking_number_after_two_failures_resets_the_count():
    call = call_at("followup.enter", ROUTES)
    fail(call, "invalid")
    fail(call, "timeout")
    call.press(TRACKING)
    call.send(TicketLookedUp(None))
    fail(call, "invalid")
    fail(call, "timeout")
    assert call.node == "followup.verify"
    assert not call.transferred()


# --- what the call records say: outcomes, transfer causes, the reason the caller hears -----------

REQUIRED_ENTRIES = sorted(n for n in ENTRIES if n != "nid")


@pytest.mark.parametrize("node", ["main", "registered", "followup.report"])
def test_zero_is_a_transfer_the_caller_asked_for(node):
    call = call_at(node, ROUTES)
    call.press("0")
    assert call.actions == TO_AGENT
    assert call.last.outcome is StepOutcome.TRANSFER_REQUESTED


@pytest.mark.parametrize("how", ["invalid", "timeout"])
@pytest.mark.parametrize("node", TO_AGENT_NODES)
def test_two_failures_are_logged_as_such_and_the_third_as_a_transfer_after_failures(node, how):
    call = call_at(node, ROUTES)
    outcomes = [fail(call, how).outcome for _ in range(3)]
    if kind(node) is m.Recorder:
        failure = StepOutcome.TOO_SHORT
    elif how == "timeout":
        failure = StepOutcome.TIMEOUT
    else:
        failure = StepOutcome.INVALID
    assert outcomes == [failure, failure, StepOutcome.TRANSFER_AFTER_FAILURES]


@pytest.mark.parametrize(
    "node", [*(n for n in MENU_NODES if n not in GOODBYE_NODES), *REQUIRED_ENTRIES]
)
def test_hash_alone_is_logged_as_empty_not_as_a_timeout(node):
    call = call_at(node, ROUTES)
    expected = said_with(own_actions(call), "retry.no_input")
    call.press("")
    assert call.last.outcome is StepOutcome.EMPTY
    assert call.actions == expected  # what the caller hears is what silence gets
    call.timeout()
    assert call.last.outcome is StepOutcome.TIMEOUT
    call.press("#" if kind(node) is m.Entry else "")
    assert call.last.outcome is StepOutcome.TRANSFER_AFTER_FAILURES
    assert prompts_of(call.actions) == ("retry.too_many", "agent.transfer")


def test_hash_alone_skips_the_national_id_and_is_logged_as_skipped():
    call = call_at("nid", ROUTES)
    call.press("")
    assert call.node == "summary"
    assert call.last.outcome is StepOutcome.SKIPPED


def test_wrong_last_four_are_rejected_and_malformed_ones_invalid():
    call = call_at("followup.verify", ROUTES)
    call.press("0000")
    assert call.last.outcome is StepOutcome.REJECTED
    call.press("123")
    assert call.last.outcome is StepOutcome.INVALID


@pytest.mark.parametrize(
    ("node", "wrong", "heard"),
    [
        ("main", "7", "retry.too_many_invalid"),
        ("callback.enter", "0912123456", "retry.too_many_entries"),
        ("nid", "7731689957", "retry.too_many_entries"),
        ("followup.enter", "1000000420", "retry.too_many_entries"),
        ("followup.verify", "0000", "retry.too_many_mismatch"),
    ],
)
def test_after_three_wrong_answers_the_caller_hears_why_not_no_answer(node, wrong, heard):
    call = call_at(node, ROUTES)
    call.run([wrong, wrong, wrong])
    assert prompts_of(call.actions) == (heard, "agent.transfer")
    assert "retry.too_many" not in prompts_of(call.actions)


def test_a_recording_the_system_lost_is_not_called_too_short():
    call = call_at("describe", ROUTES)
    call.send(RecordingFailed())
    assert call.node == "describe"
    assert call.actions == (
        Play(("describe.not_saved", "describe.instructions")),
        Record(120, "#"),
    )
    assert call.last.outcome is StepOutcome.NOT_SAVED
    call.record(RECORDING, 10.0)
    assert call.node == "describe.review"
    assert call.state.failures == 0


def test_three_lost_recordings_say_the_system_could_not_save_it():
    call = call_at("describe", ROUTES)
    call.record(RECORDING, 0.5)  # too short ...
    call.send(RecordingFailed())  # ... then lost twice: the last failure is the system's
    call.send(RecordingFailed())
    assert prompts_of(call.actions) == ("retry.too_many_unsaved", "agent.transfer")
    assert call.last.outcome is StepOutcome.TRANSFER_AFTER_FAILURES


@pytest.mark.parametrize("node", sorted(n for n in ROUTES if kind(n) is not m.Transfer))
def test_a_system_failure_anywhere_says_so_and_hands_the_caller_to_a_person(node):
    call = call_at(node, ROUTES)
    before = (call.created(), call.lookups())
    call.send(SystemFailed())
    assert call.node == "agent"
    assert call.actions == (Play(("system.unavailable",)), Transfer(AGENT_QUEUE))
    assert call.last.outcome is StepOutcome.TRANSFER_UNAVAILABLE
    assert (call.created(), call.lookups()) == before
    call.send(SystemFailed())  # the agents have the call: nothing more to say
    assert call.actions == () and call.last.outcome is StepOutcome.IGNORED


def test_a_call_that_cannot_be_loaded_fails_over_like_any_other():
    """What a transport answers when the call's own state is out of reach."""
    result = advance(CallState(), SystemFailed())
    assert result.actions == (Play(("system.unavailable",)), Transfer(AGENT_QUEUE))
    assert result.outcome is StepOutcome.TRANSFER_UNAVAILABLE


def test_a_system_failure_after_the_hangup_is_ignored():
    call = call_at("summary", ROUTES)
    call.hang_up()
    assert call.send(SystemFailed()).actions == ()
    assert call.last.outcome is StepOutcome.IGNORED


def test_every_event_kind_is_named_once():
    kinds = [e.kind for e in (Digits(""), Timeout(), RecordingFailed(), Hangup(), SystemFailed())]
    assert len(set(kinds)) == len(kinds)
    assert {k.value for k in EventKind} >= {"digits", "timeout", "recording_failed", "hangup"}


def test_the_filed_draft_leaves_the_calls_state():
    """Once the ticket holds them, the state (stored between webhooks) keeps no typed number."""
    call = Call()
    to_describe(call, "3")
    finish_request(call, callback=OTHER_MOBILE, national_id=NATIONAL_ID)
    assert call.state.national_id == NATIONAL_ID  # needed until the ticket is written
    call.send(TicketCreated(TRACKING))
    assert call.node == "registered"
    assert all(getattr(call.state, name) is None for name in (*DRAFT_FIELDS, "national_id"))
    assert call.state.tracking == TRACKING
    registered = call.said
    call.press("1")  # the tracking number is still there to be said again
    assert call.said == registered


def test_without_personal_data_drops_every_typed_number_and_the_looked_up_ticket():
    call = call_at("followup.verify", ROUTES, caller_id=None)
    assert call.state.ticket is not None
    state = replace(call.state, callback=MOBILE, pending_callback=LANDLINE, national_id=NATIONAL_ID)
    stored = state.without_personal_data().to_json()
    for typed in (MOBILE, LANDLINE, NATIONAL_ID, TRACKING, OTHER_MOBILE):
        assert typed not in stored
    assert CallState.from_json(stored).node == "followup.verify"


def test_a_stored_state_reads_back_whole_and_ignores_fields_it_no_longer_has():
    call = call_at("followup.verify", ROUTES, caller_id=None)
    state = replace(
        call.state,
        callback=MOBILE,
        pending_callback=LANDLINE,
        national_id="۰۰۱۲۳۴۵۶۷۸",
        queue_entered_at="2026-12-01T10:00:00+00:00",
        queue_refused=True,
        opening_in_days=3,
    )
    assert CallState.from_json(state.to_json()) == state  # the looked-up ticket's dict too
    assert "۰۰۱۲۳۴۵۶۷۸" in state.to_json()  # Persian digits kept as typed, not escaped
    older = state.to_json()[:-1] + ', "dropped_field": 1}'
    assert CallState.from_json(older) == state


# --- hanging up -------------------------------------------------------------------------------

NEW_REQUEST = (
    "1",
    "1",
    "8",
    "2",
    RecordingFinished(RECORDING, 12.0),
    "1",
    "2",
    "2",
    OTHER_MOBILE,
    "1",
    NATIONAL_ID,
    "1",  # register: the step that asks for CreateTicket
)
FOLLOW_UP = ("2", TRACKING)
AFTER_HANGUP = (
    *NEW_REQUEST,
    TicketCreated(TRACKING),
    TicketLookedUp(ticket()),
    Timeout(),
    Hangup(),
    "1",
)


def test_the_new_request_script_creates_a_ticket_when_not_interrupted():
    call = Call()
    call.run(NEW_REQUEST)
    assert len(call.created()) == 1


@pytest.mark.parametrize("step", range(len(NEW_REQUEST)))
def test_hanging_up_during_a_new_request_never_creates_a_ticket(step):
    call = Call()
    call.run(NEW_REQUEST[:step])
    call.hang_up()
    assert call.state.ended
    assert call.last.outcome is StepOutcome.HANGUP
    for event in AFTER_HANGUP:
        result = call.run([event])
        assert result.actions == ()
        assert call.state.ended
    assert call.created() == []


@pytest.mark.parametrize("step", range(len(FOLLOW_UP)))
def test_hanging_up_during_a_followup_never_looks_a_ticket_up(step):
    call = Call()
    call.run(FOLLOW_UP[:step])
    call.hang_up()
    for event in (*FOLLOW_UP, TicketLookedUp(ticket(callback=MOBILE)), "1"):
        assert call.run([event]).actions == ()
    assert call.lookups() == []


def test_hanging_up_while_the_ticket_is_created_ignores_the_result():
    call = call_at("register", ROUTES)
    call.hang_up()
    result = call.send(TicketCreated(TRACKING))
    assert result.actions == ()
    assert result.outcome is StepOutcome.IGNORED
    assert len(call.created()) == 1


def test_hanging_up_after_the_transfer_ends_the_call():
    call = call_at("agent", ROUTES)
    call.hang_up()
    assert call.state.ended
    assert call.actions == ()


@pytest.mark.parametrize(
    "event",
    [
        Digits("1"),
        Digits("0"),
        Timeout(),
        RecordingFinished(RECORDING, 5.0),
        TicketCreated(TRACKING),
        TicketLookedUp(ticket()),
    ],
    ids=["key", "zero", "timeout", "recording", "ticket-created", "ticket-looked-up"],
)
def test_an_event_after_the_transfer_is_ignored(event):
    call = call_at("agent", ROUTES)
    call.send(event)
    assert call.actions == ()
    assert call.last.outcome is StepOutcome.IGNORED
    assert call.node == "agent"
    assert not call.created() and not call.lookups()


@pytest.mark.parametrize(
    "event",
    [Digits("1"), Timeout(), RecordingFinished(RECORDING, 5.0), TicketCreated(TRACKING)],
    ids=["key", "timeout", "recording", "ticket-created"],
)
def test_an_event_before_the_call_started_does_not_crash_the_engine(event):
    """A caller is on the line: the engine must answer (not raise, not stay silent)."""
    state = CallState.from_json("{}")  # what CallSession.resume reads from a fresh Call row
    result = advance(state, event)
    check_transition(state, event, result)
    assert not any(isinstance(a, CreateTicket | LookupTicket) for a in result.actions)


# --- random walks -----------------------------------------------------------------------------

CALLER_IDS = [MOBILE, OTHER_MOBILE, LANDLINE, None, "", "anonymous", "+989121234567", "1001"]
FOUND = [
    None,
    ticket(callback=MOBILE),
    ticket(callback=OTHER_MOBILE, status="referred", agency="guilds"),
    ticket(
        callback=LANDLINE,
        status="answered",
        created_at=datetime(2023, 9, 22, 23, 0),
        due_at=datetime(2023, 10, 8, 6, 0, tzinfo=UTC),
    ),
]


ENTRY_ANSWERS = {
    "callback.enter": [MOBILE, OTHER_MOBILE, LANDLINE, "۰۹۳۵۱۱۱۲۲۳۳", "0912123456", ""],
    "recall.enter": [MOBILE, OTHER_MOBILE, "۰۹۳۵۱۱۱۲۲۳۳", "0912123456", ""],
    "nid": ["", "#", NATIONAL_ID, "7731689957", "۷۷۳۱۶۸۹۹۵۶"],
    "followup.enter": [TRACKING, tracking_from_sequence(999), "1000000420", ""],
    "followup.verify": ["2233", "4567", "3456", "0000", ""],
}
NOISE = [
    "",
    MOBILE,
    "0912123456",
    NATIONAL_ID,
    TRACKING,
    "1000000420",
    "2233",
    "4567",
    "12",
    "**",
]


def sensible_event(rng: random.Random, node: str):
    """What a caller who listens would do at ``node``: a key of the menu, an answer (valid or
    not) to an entry, a recording (maybe too short)."""
    if node in ("registered", "followup.report") and rng.random() < 0.3:
        return Hangup()  # done: most callers hang up here
    if kind(node) is m.Menu:
        keys = CONTRACT_KEYS[node]
        return Digits(rng.choice(keys.replace("0", "")) if rng.random() < 0.9 else rng.choice(keys))
    if kind(node) is m.Entry:
        return Digits(rng.choice(ENTRY_ANSWERS[node]))
    return RecordingFinished(rng.choice([RECORDING, "/rec/b.wav", None]), rng.uniform(0, 40))


AGENT_ANSWERS = (AVAILABLE, CLOSED, AgentsChecked(False), AgentsChecked(False, NOWRUZ_OPENING, 9))


def random_event(rng: random.Random, call: Call):
    if kind(call.node) is m.Operation and rng.random() < 0.9:
        if call.node == "register":
            return TicketCreated(rng.choice([TRACKING, tracking_from_sequence(999), None]))
        if call.node == "agent.check":
            return rng.choice(AGENT_ANSWERS)
        if call.node == "recall.request":
            return CallbackFiled(rng.choice([1, None]))
        if call.node in ("followup.guard", "followup.refused"):
            return FollowupChecked(rng.random() < 0.8)
        return TicketLookedUp(rng.choice(FOUND))
    roll = rng.random()
    if roll < 0.75:
        return sensible_event(rng, call.node)
    if roll < 0.85:
        return Digits(rng.choice("0123456789*#۰۱۲۹"))
    if roll < 0.91:
        return Timeout()
    if roll < 0.95:
        return Digits(rng.choice(NOISE))
    if roll < 0.97:
        return RecordingFinished(rng.choice([RECORDING, None]), rng.uniform(0, 6))
    if roll < 0.99:
        return rng.choice(
            [
                TicketCreated(TRACKING),
                TicketLookedUp(rng.choice(FOUND)),
                rng.choice(AGENT_ANSWERS),
                CallbackFiled(2),
                QueueLeft(rng.choice(["leave", "queue-full", "hangup", "redirected"])),
            ]
        )
    return Hangup()


def random_call(rng: random.Random) -> Call:
    """A new caller, or one the queue gives back (no agent, or the callback key)."""
    resume = rng.choice([None, None, None, "no_agent", "callback"])
    return Call(
        rng.choice(CALLER_IDS),
        agents=None,
        resume=resume,
        queue_entered_at=ENTERED,
        tries_left=None,
    )


@pytest.mark.parametrize("seed", [1, 124, 2024, 98])
def test_random_walks_keep_the_invariants(seed):
    """Thousands of random events; Call.send checks purity, JSON round trip, catalogue ids and
    that every answer ends in exactly one wait or operation."""
    rng = random.Random(seed)
    calls = tickets = lookups = callbacks = 0
    nodes_seen: set[str] = set()
    call = random_call(rng)
    new_requests = 0
    proved = False  # the caller has keyed the last four digits of the looked-up ticket
    for _ in range(8000):
        node, event = call.node, random_event(rng, call)
        call.send(event)
        nodes_seen.add(call.node)
        looked_up = call.state.ticket
        if node == "followup.lookup" and isinstance(event, TicketLookedUp):
            proved = False
        if node == "followup.verify" and isinstance(event, Digits) and looked_up:
            typed = event.digits.translate(str.maketrans("۰۱۲۳۴۵۶۷۸۹", "0123456789"))
            proved = proved or typed == looked_up["callback_number"][-4:]
        if "followup.registered_on" in call.said:  # something about a ticket is said
            assert looked_up
            assert proved or looked_up["callback_number"] == call.state.caller_number
        for action in call.actions:
            if isinstance(action, CreateTicket):
                check_create_ticket(action)
                tickets += 1
            if isinstance(action, LookupTicket):
                assert is_valid_tracking(action.tracking)
                lookups += 1
            if isinstance(action, RequestCallback):
                assert is_valid_callback_number(action.number) and action.province == "qom"
                callbacks += 1
        if node == "no_agent":  # nobody can answer: never straight back to the queue
            assert not any(isinstance(a, Transfer) for a in call.actions)
        if node in ("main", "no_agent") and call.node == "category":
            new_requests += 1  # a new draft (one call may file several from "no agent")
        assert len(call.created()) <= new_requests  # never two tickets from one draft
        if call.state.ended or (call.actions and isinstance(call.actions[-1], Transfer | HangUp)):
            calls += 1
            call, proved, new_requests = random_call(rng), False, 0
    assert calls > 20
    assert tickets > 5 and lookups > 5 and callbacks > 5
    assert nodes_seen >= set(ROUTES)  # the walk went everywhere (and to the goodbyes)
