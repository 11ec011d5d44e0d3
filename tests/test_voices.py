"""The voices and the finished audio: which voice is used, re-rendering when it changes, and the
loudness, margins, clipping and spoken lengths measured with sox on really rendered files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from needs import need
from pydantic import ValidationError
from refusals import refusal

from ivr import audio, speech
from ivr.prompts import audio_path, build, load_catalog, read_manifest, read_wav_info
from ivr.settings import Settings
from ivr.voices import (
    ESPEAK_FA,
    MBROLA_IR1,
    VOICES,
    VoiceError,
    choose_voice,
    is_installed,
)

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"

needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox (Debian packages) are needed to render prompts",
)
needs_mbrola = pytest.mark.skipif(
    not is_installed(VOICES[MBROLA_IR1]),
    reason="mbrola and mbrola-ir1 are not installed (.ci/mbrola.sh installs them as root)",
)
BOTH_VOICES = [
    pytest.param(ESPEAK_FA, marks=needs_tools),
    pytest.param(MBROLA_IR1, marks=[needs_tools, needs_mbrola]),
]

# What main rendered before this work (espeak-fa; «و» a fragment of its own; espeak-ng's own
# silences; 0.3 s pauses), measured with `ivr prompts build` and the durations of the files:
BEFORE_SECONDS = {"1587": 4.98, "124": 3.36, "tracking 1000000202": 7.29}
BEFORE_LONGEST = ("category.menu", 33.04)


def spoken(prompts_dir: Path) -> dict[str, list[str]]:
    tracking = "1000000202"
    return {
        "1587": speech.number_fragments(1587),
        "124": speech.number_fragments(124),
        f"tracking {tracking}": speech.digits_fragments(tracking, speech.tracking_groups(tracking)),
    }


def total_seconds(prompts_dir: Path, fragments: list[str]) -> float:
    return sum(read_wav_info(audio_path(prompts_dir, f)).duration for f in fragments)


# --- sox, called here independently of ivr.audio ------------------------------------------------


def sox_stat(path: Path, *effects: str) -> dict[str, float]:
    """sox's ``stat`` effect (amplitudes as fractions of full scale, length in seconds)."""
    done = subprocess.run(
        ["sox", str(path), "-n", *effects, "stat"], capture_output=True, text=True, check=True
    )
    values = {}
    for line in done.stderr.splitlines():
        match = re.match(r"^([A-Za-z ()]+?):\s+(-?[\d.]+(?:e[-+]?\d+)?)\s*$", line.strip())
        if match:
            values[match[1].strip()] = float(match[2])
    return values


def db(amplitude: float) -> float:
    import math

    return 20 * math.log10(amplitude) if amplitude > 0 else float("-inf")


def speech_rms_db(path: Path) -> float:
    """The RMS of the speech alone: every pause longer than 20 ms cut out by sox's silence."""
    stats = sox_stat(path, "silence", "1", "0.01", "-50d", "-1", "0.02", "-50d")
    return db(stats["RMS     amplitude"])


