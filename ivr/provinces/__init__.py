"""Each province's industrial towns and zones, loaded from ``<province>.toml`` beside this file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROVINCES_DIR = Path(__file__).parent


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

    def prompt_id(self, place: Place) -> str:
        return f"place.{self.code}.{place.id}"

    def place(self, place_id: str) -> Place | None:
        return next((p for p in (*self.towns, *self.zones) if p.id == place_id), None)


@cache
def load_province(code: str) -> Province:
    data = tomllib.loads((PROVINCES_DIR / f"{code}.toml").read_text(encoding="utf-8"))

    def places(key: str) -> tuple[Place, ...]:
        return tuple(Place(str(p["key"]), p["id"], p["name"]) for p in data.get(key, []))

    return Province(code, data["name"], places("towns"), places("zones"))


def all_provinces() -> list[Province]:
    return [load_province(path.stem) for path in sorted(PROVINCES_DIR.glob("*.toml"))]


def place_prompts() -> dict[str, str]:
    """Prompt id → Persian text for every place of every province, for the prompt catalogue."""
    return {
        province.prompt_id(place): place.name
        for province in all_provinces()
        for place in (*province.towns, *province.zones)
    }
