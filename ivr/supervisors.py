"""The supervisors escalation mails go to: the only module that writes the ``supervisor`` table.

A province's supervisors hear of level 1, the ministry's national supervisors (no province) of
level 2 and of level 1 where a province has nobody.  Removing a supervisor keeps the row,
inactive, so the history's "notified: …" lines still say who that was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from ivr.calendar.offices import MINISTRY_OFFICE, check_province
from ivr.mailaddress import is_mail_address
from ivr.speech import normalize_digits
from ivr.tickets.db import row_id, session_scope
from ivr.tickets.models import Supervisor


class SupervisorError(ValueError):
    """A supervisor that cannot be added or removed as asked (bad address, unknown, twice)."""


@dataclass(frozen=True)
class SupervisorEntry:
    id: int
    name: str
    email: str
    province: str | None
    """None: national, at the ministry."""
    active: bool


def _entry(row: Supervisor) -> SupervisorEntry:
    assert row.id is not None
    return SupervisorEntry(row.id, row.name, row.email, row.province, row.active)


def add_supervisor(engine: Engine, name: str, email: str, province: str | None = None) -> int:
    """Register a supervisor (``province`` None: national); returns its id.

    The address must be a mail address and the province a known one; the same address for the
    same province twice is refused, and a removed one is made active again.
    """
    name, email = name.strip(), email.strip()
    if not name:
        raise SupervisorError("a supervisor needs a name")
    if not is_mail_address(email):
        raise SupervisorError(f"{email!r} is not an e-mail address")
    province = check_province(province)
    with session_scope(engine) as session:
        same = session.exec(
            select(Supervisor).where(
                col(Supervisor.email) == email,
                col(Supervisor.province).is_(None)
                if province is None
                else col(Supervisor.province) == province,
            )
        ).first()
        if same is not None and same.active:
            where = province or "national"
            raise SupervisorError(f"{email} is already a supervisor ({where}, id {same.id})")
        row = same or Supervisor(name=name, email=email, province=province)
        row.name, row.active = name, True
        session.add(row)
        session.flush()
        assert row.id is not None
        return row.id


def list_supervisors(engine: Engine, *, include_removed: bool = False) -> list[SupervisorEntry]:
    """National ones first, then by province, each in the order they were added."""
    statement = select(Supervisor).order_by(col(Supervisor.province), col(Supervisor.id))
    if not include_removed:
        statement = statement.where(col(Supervisor.active).is_(True))
    with Session(engine) as session:
        rows = [_entry(row) for row in session.exec(statement)]
    return sorted(rows, key=lambda s: (s.province is not None, s.province or "", s.id))


def remove_supervisor(engine: Engine, who: str) -> list[SupervisorEntry]:
    """Deactivate the supervisor with id or e-mail ``who``; returns those removed."""
    who = who.strip()
    number = row_id(normalize_digits(who))
    with session_scope(engine) as session:
        condition = col(Supervisor.id) == number if number else col(Supervisor.email) == who
        rows = list(
            session.exec(select(Supervisor).where(condition, col(Supervisor.active).is_(True)))
        )
        if not rows:
            raise SupervisorError(f"no active supervisor {who}")
        for row in rows:
            row.active = False
            session.add(row)
        session.flush()
        return [_entry(row) for row in rows]


@dataclass(frozen=True)
class Recipients:
    """Active supervisors by province (None: national), read once per watch pass."""

    by_province: Mapping[str | None, tuple[str, ...]] = field(default_factory=dict)

    def for_level(self, level: int, province: str) -> tuple[tuple[str, ...], str, str]:
        """Addresses, the office whose hours they keep, and a note when level 1 falls back."""
        national = self.by_province.get(None, ())
        if level >= 2:
            return national, MINISTRY_OFFICE, ""
        local = self.by_province.get(province, ())
        if local:
            return local, province, ""
        return national, MINISTRY_OFFICE, f"no supervisor for {province}: sent to national"


def load_recipients(session: Session) -> Recipients:
    found: dict[str | None, list[str]] = {}
    rows = session.exec(
        select(Supervisor.province, Supervisor.email)
        .where(col(Supervisor.active).is_(True))
        .order_by(col(Supervisor.id))
    )
    for province, email in rows:
        found.setdefault(province, []).append(email)
    return Recipients({k: tuple(v) for k, v in found.items()})