def edge_silence(path: Path, threshold_db: float = -60) -> tuple[float, float]:
    """Seconds before the first and after the last sample louder than ``threshold_db``."""
    total = sox_stat(path)["Length (seconds)"]
    trim = ("silence", "1", "0.001", f"{threshold_db}d")
    lead = total - sox_stat(path, *trim)["Length (seconds)"]
    tail = total - sox_stat(path, "reverse", *trim)["Length (seconds)"]
    return lead, tail


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BOTH_VOICES)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real catalogue (menus, fragments, Qom's places) rendered with one voice."""
    root = tmp_path_factory.mktemp(f"rendered-{request.param}") / "prompts"
    root.mkdir()
    for source in REPO_PROMPTS.glob("*.toml"):
        shutil.copy(source, root / source.name)
    build(root, voice=VOICES[request.param])
    return root


# --- the choice of voice ------------------------------------------------------------------------


def test_the_setting_accepts_the_two_voices_or_nothing() -> None:
    assert Settings(voice="mbrola-ir1").voice == MBROLA_IR1
    assert Settings(voice="espeak-fa").voice == ESPEAK_FA
    assert Settings().voice == ""
    with pytest.raises(ValidationError, match="mbrola-ir1"):
        Settings(voice="festival")


def test_a_named_voice_is_used_and_an_unknown_one_refused() -> None:
    if is_installed(VOICES[ESPEAK_FA]):
        assert choose_voice(ESPEAK_FA).voice.name == ESPEAK_FA
        assert choose_voice(ESPEAK_FA).notice is None
    with pytest.raises(VoiceError, match="unknown voice 'festival'"):
        choose_voice("festival")


@needs_mbrola
def test_mbrola_is_the_default_where_installed() -> None:
    choice = choose_voice()
    assert choice.voice.name == MBROLA_IR1
    assert choice.voice.espeak_voice == "mb-ir1"
    assert choice.notice is None


@pytest.fixture
def path_without_mbrola(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """PATH holding only espeak-ng and sox: a machine where mbrola is not installed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("espeak-ng", "sox"):
        need(tool, tool)
        (bin_dir / tool).symlink_to(str(shutil.which(tool)))
    monkeypatch.setenv("PATH", str(bin_dir))
    return str(bin_dir)


def test_without_mbrola_espeak_is_the_fallback_and_says_so(path_without_mbrola: str) -> None:
    assert not is_installed(VOICES[MBROLA_IR1])
    choice = choose_voice()
    assert choice.voice.name == ESPEAK_FA
    assert choice.notice is not None and "mbrola-ir1 is not installed" in choice.notice
    with pytest.raises(VoiceError, match=r"mbrola-ir1 is not installed: run \.ci/mbrola\.sh"):
        choose_voice(MBROLA_IR1)


def _cli_env(prompts_dir: Path, path: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
    env["IVR_PROMPTS_DIR"] = str(prompts_dir)
    env["IVR_GENERATED_PROMPTS_DIR"] = str(prompts_dir / "generated")
    if path is not None:
        env["PATH"] = path
    env.update(extra)
    return env


def _ivr() -> str:
    import sys

    return str(Path(sys.executable).with_name("ivr"))


@pytest.fixture
def small_prompts(tmp_path: Path) -> Path:
    root = tmp_path / "small"
    root.mkdir()
    (root / "catalog.toml").write_text(
        'pause = ""\n[main]\nwelcome = "به سامانه خوش آمدید"\n', encoding="utf-8"
    )
    (root / "fragments.toml").write_text('[num]\n1 = "یک"\n', encoding="utf-8")
    return root


@needs_tools
def test_build_without_mbrola_says_once_it_falls_back(
    small_prompts: Path, path_without_mbrola: str
) -> None:
    done = subprocess.run(
        [_ivr(), "prompts", "build"],
        env=_cli_env(small_prompts, path_without_mbrola),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("mbrola-ir1 is not installed") == 1
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith("voice espeak-fa: rendered")
    manifest = read_manifest(small_prompts)
    assert manifest["main.welcome"]["voice"] == ESPEAK_FA

    asked = subprocess.run(
        [_ivr(), "prompts", "build"],
        env=_cli_env(small_prompts, path_without_mbrola, IVR_VOICE="mbrola-ir1"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert refusal(asked, "prompts build") == (
        "the voice mbrola-ir1 is not installed: run .ci/mbrola.sh as root "
        "(Debian packages mbrola, mbrola-ir1)"
    )


@needs_tools
@needs_mbrola
def test_changing_the_voice_renders_everything_again(small_prompts: Path) -> None:
    ids = sorted(load_catalog(small_prompts, places={}))
    first = build(small_prompts, voice=VOICES[ESPEAK_FA], places={})
    assert sorted(first.rendered) == ids
    espeak_audio = (small_prompts / "generated/fa/main-welcome.wav").read_bytes()
    manifest = json.loads((small_prompts / "generated/manifest.json").read_text("utf-8"))
    assert manifest["voice"] == ESPEAK_FA
    assert manifest["prompts"]["main.welcome"]["voice"] == ESPEAK_FA
    assert manifest["prompts"]["pause"]["voice"] == "silence"

    assert build(small_prompts, voice=VOICES[ESPEAK_FA], places={}).rendered == []
    second = build(small_prompts, voice=VOICES[MBROLA_IR1], places={})
    assert sorted(second.rendered) == ids and second.unchanged == []
    assert read_manifest(small_prompts)["main.welcome"]["voice"] == MBROLA_IR1
    assert (small_prompts / "generated/fa/main-welcome.wav").read_bytes() != espeak_audio
    assert build(small_prompts, voice=VOICES[MBROLA_IR1], places={}).rendered == []


@needs_tools
def test_cli_voice_option_overrides_the_setting(small_prompts: Path) -> None:
    done = subprocess.run(
        [_ivr(), "prompts", "build", "--voice", "espeak-fa"],
        env=_cli_env(small_prompts, IVR_VOICE="mbrola-ir1"),
        capture_output=True,
        text=True,
        check=False,
    )
    if not is_installed(VOICES[MBROLA_IR1]) and done.returncode != 0:
        pytest.fail(done.stderr)
    assert done.returncode == 0, done.stderr
    assert read_manifest(small_prompts)["main.welcome"]["voice"] == ESPEAK_FA


# --- the finished audio, measured with sox ------------------------------------------------------


def test_every_generated_prompt_is_telephone_audio_evenly_loud_and_unclipped(
    rendered: Path,
) -> None:
    catalog = load_catalog(rendered)
    speech_levels = {}
    for prompt_id, prompt in catalog.items():
        path = audio_path(rendered, prompt_id)
        info = read_wav_info(path)
        assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2), prompt_id
        stats = sox_stat(path)
        peak = max(stats["Maximum amplitude"], -stats["Minimum amplitude"])
        if prompt.is_silence:
            assert peak == 0, prompt_id
            continue
        # Headroom: no sample above -1 dBFS (sox prints amplitudes to 6 places).
        assert db(peak) <= audio.PEAK_CEILING_DB + 0.01, (prompt_id, db(peak))
        speech_levels[prompt_id] = (speech_rms_db(path), db(peak))
    low = min(level for level, _ in speech_levels.values())
    high = max(level for level, _ in speech_levels.values())
    print(f"{rendered.parent.name}: speech RMS {low:.2f} … {high:.2f} dBFS")
    for prompt_id, (level, peak_db) in speech_levels.items():
        assert level <= audio.TARGET_RMS_DB + 1.5, (prompt_id, level)
        if level < audio.TARGET_RMS_DB - 1.5:
            # Quieter only where the headroom stopped the gain: the peak sits at the ceiling.
            assert peak_db >= audio.PEAK_CEILING_DB - 0.1, (prompt_id, level, peak_db)
    assert high - low <= 2.5


def test_every_generated_prompt_starts_and_ends_with_the_same_small_margin(
    rendered: Path,
) -> None:
    margins = {}
    for prompt_id, prompt in load_catalog(rendered).items():
        if prompt.is_silence:
            continue
        margins[prompt_id] = edge_silence(audio_path(rendered, prompt_id))
    for prompt_id, (lead, tail) in margins.items():
        assert 0.03 <= lead <= 0.08, (prompt_id, lead)
        assert 0.03 <= tail <= 0.08, (prompt_id, tail)


def test_the_pause_between_digit_groups_is_short_silence(rendered: Path) -> None:
    path = audio_path(rendered, "pause")
    assert sox_stat(path)["Length (seconds)"] == pytest.approx(audio.PAUSE_SECONDS, abs=0.001)
    assert sox_stat(path)["Maximum amplitude"] == 0


def test_no_prompt_is_longer_than_20_seconds(rendered: Path) -> None:
    lengths = {
        pid: read_wav_info(audio_path(rendered, pid)).duration for pid in load_catalog(rendered)
    }
    longest = max(lengths, key=lengths.__getitem__)
    print(
        f"{rendered.parent.name}: longest {longest} {lengths[longest]:.2f} s "
        f"(before: {BEFORE_LONGEST[0]} {BEFORE_LONGEST[1]:.2f} s)"
    )
    assert lengths[longest] <= 20, longest
    assert lengths["category.menu"] < BEFORE_LONGEST[1]


def _old_render(voice: str, text: str, out: Path) -> None:
    """The previous pipeline, for comparison: espeak-ng's file resampled, peak-normalised."""
    raw = out.with_suffix(".raw.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-b", "1", "--stdin", "-w", str(raw)],
        input=text.encode("utf-8"),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "sox",
            str(raw),
            "-r",
            "8000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            str(out),
            "gain",
            "-n",
            "-1",
        ],
        check=True,
        capture_output=True,
    )


