"""prompts/asterisk/sounds.toml: Asterisk's own sound names made from the catalogue, and the
installer that writes them (sounds/fa/queue-*.wav, sounds/fa/digits/*.wav)."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import pytest

from ivr.prompts import build, install_asterisk, load_catalog, read_wav_info
from ivr.sound_names import SoundNameError, load_table, resolve

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = ROOT / "prompts"

APP_QUEUE_SOUNDS = [
    # app_queue's default sound names (apps/app_queue.c, init_queue), all of which a caller
    # or an agent can hear; a name missing under fa/ would be played from the English set.
    "queue-youarenext",
    "queue-thereare",
    "queue-callswaiting",
    "queue-quantity1",
    "queue-quantity2",
    "queue-holdtime",
    "queue-minutes",
    "queue-minute",
    "queue-seconds",
    "queue-thankyou",
    "queue-reporthold",
    "queue-periodic-announce",
    # Not played by app_queue 22, but part of the stock queue sound set.
    "queue-less-than",
]

needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox (Debian packages) are needed to render prompts",
)


def test_the_real_table_resolves_against_the_catalogue():
    names = resolve(load_table(PROMPTS), set(load_catalog(PROMPTS)))
    assert set(APP_QUEUE_SOUNDS) <= set(names)
    # (Every sound say.conf's [fa] rules play is checked in test_say_conf.py.)
    # A word is one prompt; a word before «و» is its -o form, or the word and «و» joined.
    assert names["digits/5"] == ["num.5"]
    assert names["digits/20-o"] in (["num.20-o"], ["num.20", "word.and"])


def test_the_first_alternative_the_catalogue_has_wins():
    table = {"digits/20-o": [["num.20-o"], ["num.20", "word.and"]]}
    assert resolve(table, {"num.20", "word.and"}) == {"digits/20-o": ["num.20", "word.and"]}
    assert resolve(table, {"num.20-o", "num.20", "word.and"}) == {"digits/20-o": ["num.20-o"]}
    with pytest.raises(SoundNameError, match="digits/20-o"):
        resolve(table, {"num.20"})


def write_table(prompts_dir: Path, body: str) -> None:
    (prompts_dir / "asterisk").mkdir(parents=True, exist_ok=True)
    (prompts_dir / "asterisk" / "sounds.toml").write_text(body, encoding="utf-8")


@pytest.mark.parametrize(
    "body",
    [
        '[sounds]\n"../etc/passwd" = "num.1"\n',
        '[sounds]\n"queue-x" = 5\n',
        '[sounds]\n"queue-x" = []\n',
        "[sounds\n",
    ],
)
def test_a_bad_table_is_refused(tmp_path: Path, body: str):
    write_table(tmp_path, body)
    with pytest.raises(SoundNameError):
        load_table(tmp_path)


def test_no_table_means_no_extra_sounds(tmp_path: Path):
    assert load_table(tmp_path) == {}


@needs_tools
def test_install_writes_asterisks_names_beside_ours(tmp_path: Path):
    prompts_dir = tmp_path / "prompts"
    prompts_dir.mkdir()
    (prompts_dir / "catalog.toml").write_text(
        '[queue]\nthereare = "شما در صف، نفر شماره‌ی"\n'
        '[num]\n20 = "بیست"\n5 = "پنج"\n[word]\nand = "و"\n',
        encoding="utf-8",
    )
    write_table(
        prompts_dir,
        '[sounds]\n"queue-thereare" = "queue.thereare"\n"digits/5" = "num.5"\n'
        '"digits/20-o" = ["num.20-o", "num.20 word.and"]\n',
    )
    build(prompts_dir, places={})
    sounds = tmp_path / "sounds"
    count = install_asterisk(prompts_dir, sounds, places={})
    assert count == 4 + 3  # the catalogue in fa/ivr124/, then three Asterisk names in fa/
    ours = sounds / "fa" / "ivr124"
    assert (sounds / "fa" / "queue-thereare.wav").read_bytes()[44:] == (
        ours / "queue-thereare.wav"
    ).read_bytes()[44:]
    joined = read_wav_info(sounds / "fa" / "digits" / "20-o.wav")
    parts = [read_wav_info(ours / f) for f in ("num-20.wav", "word-and.wav")]
    assert (joined.rate, joined.channels, joined.sample_width) == (8000, 1, 2)
    assert joined.duration == pytest.approx(sum(p.duration for p in parts), abs=0.001)
    with wave.open(str(sounds / "fa" / "digits" / "5.wav")) as w:
        assert w.getnframes() > 0
