"""Which provinces have offices the calendar knows: those with a data file, and the ministry.

A closure or a supervisor names its province; a typo (``qum``) must be refused, not stored as a
province nobody is in.  The ministry's national supervisors keep Tehran's office hours, so
Tehran is known even before it has a file of places of its own.
"""

from __future__ import annotations

from ivr.provinces import all_provinces

MINISTRY_OFFICE = "tehran"
"""Whose office hours hold a national supervisor's mail: the ministry sits in Tehran."""


class UnknownProvince(ValueError):
    """A province code that no province file (nor the ministry) has."""


def known_provinces() -> tuple[str, ...]:
    """Every province code a closure or a supervisor may name, sorted."""
    return tuple(sorted({p.code for p in all_provinces()} | {MINISTRY_OFFICE}))


def check_province(code: str | None) -> str | None:
    """``code`` stripped and lower-cased if known, None for None (nationwide or national)."""
    if code is None:
        return None
    cleaned = code.strip().lower()
    known = known_provinces()
    if cleaned not in known:
        raise UnknownProvince(f"unknown province {code!r} (known: {', '.join(known)})")
    return cleaned
