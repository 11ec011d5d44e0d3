"""Each province's industrial towns and zones, and the numbers that reach its 124, loaded from
``<province>.toml`` in the provinces folder (``IVR_PROVINCES_DIR``, by default beside this file).

The called number chooses the province (``province_for_number``): one node can answer the 124 of
several provinces, and a number no province claims is the node's own (``IVR_PROVINCE``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ivr.settings import get_settings
from ivr.speech import normalize_digits

PACKAGE_DIR = Path(__file__).parent
"""The provinces shipped with the package (the default ``IVR_PROVINCES_DIR``)."""


class ProvinceError(KeyError):
    """An unknown province, or a province file that cannot be used; the message says which.

    A KeyError (a failed look-up by code) that prints its message as written, not quoted.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Place:
    key: str
    id: str
    name: str


@dataclass(frozen=True)
class Province:
    code: str
    name: str
    towns: tuple[Place, ...]
    zones: tuple[Place, ...]
    numbers: tuple[str, ...] = ()
    """The called numbers that reach this province's 124, normalised (``normalize_number``)."""

    def prompt_id(self, place: Place) -> str:
        return f"place.{self.code}.{place.id}"

    def place(self, place_id: str) -> Place | None:
        return next((p for p in (*self.towns, *self.zones) if p.id == place_id), None)


def provinces_dir() -> Path:
    """The folder in use: the settings' ``provinces_dir`` (read when asked, so the engine, the
    prompt catalogue and the session always agree on it)."""
    return get_settings().provinces_dir


def _folder(folder: Path | None) -> Path:
    # The settings' own Path object: it hashes once, so the caches below cost a dict look-up.
    return provinces_dir() if folder is None else Path(folder)


def load_province(code: str, folder: Path | None = None) -> Province:
    """The province ``code`` from ``folder`` (default: the folder in use); ProvinceError if
    there is no such file or it is malformed."""
    return _load(_folder(folder), code)


@cache
def _load(folder: Path, code: str) -> Province:
    path = folder / f"{code}.toml"
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", code) or not path.is_file():
        known = ", ".join(p.stem for p in sorted(folder.glob("*.toml"))) or "none"
        raise ProvinceError(f"unknown province {code!r} in {folder} (known: {known})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))

        def places(key: str) -> tuple[Place, ...]:
            return tuple(Place(str(p["key"]), p["id"], p["name"]) for p in data.get(key, []))

        numbers = tuple(normalize_number(str(n)) for n in data.get("numbers", []))
        return Province(code, data["name"], places("towns"), places("zones"), numbers)
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ProvinceError(f"{path}: not a usable province file ({exc!r})") from exc


def all_provinces(folder: Path | None = None) -> list[Province]:
    folder = _folder(folder)
    return [_load(folder, path.stem) for path in sorted(folder.glob("*.toml"))]


def normalize_number(number: str | None) -> str:
    """A called number in one form: ASCII digits, no separators, no country code, no trunk 0.

    ``+98 25 124``, ``009825124``, ``۰۲۵۱۲۴`` and ``025-124`` all become ``25124``; a SIP address
    (``sip:124@pbx``) gives its user part. Anything without digits gives "".
    """
    text = normalize_digits(number or "").strip()
    if text.startswith("sip:"):
        text = text[4:].split("@", 1)[0]
    text = re.sub(r"[\s\-().]", "", text)
    if text.startswith("+98"):
        text = text[3:]
    elif text.startswith("0098"):
        text = text[4:]
    elif text.startswith("+"):
        return text  # another country: kept whole, so it can never match an Iranian number
    text = text.lstrip("0")
    return text if text.isdigit() else ""


def province_for_number(called: str | None, default: str, folder: Path | None = None) -> str:
    """The province whose file lists ``called`` among its ``numbers``, else ``default``."""
    number = normalize_number(called)
    if not number:
        return default
    return _numbers(_folder(folder)).get(number, default)


@cache
def _numbers(folder: Path) -> dict[str, str]:
    """Normalised number → province code; a number claimed twice is a configuration error."""
    owners: dict[str, str] = {}
    for province in all_provinces(folder):
        for number in province.numbers:
            if number in owners and owners[number] != province.code:
                raise ProvinceError(
                    f"number {number} is claimed by both {owners[number]} and {province.code}"
                    f" in {folder}"
                )
            owners[number] = province.code
    return owners


def check_provinces(default: str, folder: Path | None = None) -> list[Province]:
    """Every province in the folder, once it is certain calls can be answered from it: the
    folder holds province files, each is usable, no number is claimed twice and ``default``
    (``IVR_PROVINCE``) is one of them. Raises ProvinceError saying what is wrong; for the
    start of a server, before the first caller finds out."""
    where = _folder(folder)
    if not where.is_dir():
        raise ProvinceError(f"IVR_PROVINCES_DIR {where} is not a folder")
    provinces = all_provinces(where)
    if not provinces:
        raise ProvinceError(f"IVR_PROVINCES_DIR {where} holds no province file (<code>.toml)")
    _numbers(where)
    load_province(default, where)
    return provinces


def place_prompts() -> dict[str, str]:
    """Prompt id → Persian text for every place of every province, for the prompt catalogue."""
    return {
        province.prompt_id(place): place.name
        for province in all_provinces()
        for place in (*province.towns, *province.zones)
    }
