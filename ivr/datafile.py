"""Reading the domain's TOML data files (categories, agencies) with errors that name the file.

A data file is edited by people, not programmers: a typo must stop the program with one line
that says which file, which entry and what is wrong, never a traceback or a silent default.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
"""Codes are stored on tickets and name prompts (``category.<code>``): plain lower-case words."""


class DataFileError(ValueError):
    """A data file is missing, is not TOML, or holds a value that cannot be right."""


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML as a dict; any failure is a ``DataFileError`` naming the file."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise DataFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DataFileError(f"{path}: not valid TOML: {error}") from None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """``read_toml`` for text already in memory (tests, or a file read elsewhere)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DataFileError(f"{source}: not valid TOML: {error}") from None


def check_keys(
    table: Mapping[str, Any], allowed: Iterable[str], where: str, required: Iterable[str] = ()
) -> None:
    """Refuse unknown keys (a misspelt ``resolution_day`` must not be ignored) and missing ones."""
    allowed = set(allowed)
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise DataFileError(
            f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    for name in required:
        if name not in table:
            raise DataFileError(f"{where}: the field {name!r} is missing")


def text_field(table: Mapping[str, Any], name: str, where: str, max_length: int = 200) -> str:
    """A required non-empty string field, stripped."""
    value = table.get(name)
    if not isinstance(value, str) or not value.strip():
        raise DataFileError(f"{where}: {name!r} must be a non-empty string")
    if len(value.strip()) > max_length:
        raise DataFileError(f"{where}: {name!r} is longer than {max_length} characters")
    return value.strip()


def code_field(table: Mapping[str, Any], where: str, max_length: int) -> str:
    """The entry's ``code``: a plain lower-case word that fits its database column."""
    code = text_field(table, "code", where, max_length)
    if not CODE_RE.match(code):
        raise DataFileError(
            f"{where}: code {code!r} must be lower-case letters, digits and _ (starting with a "
            "letter)"
        )
    return code