def _old_fragments(new_fragments: list[str]) -> list[str]:
    """The same words as before this work: each "-o" form was the word, then «و» on its own."""
    old: list[str] = []
    for fragment in new_fragments:
        if fragment.endswith("-o"):
            old += [fragment.removesuffix("-o"), "word.and"]
        else:
            old.append(fragment)
    return old


def test_numbers_and_tracking_numbers_are_shorter_than_before(
    rendered: Path, tmp_path: Path
) -> None:
    manifest_voice = read_manifest(rendered)["num.1"]["voice"]
    espeak_voice = VOICES[manifest_voice].espeak_voice
    texts = speech.load_fragment_texts(rendered / "fragments.toml") | {"word.and": "و"}
    old_seconds: dict[str, float] = {}
    for fragment_id in {f for frags in spoken(rendered).values() for f in _old_fragments(frags)}:
        out = tmp_path / f"{fragment_id}.wav"
        if fragment_id == "pause":
            old_seconds[fragment_id] = 0.3
            continue
        _old_render(espeak_voice, texts[fragment_id], out)
        old_seconds[fragment_id] = read_wav_info(out).duration

    for name, fragments in spoken(rendered).items():
        now = total_seconds(rendered, fragments)
        old_way = sum(old_seconds[f] for f in _old_fragments(fragments))
        print(
            f"{manifest_voice} {name}: {now:.2f} s in {len(fragments)} files "
            f"(same voice, old joins: {old_way:.2f} s; main before: {BEFORE_SECONDS[name]} s)"
        )
        assert now < old_way, name
        assert now < BEFORE_SECONDS[name], name
    assert len(spoken(rendered)["1587"]) == 4


