"""dialplans/say.conf: Asterisk's own number rules for Persian (and English, which "new" mode
would otherwise silence), and the sound names they play, checked against ivr/speech.py."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from saying import SayRules, read_sections

from ivr.prompts import load_catalog
from ivr.sound_names import load_table, resolve
from ivr.speech import number_fragments

ROOT = Path(__file__).resolve().parents[1]
SAY_CONF = ROOT / "dialplans" / "say.conf"
PROMPTS = ROOT / "prompts"


@pytest.fixture(scope="module")
def fa() -> SayRules:
    return SayRules(SAY_CONF, "fa")


@pytest.fixture(scope="module")
def sound_ids() -> dict[str, list[str]]:
    """Asterisk sound name → the catalogue ids it is made of (prompts/asterisk/sounds.toml)."""
    return resolve(load_table(PROMPTS), set(load_catalog(PROMPTS)))


def as_fragments(sounds: list[str], sound_ids: dict[str, list[str]]) -> list[str]:
    out: list[str] = []
    for name in sounds:
        assert name in sound_ids, f"say.conf plays {name}, which no catalogue prompt makes"
        out += sound_ids[name]
    return out


def test_new_mode_is_on():
    text = SAY_CONF.read_text(encoding="utf-8")
    assert re.search(r"^\[general\]\s*\nmode\s*=\s*new\s*$", text, re.MULTILINE)


@pytest.mark.parametrize(
    ("n", "sounds"),
    [
        (0, ["digits/0"]),
        (1, ["digits/1"]),
        (12, ["digits/12"]),
        (20, ["digits/20"]),
        (25, ["digits/20-o", "digits/5"]),
        (100, ["digits/100"]),  # «صد», not «یک صد»
        (105, ["digits/100-o", "digits/5"]),
        (999, ["digits/900-o", "digits/90-o", "digits/9"]),
        (1000, ["digits/1000"]),  # «هزار», not «یک هزار»
        (1587, ["digits/1000-o", "digits/500-o", "digits/80-o", "digits/7"]),
        (2000, ["digits/2", "digits/1000"]),
        (25100, ["digits/20-o", "digits/5", "digits/1000-o", "digits/100"]),
        (1000000, ["digits/1", "digits/million"]),  # «یک میلیون»
    ],
)
def test_persian_numbers_as_spoken(fa: SayRules, n: int, sounds: list[str]):
    assert fa.number(n) == sounds


def test_every_number_app_queue_says_matches_the_ivrs_own_speech(fa, sound_ids):
    # Positions (up to maxlen and far beyond), minutes of hold time: 0-9999 one by one, then a
    # sample up to a billion. The IVR's speech.py is the reference for Persian numbers.
    rng = random.Random(124)
    numbers = list(range(10_000)) + [rng.randrange(10**9) for _ in range(3000)]
    for n in numbers:
        assert as_fragments(fa.number(n), sound_ids) == number_fragments(n), n


def test_english_numbers_still_speak_under_new_mode():
    en = SayRules(SAY_CONF, "en")
    assert en.number(7) == ["digits/7"]
    assert en.number(25) == ["digits/20", "digits/5"]
    assert en.number(125) == ["digits/1", "digits/hundred", "digits/20", "digits/5"]
    assert en.number(2005) == ["digits/2", "digits/thousand", "digits/5"]
    assert en.number(3_000_012) == ["digits/3", "digits/million", "digits/12"]


def test_english_sounds_exist_in_asterisks_stock_set():
    # The names the [en] rules play are stock core sounds (checked in the Debian root when
    # it is there, against the known list otherwise).
    en = SayRules(SAY_CONF, "en")
    names = {s for n in [*range(1000), 1000, 10**6, 123_456_789] for s in en.number(n)}
    root = Path("/var/cache/ivr124/asterisk-root/usr/share/asterisk/sounds/en_US_f_Allison")
    if root.is_dir():
        missing = [n for n in names if not list(root.glob(f"{n}.*"))]
        assert missing == []
    assert names <= {f"digits/{i}" for i in [*range(20), *range(20, 100, 10)]} | {
        "digits/hundred",
        "digits/thousand",
        "digits/million",
    }


def test_only_fa_and_en_sections():
    # New mode is global: every section here is a language the PBX speaks with these rules.
    assert set(read_sections(SAY_CONF)) == {"general", "fa", "en"}
