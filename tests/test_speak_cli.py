"""`ivr speak`: the words, bad input as one clear line and exit 1, and the sound (--wav, --play)
through the real command on the real rendered prompts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from refusals import refusal

from ivr import speech
from ivr.prompts import audio_path, read_wav_info

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


@pytest.fixture
def speak(ivr_cli):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return ivr_cli("speak", *args, check=False)

    return run


def ivr_with(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real `ivr` command with an environment of the test's own (PATH, prompts folder)."""
    ivr = str(Path(sys.executable).with_name("ivr"))
    return subprocess.run([ivr, *args], env=env, capture_output=True, text=True, check=False)


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """A refused ``ivr speak KIND …``: one line naming the command and saying ``fragments``."""
    line = refusal(done, " ".join(done.args[1:3]))  # [ivr, "speak", "number", …]
    for fragment in fragments:
        assert fragment in line, line


# --- words --------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["1587", "۱۵۸۷", "١٥٨٧"])
def test_number_in_any_digits(speak, typed: str) -> None:
    done = speak("number", typed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "هزار و پانصد و هشتاد و هفت"


def test_digits_keep_their_groups_in_words(speak) -> None:
    assert speak("digits", "۰۹۱۲۱۲۳۴۵۶۷").stdout.strip() == (
        "صفر نه یک دو یک دو سه چهار پنج شش هفت"
    )


@pytest.mark.parametrize(
    "typed", ["2026-06-05", "1405/03/15", "۱۴۰۵/۰۳/۱۵", "1405-3-15", "٢٠٢٦-٠٦-٠٥"]
)
def test_date_jalali_or_iso(speak, typed: str) -> None:
    done = speak("date", typed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "پانزدهم خرداد هزار و چهارصد و پنج"


# --- bad input: one line, exit 1 ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("number", "1000000000000"), ("cannot speak 1000000000000", "999999999999")),
        (("number", "9" * 5000), ("cannot speak", "999999999999")),
        (("number", "abc"), ("not a whole number", "'abc'")),
        (("number", "12.5"), ("not a whole number",)),
        (("digits", "abc"), ("not a string of digits", "'abc'")),
        (("digits", "0912x"), ("not a string of digits",)),
        (("date", "1405/13/01"), ("not a date", "1405/13/01", "month")),
        (("date", "1405/12/31"), ("not a date", "1405/12/31")),
        (("date", "2026-02-30"), ("not a date", "2026-02-30")),
        (("date", "99999999999999999999-01-01"), ("not a date", "too large")),
        (("date", "yesterday"), ("not a date", "1405/02/10", "2026-04-30")),
        (("date", "10000-01-01"), ("not a date",)),
    ],
)
def test_bad_input_is_one_clear_line(speak, args: tuple[str, ...], says: tuple[str, ...]) -> None:
    done = speak(*args)
    assert_one_clear_line(done, *says)
    assert done.stdout == ""


# --- sound --------------------------------------------------------------------------------------


def test_wav_is_the_fragments_joined_as_telephone_audio(
    speak, prompts_built: Path, tmp_path: Path
) -> None:
    out = tmp_path / "1587.wav"
    done = speak("number", "1587", "--wav", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "هزار و پانصد و هشتاد و هفت"
    with wave.open(str(out), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        frames = w.readframes(w.getnframes())
    # Exactly the four files the IVR plays, sample for sample, one after another.
    parts = b""
    for fragment in speech.number_fragments(1587):
        with wave.open(str(audio_path(prompts_built, fragment)), "rb") as w:
            parts += w.readframes(w.getnframes())
    assert frames == parts
    assert read_wav_info(out).duration < 4.98  # main's 1587 took 4.98 s


def test_wav_of_a_date_and_of_digits(speak, prompts_built: Path, tmp_path: Path) -> None:
    for kind, typed in (("date", "1405/03/15"), ("digits", "1000000202")):
        out = tmp_path / f"{kind}.wav"
        assert speak(kind, typed, "--wav", str(out)).returncode == 0
        assert read_wav_info(out).rate == 8000
    digits = read_wav_info(tmp_path / "digits.wav").duration
    fragments = speech.digits_fragments("1000000202", (3, 3, 4))
    expected = sum(read_wav_info(audio_path(prompts_built, f)).duration for f in fragments)
    assert digits == pytest.approx(expected, abs=0.001)


def test_wav_into_a_missing_folder_is_one_line(speak, prompts_built: Path, tmp_path: Path) -> None:
    done = speak("number", "7", "--wav", str(tmp_path / "missing" / "x.wav"))
    assert_one_clear_line(done, "cannot write", "missing")


def test_wav_without_rendered_prompts_says_to_build(ivr_env, tmp_path: Path) -> None:
    empty = tmp_path / "prompts"
    empty.mkdir()
    for source in REPO_PROMPTS.glob("*.toml"):
        shutil.copy(source, empty / source.name)
    env = dict(
        ivr_env, IVR_PROMPTS_DIR=str(empty), IVR_GENERATED_PROMPTS_DIR=str(empty / "generated")
    )
    done = ivr_with(env, "speak", "number", "1587", "--wav", str(tmp_path / "x.wav"))
    assert_one_clear_line(done, "no audio for num.1000-o", "ivr prompts build")


def _bin_with(tmp_path: Path, play_script: str | None) -> str:
    """A PATH with what `ivr` needs (sox for conversions) and, optionally, a `play`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sox = shutil.which("sox")
    if sox is not None:
        (bin_dir / "sox").symlink_to(sox)
    if play_script is not None:
        play = bin_dir / "play"
        play.write_text(play_script, encoding="utf-8")
        play.chmod(0o755)
    return str(bin_dir)


def test_play_without_sox_play_says_so(ivr_env, prompts_built: Path, tmp_path: Path) -> None:
    env = dict(ivr_env, PATH=_bin_with(tmp_path, None))
    done = ivr_with(env, "speak", "number", "124", "--play")
    assert_one_clear_line(done, "sox's `play` is not installed", "--wav")
    assert done.stdout.strip() == "صد و بیست و چهار"  # the words are still printed


def test_play_hands_the_joined_sequence_to_play(
    ivr_env, prompts_built: Path, tmp_path: Path
) -> None:
    """A stand-in `play` (this machine has no sound card) keeps the file it was given."""
    kept = tmp_path / "played.wav"
    script = f'#!/bin/sh\nfor last; do :; done\n{shutil.which("cp")} "$last" "{kept}"\n'
    env = dict(ivr_env, PATH=_bin_with(tmp_path, script))
    done = ivr_with(env, "speak", "number", "124", "--play")
    assert done.returncode == 0, done.stderr
    expected = sum(
        read_wav_info(audio_path(prompts_built, f)).duration for f in speech.number_fragments(124)
    )
    assert read_wav_info(kept).duration == pytest.approx(expected, abs=0.001)


@pytest.mark.skipif(shutil.which("play") is None, reason="sox's play is not installed")
def test_play_failing_is_one_line(ivr_env, prompts_built: Path) -> None:
    """With no sound device (as on this server), the real `play` fails: one line, exit 1."""
    env = dict(ivr_env, AUDIODEV="/nonexistent-sound-device", AUDIODRIVER="alsa")
    done = ivr_with(env, "speak", "number", "1", "--play")
    assert_one_clear_line(done, "cannot play")
