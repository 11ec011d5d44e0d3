"""The prompt catalogue and its audio.

Every caller-facing sentence has an id in ``prompts/*.toml`` (plus the place names from
``ivr.provinces``). Audio for an id comes from a studio recording in ``prompts/fa/<stem>.wav``
when a person has placed one there, otherwise from ``prompts/generated/fa/<stem>.wav``, rendered
by a development voice (espeak-ng) and converted with sox to what Asterisk plays: 8 kHz mono
16-bit PCM. A manifest (id → text → checksum) lets a build re-render only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
import wave
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

LANGUAGE = "fa"
STUDIO_DIR = LANGUAGE  # prompts/fa/: recordings placed by a person, never written by us
GENERATED_DIR = "generated"  # prompts/generated/: ours, git-ignored, safe to delete
MANIFEST = "manifest.json"
ASTERISK_SUBDIR = "ivr124"  # Asterisk plays "ivr124/<stem>" with channel language fa

SAMPLE_RATE = 8000  # Asterisk refuses .wav at any other rate ("frequency mismatch")
CHANNELS = 1
SAMPLE_WIDTH = 2  # bytes: 16-bit signed PCM
SILENCE_SECONDS = 0.3

# The sox arguments for each output, kept as data so they are part of the checksum: changing how
# audio is produced must re-render it.
_SOX_FORMAT = ["-r", str(SAMPLE_RATE), "-c", str(CHANNELS), "-b", "16", "-e", "signed-integer"]
_SOX_VOICE_EFFECTS = ["gain", "-n", "-1"]  # normalise to -1 dBFS: loud enough, never clipped
_PIPELINE = "sox:" + " ".join(_SOX_FORMAT + _SOX_VOICE_EFFECTS)

_TOOLS = {"espeak-ng": "espeak-ng", "sox": "sox"}  # command → Debian package
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
PLACES_SOURCE = "ivr.provinces.place_prompts()"


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


class Voice(Protocol):
    """A synthesiser: writes a wav of any PCM format for ``text``; the pipeline converts it."""

    @property
    def settings(self) -> str:
        """Everything that changes the sound, so a change re-renders every prompt."""
        ...

    def synthesize(self, text: str, out: Path) -> None: ...


@dataclass(frozen=True)
class EspeakVoice:
    """espeak-ng: robotic but offline and installable everywhere; for development."""

    voice: str = "fa"
    speed: int | None = None  # words per minute; espeak-ng's default (175) when None
    pitch: int | None = None  # 0-99; espeak-ng's default (50) when None

    @property
    def settings(self) -> str:
        return f"espeak-ng -v {self.voice} -s {self.speed} -p {self.pitch}"

    def synthesize(self, text: str, out: Path) -> None:
        cmd = [_tool("espeak-ng"), "-v", self.voice, "-b", "1", "--stdin", "-w", str(out)]
        if self.speed is not None:
            cmd += ["-s", str(self.speed)]
        if self.pitch is not None:
            cmd += ["-p", str(self.pitch)]
        # Text goes through stdin as UTF-8 bytes: no shell, no option parsing of a leading "-".
        _run(cmd, stdin=text.encode("utf-8"))


# --- the catalogue -----------------------------------------------------------------------------


def file_stem(prompt_id: str) -> str:
    """The sound file name for an id: Asterisk mishandles dots in sound names."""
    return prompt_id.replace(".", "-")


def load_catalog(
    prompts_dir: Path, places: Mapping[str, str] | None = None
) -> dict[str, PromptText]:
    """Every prompt id → its text, from all ``prompts_dir/*.toml`` files and the place names.

    ``places`` defaults to ``ivr.provinces.place_prompts()``; tests pass their own. Raises
    ``PromptError`` for an id defined twice (naming both sources), an id that is not a plain
    dotted name, or two ids that would share a sound file name.
    """
    if places is None:
        from ivr.provinces import place_prompts

        places = place_prompts()

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
    for prompt_id, text in places.items():
        add(PromptText(prompt_id, text, text, PLACES_SOURCE))

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


def generated_path(prompts_dir: Path, prompt_id: str) -> Path:
    return Path(prompts_dir) / GENERATED_DIR / LANGUAGE / f"{file_stem(prompt_id)}.wav"


def audio_path(prompts_dir: Path, prompt_id: str) -> Path | None:
    """The file to play for an id: a studio recording wins over a generated one; None if neither.

    Ids that are not plain dotted names give None, so a web route can pass user input safely.
    """
    if not _ID_RE.match(prompt_id):
        return None
    for path in (studio_path(prompts_dir, prompt_id), generated_path(prompts_dir, prompt_id)):
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
            "pipeline": _PIPELINE,
            "silence_s": SILENCE_SECONDS,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def build(
    prompts_dir: Path,
    voice: Voice | None = None,
    places: Mapping[str, str] | None = None,
) -> BuildReport:
    """Render missing or changed prompts, drop generated files of ids no longer in the catalogue.

    Studio recordings are never touched and suppress rendering of their id. Rendering runs on a
    thread pool (the work is in espeak-ng and sox subprocesses). The manifest is written even when
    some renders fail, so the successful ones are not redone; the first failure is then raised.
    """
    prompts_dir = Path(prompts_dir)
    voice = voice or EspeakVoice()
    catalog = load_catalog(prompts_dir, places)
    out_dir = prompts_dir / GENERATED_DIR / LANGUAGE
    manifest_path = prompts_dir / GENERATED_DIR / MANIFEST
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
        entry = _manifest_entry(prompt, digest)
        previous = old.get(prompt.id, {})
        if previous.get("checksum") == digest and generated_path(prompts_dir, prompt.id).is_file():
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
                _render(prompt, voice, generated_path(prompts_dir, prompt.id))
            except Exception as exc:  # collected, so one bad prompt does not lose the rest
                return prompt, digest, exc
            return prompt, digest, None

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for prompt, digest, exc in pool.map(render_one, todo):
                if exc is None:
                    report.rendered.append(prompt.id)
                    new[prompt.id] = _manifest_entry(prompt, digest)
                else:
                    errors.append(exc)

    wanted = {generated_path(prompts_dir, pid).name for pid in catalog}
    for prompt_id in sorted(set(old) - set(catalog)):
        path = generated_path(prompts_dir, prompt_id)
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
            {"version": 1, "voice": voice.settings, "prompts": new},
            ensure_ascii=False,
            indent=1,
            sort_keys=True,
        ).encode("utf-8"),
    )
    if errors:
        raise errors[0]
    return report


def _manifest_entry(prompt: PromptText, digest: str) -> dict[str, str]:
    return {
        "text": prompt.text,
        "say": prompt.say,
        "checksum": digest,
        "file": f"{LANGUAGE}/{file_stem(prompt.id)}.wav",
    }


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
        if prompt.is_silence:
            _run([_tool("sox"), "-n", *_SOX_FORMAT, str(final), "trim", "0", str(SILENCE_SECONDS)])
        else:
            voice.synthesize(prompt.say, raw)
            if not raw.is_file() or raw.stat().st_size == 0:
                raise PromptError(f"{prompt.id}: the voice wrote no audio for {prompt.say!r}")
            _run([_tool("sox"), str(raw), *_SOX_FORMAT, str(final), *_SOX_VOICE_EFFECTS])
        os.replace(final, out)


# --- Asterisk ----------------------------------------------------------------------------------


def read_wav_info(path: Path) -> WavInfo:
    """Rate, channels, bytes per sample and seconds of a PCM wav (``wave.Error`` if not PCM)."""
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        return WavInfo(rate, w.getnchannels(), w.getsampwidth(), w.getnframes() / rate)


def _is_asterisk_ready(path: Path) -> bool:
    try:
        info = read_wav_info(path)
    except (wave.Error, EOFError):  # μ-law, float, extensible… anything wave cannot read as PCM
        return False
    return (info.rate, info.channels, info.sample_width) == (SAMPLE_RATE, CHANNELS, SAMPLE_WIDTH)


def install_asterisk(
    prompts_dir: Path, target_dir: Path, places: Mapping[str, str] | None = None
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
    sources = {pid: audio_path(prompts_dir, pid) for pid in catalog}
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
    _atomic(dest, lambda tmp: _run([_tool("sox"), str(src), *_SOX_FORMAT, str(tmp)]))


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


def _run(cmd: list[str], stdin: bytes | None = None) -> None:
    result = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        stderr = result.stderr.decode("utf-8", "replace").strip()
        raise PromptError(f"{Path(cmd[0]).name} failed ({result.returncode}): {stderr}")
