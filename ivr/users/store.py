"""Users: the only writer of the ``app_user`` table.

Every input is checked here (not only in the CLI), so a web form later gets the same rules:
names, roles, provinces, phone numbers in national form, password length and 4–8 digit PINs.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ivr.clock import as_stored, utcnow
from ivr.identifiers import normalize_phone
from ivr.speech import normalize_digits
from ivr.tickets.db import session_scope
from ivr.users.models import Role, User
from ivr.users.passwords import MIN_PASSWORD, PIN_LENGTHS, hash_secret, verify_secret

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
PROVINCE_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR})
"""Roles that belong to one province."""


class UserError(ValueError):
    """Input a person can fix: the message is the one line to show."""


def check_pin(pin: str) -> str:
    """The PIN in ASCII digits (Persian digits accepted), or UserError."""
    text = normalize_digits(pin.strip())
    if not (text.isascii() and text.isdigit() and len(text) in PIN_LENGTHS):
        raise UserError(f"a PIN is {PIN_LENGTHS.start} to {PIN_LENGTHS.stop - 1} digits")
    return text


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
    return password


class UserStore:
    def __init__(self, engine: Engine, provinces: frozenset[str] | None = None) -> None:
        self.engine = engine
        self.provinces = provinces
        """Known province codes; None: not checked."""

    def add(
        self,
        name: str,
        role: str,
        *,
        password: str,
        province: str | None = None,
        extension: str | None = None,
        phone: str | None = None,
    ) -> User:
        if not NAME.match(name):
            raise UserError(
                f"{name!r} is not a user name: 2–64 lower-case letters, digits, '.', '-', '_'"
            )
        try:
            kind = Role(role)
        except ValueError:
            raise UserError(
                f"unknown role {role!r}: one of {', '.join(r.value for r in Role)}"
            ) from None
        if kind in PROVINCE_ROLES and not province:
            raise UserError(f"{kind.value}s belong to a province: give --province")
        if province and self.provinces is not None and province not in self.provinces:
            raise UserError(
                f"unknown province {province!r}: one of {', '.join(sorted(self.provinces))}"
            )
        number = None
        if phone:
            number = normalize_phone(phone)
            if number is None:
                raise UserError(f"{phone!r} is not an Iranian phone number")
        now = as_stored(User.created_at, utcnow())
        user = User(
            name=name,
            role=kind.value,
            province=province,
            extension=extension or None,
            phone=number,
            password_hash=hash_secret(check_password(password)),
            created_at=now,
            updated_at=now,
        )
        try:
            with session_scope(self.engine) as session:
                session.add(user)
        except IntegrityError:
            raise UserError(f"there is already a user {name!r}") from None
        return user

    def get(self, name: str) -> User | None:
        with Session(self.engine) as session:
            return session.exec(select(User).where(User.name == name)).first()

    def list(self) -> list[User]:
        with Session(self.engine) as session:
            return list(session.exec(select(User).order_by(User.name)))

    def agent_by_phone(self, phone: str | None) -> User | None:
        """The active agent (or supervisor) whose phone this is; None for anyone else."""
        number = normalize_phone(phone)
        if number is None:
            return None
        with Session(self.engine) as session:
            return session.exec(
                select(User).where(
                    User.phone == number,
                    User.active == True,  # noqa: E712  (SQL, not Python)
                    User.role.in_([Role.AGENT.value, Role.SUPERVISOR.value]),  # type: ignore[attr-defined]
                )
            ).first()

    def by_extension(self, interface: str | None) -> User | None:
        """The active user whose queue member interface this is (AMI AgentConnect's
        ``Interface``, e.g. PJSIP/201): whose desk a connected queue call pops up on."""
        if not interface:
            return None
        with Session(self.engine) as session:
            return session.exec(
                select(User).where(
                    User.extension == interface,
                    User.active == True,  # noqa: E712  (SQL, not Python)
                )
            ).first()

    def disable(self, name: str) -> User:
        return self._change(name, active=False)

    def set_password(self, name: str, password: str) -> User:
        return self._change(name, password_hash=hash_secret(check_password(password)))

    def set_pin(self, name: str, pin: str) -> User:
        return self._change(name, pin_hash=hash_secret(check_pin(pin)))

    def pin_matches(self, user: User, pin: str) -> bool:
        try:
            digits = check_pin(pin)
        except UserError:
            return False
        return verify_secret(user.pin_hash, digits)

    def _change(self, name: str, **values: object) -> User:
        with session_scope(self.engine) as session:
            user = session.exec(select(User).where(User.name == name)).first()
            if user is None:
                raise UserError(f"no user {name!r}")
            for key, value in values.items():
                setattr(user, key, value)
            user.updated_at = as_stored(User.updated_at, utcnow())
            session.add(user)
            return user
