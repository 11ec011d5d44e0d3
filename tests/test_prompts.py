"""The prompt catalogue, the espeak-ng + sox build and the Asterisk installer, on a fixture."""

from __future__ import annotations

import json
import math
import shutil
import struct
import time
import wave
from pathlib import Path

import pytest

from ivr import prompts
from ivr.prompts import (
    PromptError,
    ToolMissingError,
    audio_path,
    build,
    file_stem,
    install_asterisk,
    load_catalog,
    read_wav_info,
)

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
PLACES = {"place.test.alpha": "شهرک صنعتی آزمایشی"}

CATALOG_TOML = """\
pause = ""

[main]
welcome = "به سامانه ۱۲۴ خوش آمدید"
menu = { text = "برای ثبت درخواست، یک را فشار دهید", say = "برای ثبتِ درخواست، یک را فشار دهید" }

[main.invalid]
retry = "گزینه نامعتبر است"
"""

FRAGMENTS_TOML = """\
[num]
1 = "یک"
2 = "دو"
"""

FIXTURE_IDS = [
    "main.invalid.retry",
    "main.menu",
    "main.welcome",
    "num.1",
    "num.2",
    "pause",
    "place.test.alpha",
]

needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None,
    reason="espeak-ng and sox (Debian packages) are needed to render prompts",
)


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    root = tmp_path / "prompts"
    root.mkdir()
    (root / "catalog.toml").write_text(CATALOG_TOML, encoding="utf-8")
    (root / "fragments.toml").write_text(FRAGMENTS_TOML, encoding="utf-8")
    return root


