"""The agencies a ticket can be referred to, loaded from ``agencies.toml`` beside this file.

``TicketService.refer`` accepts only a code listed here, the follow-up menu speaks the prompt
``agency.<code>`` (its text is the agency's name, added to the catalogue from this file), and
people read the same name in ``ivr tickets show``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ivr.datafile import DataFileError, check_keys, code_field, read_toml, text_field
from ivr.mailaddress import is_mail_address

DEFAULT_FILE = Path(__file__).with_name("agencies.toml")
CODE_LENGTH = 32
"""``ticket.agency`` is VARCHAR(32)."""


class UnknownAgency(ValueError):
    """An agency code that the agencies file does not define."""


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    """The Persian name: the text of the prompt ``agency.<code>``."""
    email: str

    @property
    def prompt_id(self) -> str:
        return f"agency.{self.code}"


@dataclass(frozen=True)
class Agencies:
    items: tuple[Agency, ...]

    def get(self, code: str) -> Agency | None:
        return next((a for a in self.items if a.code == code), None)

    def require(self, code: str) -> Agency:
        """The agency, or ``UnknownAgency`` naming the known ones."""
        found = self.get(code)
        if found is None:
            known = ", ".join(a.code for a in self.items)
            raise UnknownAgency(f"unknown agency {code!r} (known: {known})")
        return found

    def prompts(self) -> dict[str, str]:
        return {a.prompt_id: a.name for a in self.items}


def parse_agencies(data: Mapping[str, Any], source: str) -> Agencies:
    """Check a parsed agencies file and build its ``Agencies``."""
    check_keys(data, ("agency",), source, required=("agency",))
    entries = data["agency"]
    if not isinstance(entries, list) or not entries:
        raise DataFileError(f"{source}: at least one [[agency]] is needed")
    items: list[Agency] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: agency {number}"
        if not isinstance(entry, dict):
            raise DataFileError(f"{where} must be a table")
        check_keys(entry, ("code", "name", "email"), where, ("code", "name", "email"))
        code = code_field(entry, where, CODE_LENGTH)
        where = f"{source}: agency {code!r}"
        email = text_field(entry, "email", where, 254)
        if not is_mail_address(email):
            raise DataFileError(f"{where}: {email!r} is not an e-mail address")
        if any(other.code == code for other in items):
            raise DataFileError(f"{where}: the code is defined twice")
        items.append(Agency(code, text_field(entry, "name", where), email))
    return Agencies(tuple(items))


@cache
def _load(path: Path) -> Agencies:
    return parse_agencies(read_toml(path), str(path))


def load_agencies(path: Path | None = None) -> Agencies:
    """The agencies of ``path`` (default: ``DEFAULT_FILE``), read and checked once per file."""
    return _load(Path(path or DEFAULT_FILE))


def agency_prompts() -> dict[str, str]:
    """Prompt id → Persian name for every agency, for the prompt catalogue."""
    return load_agencies().prompts()


def agency_name(code: str) -> str:
    """The Persian name of ``code``; the code itself for one the file no longer lists."""
    found = load_agencies().get(code)
    return code if found is None else found.name
