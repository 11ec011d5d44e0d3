"""Which tickets a person may see: the province rule, applied where tickets are queried.

Agents and provincial supervisors see their own province; national supervisors and
administrators see every province. The ticket service takes a ``Scope`` and adds it to its
``WHERE``, so a ticket out of scope is simply not found (404), by page, audio link or JSON alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALL_PROVINCE_ROLES = frozenset({"national", "admin"})
"""Roles whose scope is every province."""


@dataclass(frozen=True)
class Scope:
    role: str
    provinces: frozenset[str] | None
    """The provinces allowed; None: all of them."""

    @classmethod
    def for_user(cls, role: str, province: str | None) -> Scope:
        if role in ALL_PROVINCE_ROLES:
            return cls(role, None)
        return cls(role, frozenset({province}) if province else frozenset())

    @classmethod
    def everything(cls) -> Scope:
        """The CLI's and the system's scope."""
        return cls("admin", None)

    def allows(self, province: str) -> bool:
        return self.provinces is None or province in self.provinces

    def where(self, column: Any) -> Any:
        """The SQL condition on a province column (``true`` for every province)."""
        from sqlalchemy import true

        if self.provinces is None:
            return true()
        return column.in_(sorted(self.provinces))

    @property
    def can_assign(self) -> bool:
        """Supervisors (and above) hand tickets to agents; agents take them themselves."""
        return self.role != "agent"