def write_wav(path: Path, rate: int, channels: int, seconds: float = 0.5) -> None:
    """A 440 Hz tone, written with ``wave`` so the fixture does not depend on sox."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = bytearray()
    for i in range(int(rate * seconds)):
        sample = int(8000 * math.sin(2 * math.pi * 440 * i / rate))
        frames += struct.pack("<h", sample) * channels
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def assert_asterisk_format(path: Path) -> float:
    info = read_wav_info(path)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2), path
    assert info.duration > 0, path
    return info.duration


# --- catalogue -----------------------------------------------------------------------------------


def test_catalog_flattens_files_and_places(prompts_dir: Path) -> None:
    catalog = load_catalog(prompts_dir, places=PLACES)
    assert list(catalog) == FIXTURE_IDS
    assert catalog["pause"].text == ""
    assert catalog["pause"].is_silence
    assert catalog["main.welcome"].say == catalog["main.welcome"].text
    menu = catalog["main.menu"]
    assert menu.text == "برای ثبت درخواست، یک را فشار دهید"
    assert menu.say == "برای ثبتِ درخواست، یک را فشار دهید"
    assert catalog["num.1"].source.endswith("fragments.toml")
    assert catalog["place.test.alpha"].source == prompts.PLACES_SOURCE


def test_catalog_defaults_to_the_province_places(prompts_dir: Path) -> None:
    from ivr.provinces import place_prompts

    catalog = load_catalog(prompts_dir)
    for prompt_id, text in place_prompts().items():
        assert catalog[prompt_id].text == text


def test_file_stem_replaces_dots() -> None:
    assert file_stem("main.invalid.retry") == "main-invalid-retry"
    assert file_stem("place.qom.chap-va-nashr") == "place-qom-chap-va-nashr"
    assert file_stem("pause") == "pause"


def test_duplicate_id_across_files_names_both(prompts_dir: Path) -> None:
    (prompts_dir / "extra.toml").write_text('[main]\nwelcome = "سلام"\n', encoding="utf-8")
    with pytest.raises(PromptError) as err:
        load_catalog(prompts_dir, places={})
    message = str(err.value)
    assert "main.welcome" in message
    assert "catalog.toml" in message and "extra.toml" in message


def test_duplicate_id_with_places_is_an_error(prompts_dir: Path) -> None:
    with pytest.raises(PromptError, match=r"main\.welcome.*catalog\.toml.*place_prompts"):
        load_catalog(prompts_dir, places={"main.welcome": "x"})


def test_ids_sharing_a_file_stem_are_an_error(prompts_dir: Path) -> None:
    (prompts_dir / "extra.toml").write_text('"main-welcome" = "سلام"\n', encoding="utf-8")
    with pytest.raises(PromptError, match="main-welcome"):
        load_catalog(prompts_dir, places={})


def test_non_string_value_is_an_error(prompts_dir: Path) -> None:
    (prompts_dir / "extra.toml").write_text("[x]\ncount = 3\n", encoding="utf-8")
    with pytest.raises(PromptError, match=r"extra\.toml.*x\.count"):
        load_catalog(prompts_dir, places={})


def test_real_catalogue_loads() -> None:
    catalog = load_catalog(REPO_PROMPTS)
    assert catalog, "the place names alone make the catalogue non-empty"
    assert len({file_stem(pid) for pid in catalog}) == len(catalog)


# --- audio paths ---------------------------------------------------------------------------------


def test_audio_path_rejects_unsafe_ids(prompts_dir: Path) -> None:
    for bad in ("../catalog", "a/b", "", "a..b", ".hidden"):
        assert audio_path(prompts_dir, bad) is None
    assert audio_path(prompts_dir, "main.welcome") is None  # nothing built yet


# --- build ---------------------------------------------------------------------------------------


@needs_tools
def test_build_renders_every_prompt_then_nothing(prompts_dir: Path) -> None:
    started = time.perf_counter()
    report = build(prompts_dir, places=PLACES)
    elapsed = time.perf_counter() - started
    print(f"fixture: rendered {len(report.rendered)} prompts in {elapsed:.2f} s")

    assert sorted(report.rendered) == FIXTURE_IDS
    assert report.unchanged == report.studio == report.removed == []
    durations = {}
    for prompt_id in FIXTURE_IDS:
        path = audio_path(prompts_dir, prompt_id)
        assert path == prompts_dir / "generated" / "fa" / f"{file_stem(prompt_id)}.wav"
        durations[prompt_id] = assert_asterisk_format(path)
    assert durations["pause"] == pytest.approx(prompts.audio.PAUSE_SECONDS, abs=0.001)
    assert durations["main.welcome"] > 0.5

    manifest = json.loads((prompts_dir / "generated" / "manifest.json").read_text("utf-8"))
    entry = manifest["prompts"]["main.menu"]
    assert entry["text"] == "برای ثبت درخواست، یک را فشار دهید"
    assert entry["say"] == "برای ثبتِ درخواست، یک را فشار دهید"
    assert entry["file"] == "fa/main-menu.wav"
    assert len(entry["checksum"]) == 64
    assert sorted(manifest["prompts"]) == FIXTURE_IDS

    again = build(prompts_dir, places=PLACES)
    assert again.rendered == [] and again.removed == []
    assert sorted(again.unchanged) == FIXTURE_IDS


@needs_tools
def test_changing_one_text_rerenders_exactly_that_one(prompts_dir: Path) -> None:
    build(prompts_dir, places=PLACES)
    other = prompts_dir / "generated" / "fa" / "main-welcome.wav"
    before = other.stat().st_mtime_ns
    toml = prompts_dir / "fragments.toml"
    toml.write_text(FRAGMENTS_TOML.replace("دو", "دوی دیگر"), encoding="utf-8")

    report = build(prompts_dir, places=PLACES)
    assert report.rendered == ["num.2"]
    assert "num.2" not in report.unchanged and len(report.unchanged) == len(FIXTURE_IDS) - 1
    assert other.stat().st_mtime_ns == before


@needs_tools
def test_changing_only_the_say_text_rerenders(prompts_dir: Path) -> None:
    build(prompts_dir, places=PLACES)
    toml = prompts_dir / "catalog.toml"
    changed = CATALOG_TOML.replace('say = "برای', 'say = "لطفاً برای')
    assert changed != CATALOG_TOML
    toml.write_text(changed, encoding="utf-8")
    report = build(prompts_dir, places=PLACES)
    assert report.rendered == ["main.menu"]
    assert load_catalog(prompts_dir, places=PLACES)["main.menu"].text == (
        "برای ثبت درخواست، یک را فشار دهید"
    )


@needs_tools
def test_changing_only_the_display_text_keeps_the_audio(prompts_dir: Path) -> None:
    build(prompts_dir, places=PLACES)
    toml = prompts_dir / "catalog.toml"
    changed = CATALOG_TOML.replace('text = "برای', 'text = "لطفاً برای')
    toml.write_text(changed, encoding="utf-8")
    report = build(prompts_dir, places=PLACES)
    assert report.rendered == []
    manifest = json.loads((prompts_dir / "generated" / "manifest.json").read_text("utf-8"))
    assert manifest["prompts"]["main.menu"]["text"].startswith("لطفاً")


@needs_tools
def test_a_deleted_generated_file_is_rendered_again(prompts_dir: Path) -> None:
    build(prompts_dir, places=PLACES)
    (prompts_dir / "generated" / "fa" / "num-1.wav").unlink()
    assert build(prompts_dir, places=PLACES).rendered == ["num.1"]


@needs_tools
def test_studio_recording_wins_and_is_never_touched(prompts_dir: Path) -> None:
    studio = prompts_dir / "fa" / "main-welcome.wav"
    write_wav(studio, rate=8000, channels=1)
    content = studio.read_bytes()

    report = build(prompts_dir, places=PLACES)
    assert report.studio == ["main.welcome"]
    assert "main.welcome" not in report.rendered
    assert not (prompts_dir / "generated" / "fa" / "main-welcome.wav").exists()
    assert audio_path(prompts_dir, "main.welcome") == studio

    (prompts_dir / "catalog.toml").write_text(
        CATALOG_TOML.replace("خوش آمدید", "خوش آمدید!"), encoding="utf-8"
    )
    report = build(prompts_dir, places=PLACES)
    assert report.studio == ["main.welcome"] and report.rendered == []
    assert studio.read_bytes() == content


@needs_tools
def test_removing_an_id_removes_its_generated_file(prompts_dir: Path) -> None:
    build(prompts_dir, places=PLACES)
    gone = prompts_dir / "generated" / "fa" / "main-invalid-retry.wav"
    assert gone.is_file()
    stray = prompts_dir / "generated" / "fa" / "left-over.wav"
    write_wav(stray, rate=8000, channels=1)
    (prompts_dir / "catalog.toml").write_text(
        CATALOG_TOML.split("[main.invalid]")[0], encoding="utf-8"
    )

    report = build(prompts_dir, places=PLACES)
    assert sorted(report.removed) == ["left-over", "main.invalid.retry"]
    assert report.rendered == []
    assert not gone.exists() and not stray.exists()
    assert audio_path(prompts_dir, "main.invalid.retry") is None
    manifest = json.loads((prompts_dir / "generated" / "manifest.json").read_text("utf-8"))
    assert "main.invalid.retry" not in manifest["prompts"]


def test_missing_tool_says_which_package(prompts_dir: Path, monkeypatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ToolMissingError, match=r"apt-get install (sox|espeak-ng)"):
        build(prompts_dir, places=PLACES)


# --- Asterisk ------------------------------------------------------------------------------------


@needs_tools
def test_install_asterisk_writes_8khz_mono_16bit(prompts_dir: Path, tmp_path: Path) -> None:
    wrong = prompts_dir / "fa" / "main-welcome.wav"
    write_wav(wrong, rate=22050, channels=2, seconds=0.5)
    right = prompts_dir / "fa" / "num-1.wav"
    write_wav(right, rate=8000, channels=1, seconds=0.4)
    wrong_bytes = wrong.read_bytes()
    build(prompts_dir, places=PLACES)

    sounds = tmp_path / "sounds"
    stale = sounds / "fa" / "ivr124" / "old-prompt.wav"
    write_wav(stale, rate=8000, channels=1)
    count = install_asterisk(prompts_dir, sounds, places=PLACES)

    assert count == len(FIXTURE_IDS)
    out_dir = sounds / "fa" / "ivr124"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        f"{file_stem(pid)}.wav" for pid in FIXTURE_IDS
    )
    for path in out_dir.iterdir():
        assert_asterisk_format(path)
    converted = read_wav_info(out_dir / "main-welcome.wav")
    assert converted.duration == pytest.approx(0.5, abs=0.01)
    assert (out_dir / "num-1.wav").read_bytes() == right.read_bytes()  # already right: copied
    assert (out_dir / "main-menu.wav").read_bytes() == (
        prompts_dir / "generated" / "fa" / "main-menu.wav"
    ).read_bytes()
    assert wrong.read_bytes() == wrong_bytes  # the studio original is left as it was
    assert not stale.exists()


def test_install_asterisk_without_audio_is_an_error(prompts_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="ivr prompts build"):
        install_asterisk(prompts_dir, tmp_path / "sounds", places=PLACES)


def test_read_wav_info(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_wav(path, rate=22050, channels=2, seconds=0.25)
    info = read_wav_info(path)
    assert info == (22050, 2, 2, pytest.approx(0.25, abs=1e-3))


@needs_tools
def test_join_fragments_plays_studio_files_in_any_format_in_line(prompts_dir: Path) -> None:
    from ivr.prompts import join_fragments

    build(prompts_dir, places=PLACES)
    studio = prompts_dir / "fa" / "num-2.wav"
    write_wav(studio, rate=22050, channels=2, seconds=0.5)  # a studio file as a studio sends it
    joined = prompts_dir.parent / "joined.wav"
    joined.write_bytes(join_fragments(prompts_dir, ["num.1", "pause", "num.2"]))
    info = read_wav_info(joined)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    generated = read_wav_info(audio_path(prompts_dir, "num.1")).duration
    assert info.duration == pytest.approx(generated + prompts.audio.PAUSE_SECONDS + 0.5, abs=0.002)
    with pytest.raises(PromptError, match=r"no audio for num\.9 .*ivr prompts build"):
        join_fragments(prompts_dir, ["num.1", "num.9"])
