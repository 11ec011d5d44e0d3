"""Desk logins: the only writer of ``desk_session`` and ``login_attempt``.

A session ends after ``idle`` without a request and after ``lifetime`` in all, or at logout; the
row says so for every node. Wrong passwords are counted per user name and per address over a
window, in the database, so a guesser cannot spread tries over several nodes.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, delete, func, or_, update
from sqlmodel import Session, col, select

from ivr.clock import as_aware, as_stored, utcnow
from ivr.tickets.db import session_scope
from ivr.users.models import DeskSession, LoginAttempt, User
from ivr.users.passwords import verify_secret

log = logging.getLogger(__name__)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class OpenSession:
    """A live session as a request sees it."""

    id: int
    user: User
    csrf_token: str


class DeskLimitSettings(Protocol):
    """``ivr.settings.Settings`` (not imported: users stay below the settings)."""

    desk_idle_seconds: int
    desk_session_seconds: int
    desk_login_tries: int
    desk_login_window_seconds: int


@dataclass(frozen=True)
class Limits:
    idle: timedelta = timedelta(minutes=30)
    lifetime: timedelta = timedelta(hours=12)
    tries: int = 5
    """Wrong passwords allowed per user and per address within ``window``."""
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: DeskLimitSettings) -> Limits:
        return cls(
            idle=timedelta(seconds=settings.desk_idle_seconds),
            lifetime=timedelta(seconds=settings.desk_session_seconds),
            tries=settings.desk_login_tries,
            window=timedelta(seconds=settings.desk_login_window_seconds),
        )

    @property
    def touch_every(self) -> timedelta:
        """How stale ``last_seen_at`` may get before a request writes it again: a page view
        is not a write each time, and the idle limit is still kept to within this."""
        return min(timedelta(seconds=15), self.idle / 4)


class LoginThrottled(Exception):
    """Too many wrong passwords for this name or from this address lately."""


class SessionStore:
    def __init__(self, engine: Engine, limits: Limits | None = None) -> None:
        self.engine = engine
        self.limits = limits or Limits()

    # -- logging in -----------------------------------------------------------------------------

    def throttled(self, username: str, address: str, now: datetime | None = None) -> bool:
        """True when the name or the address has used up its wrong tries in the window."""
        since = as_stored(LoginAttempt.at, (now or utcnow()) - self.limits.window)
        with Session(self.engine) as session:
            by_name, by_address = session.exec(
                select(
                    func.count().filter(col(LoginAttempt.username) == username),
                    func.count().filter(col(LoginAttempt.address) == address),
                ).where(
                    col(LoginAttempt.at) >= since,
                    or_(
                        col(LoginAttempt.username) == username, col(LoginAttempt.address) == address
                    ),
                )
            ).one()
        return max(by_name, by_address) >= self.limits.tries

    def authenticate(self, username: str, password: str, address: str) -> User | None:
        """The active user with this password, else None (and the try is counted).

        ``LoginThrottled`` before any password is checked once the tries are used up.
        """
        name = username.strip().lower()[:64]
        if self.throttled(name, address):
            log.warning(
                "desk login refused (too many wrong passwords): user %r from %s", name, address
            )
            raise LoginThrottled(name)
        with Session(self.engine) as session:
            user = session.exec(select(User).where(User.name == name)).first()
        if user is not None and user.active and verify_secret(user.password_hash, password):
            return user
        with session_scope(self.engine) as session:
            session.add(
                LoginAttempt(
                    at=as_stored(LoginAttempt.at, utcnow()), username=name, address=address
                )
            )
        log.warning("desk login failed: user %r from %s", name, address)
        return None

    def open(self, user: User, address: str | None) -> tuple[str, OpenSession]:
        """A new session for ``user``: (the cookie's token, the session)."""
        assert user.id is not None
        token = secrets.token_urlsafe(32)
        now = as_stored(DeskSession.created_at, utcnow())
        row = DeskSession(
            token_hash=_digest(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            address=(address or "")[:64] or None,
            created_at=now,
            last_seen_at=now,
        )
        with session_scope(self.engine) as session:
            session.add(row)
            session.flush()
            assert row.id is not None
            opened = OpenSession(row.id, user, row.csrf_token)
        log.info("desk login: user %r from %s", user.name, address)
        return token, opened

    # -- each request ---------------------------------------------------------------------------

    def resume(self, token: str, now: datetime | None = None) -> OpenSession | None:
        """The session this token opened, if it is still live (not ended, not idle too long,
        not too old, its user still active); touches it so it stays alive."""
        now = as_aware(now or utcnow())
        with Session(self.engine) as session:
            found = session.exec(
                select(DeskSession, User)
                .join(User, col(User.id) == col(DeskSession.user_id))
                .where(DeskSession.token_hash == _digest(token))
            ).first()
        if found is None:
            return None
        row, user = found
        last_seen = as_aware(row.last_seen_at)
        if (
            row.ended_at is not None
            or not user.active
            or now - last_seen > self.limits.idle
            or now - as_aware(row.created_at) > self.limits.lifetime
        ):
            return None
        assert row.id is not None
        if now - last_seen > self.limits.touch_every:
            with session_scope(self.engine) as session:
                session.execute(
                    update(DeskSession)
                    .where(col(DeskSession.id) == row.id)
                    .values(last_seen_at=as_stored(DeskSession.last_seen_at, now))
                )
        return OpenSession(row.id, user, row.csrf_token)

    def is_live(self, session_id: int, now: datetime | None = None) -> bool:
        """Whether the session is still open, without touching it (a long-lived request such
        as the desk's event stream asks this now and then; it is no sign of activity)."""
        now = as_aware(now or utcnow())
        with Session(self.engine) as session:
            found = session.exec(
                select(DeskSession, User)
                .join(User, col(User.id) == col(DeskSession.user_id))
                .where(col(DeskSession.id) == session_id)
            ).first()
        if found is None:
            return False
        row, user = found
        return (
            row.ended_at is None
            and user.active
            and now - as_aware(row.last_seen_at) <= self.limits.idle
            and now - as_aware(row.created_at) <= self.limits.lifetime
        )

    def end(self, session_id: int) -> None:
        """Logout: the session's cookie opens nothing any more, on any node."""
        with session_scope(self.engine) as session:
            session.execute(
                update(DeskSession)
                .where(col(DeskSession.id) == session_id, col(DeskSession.ended_at).is_(None))
                .values(ended_at=as_stored(DeskSession.last_seen_at, utcnow()))
            )

    def prune(self, now: datetime | None = None) -> int:
        """Delete sessions past their lifetime and attempts past the window; how many rows."""
        now = as_aware(now or utcnow())
        old_sessions = as_stored(DeskSession.created_at, now - self.limits.lifetime)
        old_attempts = as_stored(LoginAttempt.at, now - self.limits.window)
        with session_scope(self.engine) as session:
            gone = session.execute(
                delete(DeskSession).where(col(DeskSession.created_at) < old_sessions)
            ).rowcount
            gone += session.execute(
                delete(LoginAttempt).where(col(LoginAttempt.at) < old_attempts)
            ).rowcount
        return int(gone or 0)
