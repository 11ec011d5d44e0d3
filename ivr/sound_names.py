"""Asterisk's own sound names (app_queue's queue-*, say.conf's digits/*) made from the catalogue.

Asterisk plays some sentences by names it chooses itself: app_queue's announcements
(``queue-thereare``…) and the number words of ``dialplans/say.conf`` (``digits/25``…), looked up
under the channel language. ``prompts/asterisk/sounds.toml`` says which catalogue prompt each
name is (one data place, so renaming a fragment is one edit there); this module resolves that
table against the catalogue and writes ``<sounds>/fa/<name>.wav`` from the prompts already
installed in ``<sounds>/fa/ivr124/``. A name may be several prompts joined (a word and the «و»
after it, when the catalogue has no "-o" form), so files are concatenated here.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
import wave
from collections.abc import Collection, Mapping
from pathlib import Path

from ivr.prompts import PromptError, file_stem

SOUNDS_FILE = Path("asterisk") / "sounds.toml"
"""The table, relative to the prompts directory (a sub-folder: not a catalogue file)."""

_NAME_RE = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)?$")


class SoundNameError(PromptError):
    """The table is unreadable, names an unsafe sound, or a name has no prompt to be made of."""


def load_table(prompts_dir: Path) -> dict[str, list[list[str]]]:
    """Sound name → its alternatives, each a list of prompt ids; {} without a table."""
    path = Path(prompts_dir) / SOUNDS_FILE
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SoundNameError(f"{path}: {exc}") from exc
    table = data.get("sounds", {})
    if not isinstance(table, dict):
        raise SoundNameError(f"{path}: [sounds] must be a table")
    out: dict[str, list[list[str]]] = {}
    for name, value in table.items():
        if not _NAME_RE.match(name):
            raise SoundNameError(f"{path}: {name!r} is not a plain sound name (a-z 0-9 _ - /)")
        choices = [value] if isinstance(value, str) else value
        if (
            not isinstance(choices, list)
            or not choices
            or not all(isinstance(c, str) and c.split() for c in choices)
        ):
            raise SoundNameError(f"{path}: {name}: expected an id or a list of ids")
        out[name] = [c.split() for c in choices]
    return out


def resolve(
    table: Mapping[str, list[list[str]]], catalog_ids: Collection[str]
) -> dict[str, list[str]]:
    """Sound name → the prompt ids it is made of: the first alternative the catalogue has."""
    out: dict[str, list[str]] = {}
    missing: list[str] = []
    for name, choices in table.items():
        chosen = next((ids for ids in choices if all(i in catalog_ids for i in ids)), None)
        if chosen is None:
            missing.append(f"{name} ({' | '.join(' '.join(c) for c in choices)})")
        else:
            out[name] = chosen
    if missing:
        raise SoundNameError(
            "no catalogue prompt for these Asterisk sounds: " + ", ".join(missing[:10])
        )
    return out


def install(
    prompts_dir: Path, language_dir: Path, installed_dir: Path, catalog_ids: Collection[str]
) -> int:
    """Write ``language_dir/<name>.wav`` for every name in the table; returns how many.

    ``installed_dir`` holds the catalogue's prompts in Asterisk's format (``<stem>.wav``, 8 kHz
    mono 16-bit), as ``prompts.install_asterisk`` has just written them.
    """
    names = resolve(load_table(prompts_dir), catalog_ids)
    for name, ids in names.items():
        dest = Path(language_dir) / f"{name}.wav"
        dest.parent.mkdir(parents=True, exist_ok=True)
        _write_joined([Path(installed_dir) / f"{file_stem(i)}.wav" for i in ids], dest)
    return len(names)


def _write_joined(sources: list[Path], dest: Path) -> None:
    """``sources`` one after the other in one wav, replacing ``dest`` in one step (a PBX may
    be playing it)."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    tmp = Path(name)
    try:
        with wave.open(str(tmp), "wb") as out:
            for i, src in enumerate(sources):
                with wave.open(str(src), "rb") as part:
                    if i == 0:
                        out.setparams(part.getparams())
                    elif part.getparams()[:3] != out.getparams()[:3]:
                        raise SoundNameError(f"{src}: not in the format of {sources[0]}")
                    out.writeframes(part.readframes(part.getnframes()))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; Asterisk usually runs as another user
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
