"""The ticket categories, loaded from ``categories.toml`` beside this file (one place for each).

The menu keys, the prompts ``category.<code>``, the SLA budgets and the Persian names people
read all come from that file, so adding or changing a category is an edit of data, checked here
when it is read: a bad file stops the program with one line naming the file and the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import Any

from ivr.datafile import (
    DataFileError,
    check_keys,
    code_field,
    parse_toml,
    read_toml,
    text_field,
)

DEFAULT_FILE = Path(__file__).with_name("categories.toml")
CODE_LENGTH = 16
"""``ticket.category`` is VARCHAR(16)."""
MENU_KEYS = frozenset("12345678")
"""9 goes back to the main menu and * repeats, in the category menu as everywhere."""


class UnknownCategory(ValueError):
    """A category code that the categories file does not define."""


@dataclass(frozen=True)
class SlaPolicy:
    """How many working days a category gets for the first response and for the solution."""

    first_response_days: int = 2
    resolution_days: int = 10
    warn_fraction: float = 0.75

    def __post_init__(self) -> None:
        for name in ("first_response_days", "resolution_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of working days, at least 1")
        fraction = self.warn_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ValueError("warn_fraction must be a number between 0 and 1")
        if not 0 < fraction < 1:
            raise ValueError("warn_fraction must be between 0 and 1")


SLA_FIELDS = tuple(f.name for f in fields(SlaPolicy))


@dataclass(frozen=True)
class Category:
    code: str
    key: str
    name: str
    """The Persian name: the text of the prompt ``category.<code>``."""
    asks_place: bool
    sla: SlaPolicy

    @property
    def prompt_id(self) -> str:
        return f"category.{self.code}"


@dataclass(frozen=True)
class Categories:
    """Every category in menu order, and the one whose SLA an unknown code falls back to."""

    items: tuple[Category, ...]
    fallback: str

    def get(self, code: str) -> Category | None:
        return next((c for c in self.items if c.code == code), None)

    def require(self, code: str) -> Category:
        """The category, or ``UnknownCategory`` naming the known ones."""
        found = self.get(code)
        if found is None:
            known = ", ".join(self.codes)
            raise UnknownCategory(f"unknown category {code!r} (known: {known})")
        return found

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.items)

    def by_key(self) -> dict[str, Category]:
        return {c.key: c for c in self.items}

    def policies(self) -> dict[str, SlaPolicy]:
        return {c.code: c.sla for c in self.items}

    def prompts(self) -> dict[str, str]:
        return {c.prompt_id: c.name for c in self.items}

    def names(self) -> dict[str, str]:
        return {c.code: c.name for c in self.items}


def parse_categories(data: Mapping[str, Any], source: str) -> Categories:
    """Check a parsed categories file and build its ``Categories``."""
    check_keys(data, ("fallback", "sla", "category"), source, required=("category",))
    default = data.get("sla", {})
    if not isinstance(default, dict):
        raise DataFileError(f"{source}: [sla] must be a table")
    check_keys(default, SLA_FIELDS, f"{source} [sla]")
    entries = data["category"]
    if not isinstance(entries, list) or not entries:
        raise DataFileError(f"{source}: at least one [[category]] is needed")
    items: list[Category] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: category {number}"
        if not isinstance(entry, dict):
            raise DataFileError(f"{where} must be a table")
        check_keys(entry, ("code", "key", "name", "asks_place", "sla"), where, ("code", "key"))
        code = code_field(entry, where, CODE_LENGTH)
        where = f"{source}: category {code!r}"
        key = entry["key"]
        if not isinstance(key, str) or key not in MENU_KEYS:
            raise DataFileError(f"{where}: key must be one digit from 1 to 8, as a string")
        asks_place = entry.get("asks_place", False)
        if not isinstance(asks_place, bool):
            raise DataFileError(f"{where}: asks_place must be true or false")
        own = entry.get("sla", {})
        if not isinstance(own, dict):
            raise DataFileError(f"{where}: sla must be a table")
        check_keys(own, SLA_FIELDS, f"{where} sla")
        try:
            sla = SlaPolicy(**{**default, **own})
        except ValueError as error:
            raise DataFileError(f"{where}: {error}") from None
        item = Category(code, key, text_field(entry, "name", where), asks_place, sla)
        for other in items:
            if other.code == code:
                raise DataFileError(f"{where}: the code is defined twice")
            if other.key == key:
                raise DataFileError(f"{where}: key {key} is already {other.code!r}'s")
        items.append(item)
    fallback = data.get("fallback", items[-1].code)
    if not isinstance(fallback, str) or fallback not in {c.code for c in items}:
        raise DataFileError(f"{source}: fallback {fallback!r} is not one of the categories")
    return Categories(tuple(items), fallback)


def categories_from_text(text: str, source: str = "<categories>") -> Categories:
    """The categories a TOML text defines (tests, and ``load_policies`` given text)."""
    return parse_categories(parse_toml(text, source), source)


@cache
def _load(path: Path) -> Categories:
    return parse_categories(read_toml(path), str(path))


def load_categories(path: Path | None = None) -> Categories:
    """The categories of ``path`` (default: ``DEFAULT_FILE``), read and checked once per file."""
    return _load(Path(path or DEFAULT_FILE))


def category_prompts() -> dict[str, str]:
    """Prompt id → Persian name for every category, for the prompt catalogue."""
    return load_categories().prompts()


def category_name(code: str) -> str:
    """The Persian name of ``code``; the code itself for one the file no longer lists."""
    found = load_categories().get(code)
    return code if found is None else found.name
