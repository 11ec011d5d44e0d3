"""The prompt catalogue and its audio.

Every caller-facing sentence has an id in ``prompts/*.toml`` (plus the place names from
``ivr.provinces``). Audio for an id comes from a studio recording in ``prompts/fa/<stem>.wav``
when a person has placed one there, otherwise from ``<generated>/fa/<stem>.wav``, rendered by
a synthetic voice (``ivr.voices``) and finished by ``ivr.audio`` into what Asterisk plays: 8 kHz
mono 16-bit PCM, trimmed and evenly loud. ``<generated>`` is the settings'
``generated_prompts_dir`` (the catalogue itself may sit in a read-only installed package), or
``prompts/generated/`` when none is given. A manifest (id → text → voice → checksum) lets a build
re-render only what changed, and everything when the voice changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import tomllib
import wave
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ivr import audio
from ivr.voices import EspeakVoice, Voice, VoiceError, choose_voice

LANGUAGE = "fa"
STUDIO_DIR = LANGUAGE  # prompts/fa/: recordings placed by a person, never written by us
GENERATED_DIR = "generated"  # <prompts_dir>/generated/ unless told where: ours, safe to delete
MANIFEST = "manifest.json"
ASTERISK_SUBDIR = "ivr124"  # Asterisk plays "ivr124/<stem>" with channel language fa

_TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}  # command → Debian package
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
PLACES_SOURCE = "ivr.provinces.place_prompts()"
CATEGORIES_SOURCE = "ivr.categories.category_prompts()"
AGENCIES_SOURCE = "ivr.agencies.agency_prompts()"


class PromptError(Exception):
    """The catalogue or the audio is not in a usable state (bad TOML, duplicate id, no audio)."""


class ToolMissingError(PromptError):
    """A command-line tool the audio pipeline needs is not installed."""


@dataclass(frozen=True)
class PromptText:
    """One catalogue entry: ``text`` is what people read, ``say`` what the voice is given."""

    id: str
    text: str
    say: str
    source: str  # the file (or provider) it came from, for error messages

    @property
    def is_silence(self) -> bool:
        return not self.say.strip()


@dataclass
class BuildReport:
    """What ``build`` did, by prompt id (stray generated files are reported by file stem)."""

    rendered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    studio: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class WavInfo(NamedTuple):
    rate: int
    channels: int
    sample_width: int  # bytes per sample
    duration: float  # seconds


# --- the catalogue -----------------------------------------------------------------------------


def file_stem(prompt_id: str) -> str:
    """The sound file name for an id: Asterisk mishandles dots in sound names."""
    return prompt_id.replace(".", "-")


def load_catalog(
    prompts_dir: Path, places: Mapping[str, str] | None = None
) -> dict[str, PromptText]:
    """Every prompt id → its text, from all ``prompts_dir/*.toml`` files and the place names.

    ``places`` defaults to the names in the data files: ``ivr.provinces.place_prompts()``,
    ``ivr.categories.category_prompts()`` and ``ivr.agencies.agency_prompts()``; tests pass
    their own. Raises ``PromptError`` for an id defined twice (naming both sources), an id that
    is not a plain dotted name, or two ids that would share a sound file name.
    """
    data_sources: list[tuple[str, Mapping[str, str]]] = [(PLACES_SOURCE, places or {})]
    if places is None:
        from ivr.agencies import agency_prompts
        from ivr.categories import category_prompts
        from ivr.provinces import place_prompts

        data_sources = [
            (PLACES_SOURCE, place_prompts()),
            (CATEGORIES_SOURCE, category_prompts()),
            (AGENCIES_SOURCE, agency_prompts()),
        ]

    catalog: dict[str, PromptText] = {}

    def add(prompt: PromptText) -> None:
        if not _ID_RE.match(prompt.id):
            raise PromptError(f"{prompt.source}: prompt id {prompt.id!r} is not a dotted name")
        if prompt.id in catalog:
            raise PromptError(
                f"prompt id {prompt.id!r} is defined twice: "
                f"in {catalog[prompt.id].source} and in {prompt.source}"
            )
        catalog[prompt.id] = prompt

    for path in sorted(Path(prompts_dir).glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise PromptError(f"{path}: {exc}") from exc
        for prompt in _flatten(data, (), str(path)):
            add(prompt)
    for source, names in data_sources:
        for prompt_id, text in names.items():
            add(PromptText(prompt_id, text, text, source))

    stems: dict[str, str] = {}
    for prompt_id in catalog:
        other = stems.setdefault(file_stem(prompt_id), prompt_id)
        if other != prompt_id:
            raise PromptError(
                f"prompt ids {other!r} ({catalog[other].source}) and {prompt_id!r} "
                f"({catalog[prompt_id].source}) would share the sound file {file_stem(prompt_id)}"
            )
    return dict(sorted(catalog.items()))


def _is_prompt_table(value: dict[str, Any]) -> bool:
    # `{ text = "…", say = "…" }` is one prompt, not a section holding prompts named text/say.
    return "text" in value and set(value) <= {"text", "say"}


def _flatten(table: dict[str, Any], prefix: tuple[str, ...], source: str) -> Iterable[PromptText]:
    for key, value in table.items():
        parts = (*prefix, key)
        prompt_id = ".".join(parts)
        if isinstance(value, str):
            yield PromptText(prompt_id, value, value, source)
        elif isinstance(value, dict) and _is_prompt_table(value):
            text, say = value["text"], value.get("say", value["text"])
            if not isinstance(text, str) or not isinstance(say, str):
                raise PromptError(f"{source}: {prompt_id}: text and say must be strings")
            yield PromptText(prompt_id, text, say, source)
        elif isinstance(value, dict):
            yield from _flatten(value, parts, source)
        else:
            raise PromptError(
                f"{source}: {prompt_id}: expected a string, a table or {{ text, say }}, "
                f"got {type(value).__name__}"
            )


# --- paths -------------------------------------------------------------------------------------


def studio_path(prompts_dir: Path, prompt_id: str) -> Path:
    return Path(prompts_dir) / STUDIO_DIR / f"{file_stem(prompt_id)}.wav"


def generated_root(prompts_dir: Path, generated_dir: Path | None = None) -> Path:
    """Where rendered audio and its manifest live: ``generated_dir`` (the settings'
    ``generated_prompts_dir``, writable), else ``prompts_dir/generated``."""
    return Path(generated_dir) if generated_dir is not None else Path(prompts_dir) / GENERATED_DIR


def generated_path(generated_dir: Path, prompt_id: str) -> Path:
    return Path(generated_dir) / LANGUAGE / f"{file_stem(prompt_id)}.wav"


def audio_path(prompts_dir: Path, prompt_id: str, generated_dir: Path | None = None) -> Path | None:
    """The file to play for an id: a studio recording wins over a generated one; None if neither.

    Ids that are not plain dotted names give None, so a web route can pass user input safely.
    """
    if not _ID_RE.match(prompt_id):
        return None
    rendered = generated_path(generated_root(prompts_dir, generated_dir), prompt_id)
    for path in (studio_path(prompts_dir, prompt_id), rendered):
        if path.is_file():
            return path
    return None


# --- building ----------------------------------------------------------------------------------


def checksum(prompt: PromptText, voice: Voice) -> str:
    """Fingerprint of everything that shapes the audio (not the displayed text)."""
    payload = json.dumps(
        {
            "say": prompt.say if not prompt.is_silence else "",
            "silence": prompt.is_silence,
            "voice": voice.settings,
            "pipeline": audio.PIPELINE,
            "silence_s": audio.PAUSE_SECONDS,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def build(
    prompts_dir: Path,
    voice: Voice | None = None,
    places: Mapping[str, str] | None = None,
    generated_dir: Path | None = None,
) -> BuildReport:
    """Render missing or changed prompts, drop generated files of ids no longer in the catalogue.

    ``voice`` defaults to the best one installed (``ivr.voices.choose_voice``); the manifest
    records it for every file, and a file made by another voice is rendered again. Studio
    recordings are never touched and suppress rendering of their id. Rendering runs on a thread
    pool (the work is in espeak-ng and sox subprocesses). The manifest is written even when some
    renders fail, so the successful ones are not redone; the first failure is then raised.
    """
    prompts_dir = Path(prompts_dir)
    voice = voice or choose_voice().voice
    catalog = load_catalog(prompts_dir, places)
    generated = generated_root(prompts_dir, generated_dir)
    out_dir = generated / LANGUAGE
    manifest_path = generated / MANIFEST
    old = _read_manifest(manifest_path)
    new: dict[str, dict[str, str]] = {}
    report = BuildReport()
    todo: list[tuple[PromptText, str]] = []

    for prompt in catalog.values():
        if studio_path(prompts_dir, prompt.id).is_file():
            report.studio.append(prompt.id)
            if prompt.id in old:  # keep the entry: the generated file may still be there
                new[prompt.id] = old[prompt.id]
            continue
        digest = checksum(prompt, voice)
        entry = _manifest_entry(prompt, digest, voice)
        previous = old.get(prompt.id, {})
        if previous.get("checksum") == digest and generated_path(generated, prompt.id).is_file():
            report.unchanged.append(prompt.id)
            new[prompt.id] = entry  # the displayed text may have changed without the sound
        else:
            todo.append((prompt, digest))

    if todo:
        needed = ["sox"] + (["espeak-ng"] if isinstance(voice, EspeakVoice) else [])
        for tool in needed:
            _tool(tool)
    out_dir.mkdir(parents=True, exist_ok=True)

    errors: list[Exception] = []
    if todo:

        def render_one(item: tuple[PromptText, str]) -> tuple[PromptText, str, Exception | None]:
            prompt, digest = item
            try:
                _render(prompt, voice, generated_path(generated, prompt.id))
            except Exception as exc:  # collected, so one bad prompt does not lose the rest
                return prompt, digest, exc
            return prompt, digest, None

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for prompt, digest, exc in pool.map(render_one, todo):
                if exc is None:
                    report.rendered.append(prompt.id)
                    new[prompt.id] = _manifest_entry(prompt, digest, voice)
                else:
                    errors.append(exc)

    wanted = {generated_path(generated, pid).name for pid in catalog}
    for prompt_id in sorted(set(old) - set(catalog)):
        path = generated_path(generated, prompt_id)
        if path.name not in wanted:
            path.unlink(missing_ok=True)
        report.removed.append(prompt_id)
    for path in sorted(out_dir.glob("*.wav")):  # strays: files no manifest knows about
        if path.name not in wanted:
            path.unlink()
            report.removed.append(path.stem)

    _write_atomic(
        manifest_path,
        json.dumps(
            {"version": 2, "voice": voice.name, "prompts": new},
            ensure_ascii=False,
            indent=1,
            sort_keys=True,
        ).encode("utf-8"),
    )
    if errors:
        raise errors[0]
    return report


def _manifest_entry(prompt: PromptText, digest: str, voice: Voice) -> dict[str, str]:
    return {
        "text": prompt.text,
        "say": prompt.say,
        "voice": "silence" if prompt.is_silence else voice.name,
        "checksum": digest,
        "file": f"{LANGUAGE}/{file_stem(prompt.id)}.wav",
    }


def read_manifest(
    prompts_dir: Path, generated_dir: Path | None = None
) -> dict[str, dict[str, str]]:
    """What the last build made, by id: text, say, voice, checksum, file ({} before any build)."""
    return _read_manifest(generated_root(prompts_dir, generated_dir) / MANIFEST)


def join_fragments(
    prompts_dir: Path, prompt_ids: Iterable[str], generated_dir: Path | None = None
) -> bytes:
    """The audio of ``prompt_ids`` one after another, as one 8 kHz mono 16-bit WAV: what a
    caller hears when the IVR plays them in a row (studio recordings win, as on a call)."""
    ids = list(prompt_ids)
    paths = [audio_path(prompts_dir, prompt_id, generated_dir) for prompt_id in ids]
    missing = [prompt_id for prompt_id, path in zip(ids, paths, strict=True) if path is None]
    if missing:
        raise PromptError(f"no audio for {', '.join(missing)} (run `ivr prompts build`)")
    try:
        return audio.join([path for path in paths if path is not None])
    except audio.AudioError as exc:
        raise PromptError(str(exc)) from exc


def _read_manifest(path: Path) -> dict[str, dict[str, str]]:
    # An unreadable manifest only costs a full re-render, so it is not an error.
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        prompts = data["prompts"]
        return {k: v for k, v in prompts.items() if isinstance(v, dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _render(prompt: PromptText, voice: Voice, out: Path) -> None:
    """Write ``out`` atomically, so an interrupted build never leaves a truncated file behind."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".render-") as tmp:
        raw, final = Path(tmp) / "raw.wav", Path(tmp) / "final.wav"
        try:
            if prompt.is_silence:
                audio.silence(final)
            else:
                voice.synthesize(prompt.say, raw)
                if not raw.is_file() or raw.stat().st_size == 0:
                    raise PromptError(f"{prompt.id}: the voice wrote no audio for {prompt.say!r}")
                audio.finish(raw, final)
        except (audio.AudioError, VoiceError) as exc:
            raise PromptError(f"{prompt.id}: {exc}") from exc
        os.replace(final, out)


# --- Asterisk ----------------------------------------------------------------------------------


def read_wav_info(path: Path) -> WavInfo:
    """Rate, channels, bytes per sample and seconds of a PCM wav (``wave.Error`` if not PCM)."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        return WavInfo(rate, w.getnchannels(), w.getsampwidth(), w.getnframes() / rate)


def _is_asterisk_ready(path: Path) -> bool:
    return audio.is_telephone_format(path)


def install_asterisk(
    prompts_dir: Path,
    target_dir: Path,
    places: Mapping[str, str] | None = None,
    generated_dir: Path | None = None,
) -> int:
    """Write every prompt to ``target_dir/fa/ivr124/<stem>.wav`` as 8 kHz mono 16-bit PCM.

    ``target_dir`` is Asterisk's sounds directory. Studio files in another format are converted
    with sox; the rest are copied. Stale ``.wav`` files in ``fa/ivr124/`` (a directory that is
    ours alone) are removed so Asterisk cannot play a prompt that left the catalogue. Raises
    ``PromptError`` listing the ids without audio (run ``build`` first). Returns the count written.

    The sounds Asterisk plays by names of its own (app_queue's ``fa/queue-*.wav``, say.conf's
    ``fa/digits/*.wav``) are made from them too, as ``prompts_dir/asterisk/sounds.toml`` says.
    """
    prompts_dir = Path(prompts_dir)
    catalog = load_catalog(prompts_dir, places)
    sources = {pid: audio_path(prompts_dir, pid, generated_dir) for pid in catalog}
    missing = [pid for pid, src in sources.items() if src is None]
    if missing:
        shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
        raise PromptError(
            f"{len(missing)} prompt(s) have no audio (run `ivr prompts build`): {shown}"
        )

    dest_dir = Path(target_dir) / LANGUAGE / ASTERISK_SUBDIR
    dest_dir.mkdir(parents=True, exist_ok=True)

    def install_one(item: tuple[str, Path | None]) -> None:
        prompt_id, src = item
        assert src is not None
        dest = dest_dir / f"{file_stem(prompt_id)}.wav"
        if _is_asterisk_ready(src):
            _copy_atomic(src, dest)
        else:
            _convert_atomic(src, dest)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(install_one, sources.items()))

    wanted = {f"{file_stem(pid)}.wav" for pid in catalog}
    for path in dest_dir.glob("*.wav"):
        if path.name not in wanted:
            path.unlink()
    from ivr import sound_names  # it builds on this module

    return len(sources) + sound_names.install(prompts_dir, dest_dir.parent, dest_dir, catalog)


def _copy_atomic(src: Path, dest: Path) -> None:
    _atomic(dest, lambda tmp: shutil.copyfile(src, tmp))


def _convert_atomic(src: Path, dest: Path) -> None:
    _atomic(dest, lambda tmp: audio.convert(src, tmp))


def _atomic(dest: Path, write: Callable[[Path], object]) -> None:
    # A PBX may be playing the old file: replace it in one step, never half-written.
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; Asterisk usually runs as another user
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _write_atomic(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    _atomic(dest, lambda tmp: tmp.write_bytes(data))


# --- subprocesses ------------------------------------------------------------------------------


def _tool(name: str) -> str:
    """The full path of a required command, or an error that says which package provides it."""
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(
            f"{name} is not installed (or not on PATH); install the Debian package "
            f"{_TOOLS[name]}: apt-get install {_TOOLS[name]}"
        )
    return path