@needs_tools
def test_finish_trims_normalises_and_never_clips_a_full_scale_file(tmp_path: Path) -> None:
    """A full-scale square wave at 22.05 kHz overshoots when resampled (as the MBROLA voice's
    peaks near full scale would): the finished file still has its headroom, and its second of
    leading silence (and 0.7 s trailing) is cut to the margin."""
    raw, out = tmp_path / "raw.wav", tmp_path / "out.wav"
    subprocess.run(
        ["sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(raw),
         "synth", "0.5", "square", "440", "gain", "-n", "0", "pad", "1", "0.7"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert sox_stat(raw)["Maximum amplitude"] > 0.99
    audio.finish(raw, out)
    info = read_wav_info(out)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert info.duration == pytest.approx(0.5 + 2 * audio.MARGIN_SECONDS, abs=0.01)
    stats = sox_stat(out)
    peak = max(stats["Maximum amplitude"], -stats["Minimum amplitude"])
    assert db(peak) <= audio.PEAK_CEILING_DB + 0.01
    lead, tail = edge_silence(out)
    assert lead == pytest.approx(audio.MARGIN_SECONDS, abs=0.005)
    assert tail == pytest.approx(audio.MARGIN_SECONDS, abs=0.005)


@needs_tools
def test_finish_refuses_a_silent_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw.wav"
    subprocess.run(
        ["sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(raw), "trim", "0", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with pytest.raises(audio.AudioError, match="only silence"):
        audio.finish(raw, tmp_path / "out.wav")
