"""The 124 menu tree as data: nodes, the keys each takes, and where each key leads.

Digits here are a contract with callers (and with tests outside the project). Prompt parts are
catalogue ids, or ``Slot`` names that the engine fills from the call (a phone number read digit
by digit, a date, a place name). Places come from the province's data file, so another province
needs no code change.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ivr.categories import load_categories
from ivr.flow.outcomes import StepOutcome
from ivr.provinces import Province, load_province, provinces_dir

MENU_TIMEOUT_S = 5
MAX_FAILURES = 3
RECORD_MAX_S = 120
RECORD_MIN_S = 2.0
AGENT_QUEUE = "124-agents"

GAVE_UP_PROMPTS: dict[StepOutcome, str] = {
    StepOutcome.INVALID: "retry.too_many_invalid",
    StepOutcome.REJECTED: "retry.too_many_invalid",
    StepOutcome.TIMEOUT: "retry.too_many",
    StepOutcome.EMPTY: "retry.too_many",
    StepOutcome.TOO_SHORT: "retry.too_many_unrecorded",
    StepOutcome.NOT_SAVED: "retry.too_many_unsaved",
}
"""What the caller hears before the agent after the third failure in a row, by the kind of that
third failure: wrong keys, silence, no recording, a recording the system lost. An entry names
its own prompt for refused answers (``Entry.gave_up_prompt``)."""


@dataclass(frozen=True)
class Slot:
    """A prompt part computed from the call's state (see ``engine.SLOTS``)."""

    name: str


Part = str | Slot


@dataclass(frozen=True)
class Go:
    """Where a key (or a valid entry) leads, and what it sets on the way."""

    target: str
    sets: tuple[tuple[str, str | bool | None], ...] = ()
    effect: str | None = None
    """A named state change in ``engine.EFFECTS`` that needs the digits or the call's data."""
    say: tuple[Part, ...] = ()
    """Said on the way, before the target's own prompts."""


REPEAT = Go("")
"""Stay in the node and say it again."""


@dataclass(frozen=True)
class Menu:
    prompts: tuple[Part, ...]
    choices: dict[str, Go]
    gave_up: Go | None = None
    """Where the third failure in a row leads when an agent cannot take the call either (the
    "no agent" menu): said after the failure's own prompt. None: to the agents, as everywhere."""


@dataclass(frozen=True)
class Entry:
    """Several digits ended with ``#``; ``check`` names a validator in ``engine.CHECKS``."""

    prompts: tuple[Part, ...]
    max_digits: int
    check: str
    invalid_prompt: str
    on_valid: Go
    on_empty: Go | None = None
    """Where ``#`` alone leads, for optional entries."""
    gave_up_prompt: str = "retry.too_many_entries"
    """Said before the agent when the third refused answer in a row was refused."""
    on_rejected: Go | None = None
    """Where an answer the call's data refuses (``REJECTED``) leads first: an operation that
    counts it, whose result retries the entry. None: retried at once."""


@dataclass(frozen=True)
class Recorder:
    prompts: tuple[Part, ...]
    too_short_prompt: str
    on_done: Go
    not_saved_prompt: str = "describe.not_saved"
    """The system lost the recording: say so (not "too short") and ask again."""


@dataclass(frozen=True)
class Branch:
    """A decision without input: ``test`` names a predicate in ``engine.TESTS``."""

    test: str
    yes: Go
    no: Go


@dataclass(frozen=True)
class Operation:
    """A ticket operation; its result comes back as an event (``engine.RESULTS`` handles it)."""

    operation: str


@dataclass(frozen=True)
class Transfer:
    prompts: tuple[Part, ...]
    queue: str = AGENT_QUEUE


@dataclass(frozen=True)
class Goodbye:
    """The IVR's last words: the prompts, then it hangs up."""

    prompts: tuple[Part, ...]


Node = Menu | Entry | Recorder | Branch | Operation | Transfer | Goodbye

AGENT = Go("agent.check")
"""Every way to a person asks first whether one can answer now (``agent.check``)."""
DRAFT_FIELDS = (
    "category",
    "place",
    "recording_path",
    "callback",
    "pending_callback",
    "national_id",
)
CLEAR_DRAFT: tuple[tuple[str, str | None], ...] = tuple((name, None) for name in DRAFT_FIELDS)


def _category_choices() -> dict[str, Go]:
    """The category menu's keys, from the categories file (ivr/categories.toml)."""
    choices = {
        category.key: Go(
            "place" if category.asks_place else "describe", sets=(("category", category.code),)
        )
        for category in load_categories().items
    }
    return {**choices, "*": REPEAT, "9": Go("main", sets=CLEAR_DRAFT)}


def _place_menu(province: Province, places: str, intro: str) -> Menu:
    entries = province.towns if places == "towns" else province.zones
    prompts: list[Part] = [intro]
    choices: dict[str, Go] = {}
    for place in entries:
        prompts += [province.prompt_id(place), f"key.{place.key}"]
        choices[place.key] = Go("describe", sets=(("place", place.id),))
    if places == "towns" and province.zones:
        prompts += ["place.zones", "key.8"]
        choices["8"] = Go("zone")
    prompts += ["place.none", "key.0"]
    choices["0"] = Go("describe", sets=(("place", None),))
    choices["*"] = REPEAT
    return Menu(tuple(prompts), choices)


