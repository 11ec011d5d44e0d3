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
