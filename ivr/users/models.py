"""The ``app_user`` table: one row per person who logs in or takes calls.

Written only by :mod:`ivr.users.store`. Times are UTC, as in :mod:`ivr.tickets.models`. A user is
never deleted (tickets and calls may name them): ``active`` false takes every right away.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from ivr.clock import utcnow


class Role(StrEnum):
    AGENT = "agent"
    """Answers the queue (an extension on Asterisk, a phone on Twilio's agents' line)."""
    SUPERVISOR = "supervisor"
    """A province's supervisor."""
    NATIONAL = "national"
    """Sees every province."""
    ADMIN = "admin"


class User(SQLModel, table=True):
    __tablename__ = "app_user"  # "user" is a reserved word on PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    """The login name: lower-case letters, digits, dot, dash, underscore."""
    role: str = Field(max_length=16)
    province: str | None = Field(default=None, max_length=32)
    """Whose calls and tickets they work on; None for national staff and admins."""
    extension: str | None = Field(default=None, max_length=64)
    """The agent's Asterisk endpoint (PJSIP/201), a queue member."""
    phone: str | None = Field(default=None, max_length=16, index=True)
    """National form (09121234567): the number the agents' Twilio line recognises."""
    password_hash: str | None = Field(default=None, max_length=255)
    pin_hash: str | None = Field(default=None, max_length=255)
    """The agents' line PIN (4–8 digits)."""
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DeskSession(SQLModel, table=True):
    """One login at the desk: the cookie carries a signed random token, this row its hash.

    Written only by :mod:`ivr.users.sessions`. Keeping the row (not only a signed cookie) is
    what lets logout end a session everywhere: a copied cookie stops working the moment
    ``ended_at`` is set, whatever its signature says.
    """

    __tablename__ = "desk_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    """SHA-256 of the cookie's token: a stolen database opens no session."""
    user_id: int = Field(foreign_key="app_user.id", index=True)
    csrf_token: str = Field(max_length=64)
    """Every form post of this session carries it (ivr.web.desk.csrf)."""
    address: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    """Logout (or a timeout noticed): the session is over on every node."""


class LoginAttempt(SQLModel, table=True):
    """A wrong password at the desk's login, by name and by address (ivr.users.sessions).

    In the database, not in one process's memory, so every node behind the balancer counts the
    same tries.
    """

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    username: str = Field(max_length=64, index=True)
    address: str = Field(max_length=64, index=True)