def menus_for(province_code: str) -> dict[str, Node]:
    """The whole tree for one province (only the place menus differ between provinces)."""
    return _menus(provinces_dir(), province_code)


@cache
def _menus(folder: Path, province_code: str) -> dict[str, Node]:
    """Cached per provinces folder, so a changed ``IVR_PROVINCES_DIR`` is never served stale."""
    province = load_province(province_code, folder)
    confirm = ("callback.confirm_menu",)
    return {
        "main": Menu(
            ("main.menu",),
            {
                "1": Go("category", sets=CLEAR_DRAFT),
                "2": Go("followup.enter"),
                "0": AGENT,
                "*": REPEAT,
            },
        ),
        "category": Menu(("category.menu",), _category_choices()),
        "place": _place_menu(province, "towns", "place.intro"),
        "zone": _place_menu(province, "zones", "zone.intro"),
        "describe": Recorder(
            ("describe.instructions",), "describe.too_short", Go("describe.review")
        ),
        "describe.review": Menu(
            ("describe.review",),
            {
                "1": Go("describe.review", say=(Slot("recording"),)),
                "2": Go("callback"),
                "3": Go("describe", sets=(("recording_path", None),)),
                "*": REPEAT,
            },
        ),
        "callback": Branch(
            "caller_id_usable", yes=Go("callback.confirm_caller"), no=Go("callback.enter")
        ),
        "callback.confirm_caller": Menu(
            ("callback.your_number", Slot("caller_digits"), *confirm),
            {"1": Go("nid", effect="accept_caller_id"), "2": Go("callback.enter"), "*": REPEAT},
        ),
        "callback.enter": Entry(
            ("callback.enter",),
            11,
            "callback_number",
            "callback.invalid",
            on_valid=Go("callback.confirm_entered", effect="hold_callback"),
        ),
        "callback.confirm_entered": Menu(
            ("callback.entered", Slot("pending_callback_digits"), *confirm),
            {"1": Go("nid", effect="accept_callback"), "2": Go("callback.enter"), "*": REPEAT},
        ),
        "nid": Entry(
            ("nid.enter",),
            10,
            "national_id",
            "nid.invalid",
            on_valid=Go("summary", effect="keep_national_id"),
            on_empty=Go("summary", sets=(("national_id", None),)),
        ),
        "summary": Menu(
            ("summary.intro", Slot("category_name"), Slot("place_name"), "summary.menu"),
            {"1": Go("register"), "2": Go("category", sets=CLEAR_DRAFT), "*": REPEAT},
        ),
        "register": Operation("create_ticket"),
        "registered": Menu(
            (Slot("registered"), "registered.menu"),
            {"1": REPEAT, "0": AGENT, "*": REPEAT},
        ),
        "followup.enter": Entry(
            ("followup.enter",),
            10,
            "tracking",
            "followup.invalid",
            on_valid=Go("followup.lookup", effect="keep_tracking"),
        ),
        "followup.lookup": Operation("lookup_ticket"),
        # The guessing limit (ivr.followup_guard): asked before the last 4 digits, and counted
        # after each wrong answer; a caller past it hears so and goes to a person.
        "followup.guard": Operation("check_followup"),
        "followup.verify": Entry(
            ("followup.verify",),
            4,
            "last_four",
            "followup.mismatch",
            on_valid=Go("followup.report", effect="verify_last_four"),
            gave_up_prompt="retry.too_many_mismatch",
            on_rejected=Go("followup.refused"),
        ),
        "followup.refused": Operation("count_failed_followup"),
        "followup.report": Menu(
            (Slot("ticket_report"), "followup.menu"),
            {"1": REPEAT, "0": AGENT, "*": Go("main")},
        ),
        # To a person: asked first whether agents answer now (their hours, someone logged in);
        # if not, when they do, a new request or a callback at the next opening.
        "agent.check": Operation("check_agents"),
        "agent": Transfer(("agent.transfer",)),
        "no_agent": Menu(
            (Slot("no_agent"), "no_agent.menu"),
            {"1": Go("category", sets=CLEAR_DRAFT), "2": Go("recall"), "*": Go("main")},
            gave_up=Go("no_agent.goodbye"),
        ),
        "no_agent.goodbye": Goodbye(("no_agent.goodbye",)),
        # A callback (key 1 in the queue, or 2 in the "no agent" menu): the number is confirmed
        # exactly as for a new request, then filed with the caller's place in the queue.
        "recall": Branch(
            "caller_id_usable", yes=Go("recall.confirm_caller"), no=Go("recall.enter")
        ),
        "recall.confirm_caller": Menu(
            ("callback.your_number", Slot("caller_digits"), *confirm),
            {
                "1": Go("recall.request", effect="accept_caller_id"),
                "2": Go("recall.enter"),
                "*": REPEAT,
            },
        ),
        "recall.enter": Entry(
            ("callback.enter",),
            11,
            "callback_number",
            "callback.invalid",
            on_valid=Go("recall.confirm_entered", effect="hold_callback"),
        ),
        "recall.confirm_entered": Menu(
            ("callback.entered", Slot("pending_callback_digits"), *confirm),
            {
                "1": Go("recall.request", effect="accept_callback"),
                "2": Go("recall.enter"),
                "*": REPEAT,
            },
        ),
        "recall.request": Operation("request_callback"),
        "recall.filed": Goodbye(("recall.filed",)),
    }
