"""The callbacks' owner: the only code that writes ``callback`` and ``callback_attempt``.

Two audiences:

* the call flow and the CLI — :meth:`CallbackService.request` (a number that already has an open
  callback gets that one back), :meth:`cancel`, :meth:`get`, :meth:`list`, :meth:`attempts_of`;
* the dispatcher and the dialers — :meth:`due`, :meth:`claim` (a conditional UPDATE: of two
  dispatchers racing for a callback exactly one gets the attempt), :meth:`placed`,
  :meth:`connected`, :meth:`finish` (idempotent: the first outcome reported wins),
  :meth:`open_attempts` and :meth:`renew` (leases).

A callback's life: ``pending`` → (claimed) ``queued`` → (an agent took it) ``in_progress`` →
``done``; an unsuccessful attempt sends it back to ``pending`` until ``attempts`` run out
(``failed``); ``cancelled`` at any point. Every method takes its "now" from ``clock`` unless
given one, so tests can move time.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from ivr.callbacks.models import (
    COUNTED_OUTCOMES,
    OPEN_STATUSES,
    Callback,
    CallbackAttempt,
    CallbackStatus,
    Outcome,
)
from ivr.clock import as_aware, as_stored, utcnow
from ivr.identifiers import normalize_phone
from ivr.tickets.db import session_scope

DETAIL_MAX = 255


class CallbackError(ValueError):
    """A request the service refuses: a number nobody can call, a callback already finished."""


class CallbackNotFound(LookupError):
    """No callback has this id."""


@dataclass(frozen=True)
class OpenAttempt:
    """An attempt still open, with what the dispatcher and the dialers need of its callback."""

    id: int
    callback_id: int
    slot: int
    number: str
    province: str
    entered_at: datetime
    callback_status: str
    dialer: str
    external_id: str | None
    started_at: datetime
    connected_at: datetime | None
    lease_until: datetime | None


def _row(session: Session, callback_id: int) -> Callback:
    found = session.get(Callback, callback_id)
    if found is None:
        raise CallbackNotFound(f"no callback {callback_id}")
    return found


class CallbackService:
    """Callbacks and their attempts on one database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        attempts: int = 3,
        retry: timedelta = timedelta(minutes=10),
        lease: timedelta = timedelta(seconds=120),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if attempts < 1:
            raise ValueError("a callback needs at least one attempt")
        self.engine = engine
        self.max_attempts = attempts
        self.retry = retry
        self.lease = lease
        self.clock = clock

    @classmethod
    def from_settings(
        cls, engine: Engine, settings: Any, clock: Callable[[], datetime] = utcnow
    ) -> CallbackService:
        """With IVR_CALLBACK_ATTEMPTS, _RETRY_MINUTES and _LEASE_SECONDS."""
        return cls(
            engine,
            attempts=settings.callback_attempts,
            retry=timedelta(minutes=settings.callback_retry_minutes),
            lease=timedelta(seconds=settings.callback_lease_seconds),
            clock=clock,
        )

    def _now(self, at: datetime | None = None) -> datetime:
        return as_aware(at or self.clock())

    # -- callers' side ------------------------------------------------------------------------

    def request(
        self,
        number: str,
        province: str,
        entered_at: datetime,
        call_id: int | None = None,
        ticket_id: int | None = None,
    ) -> Callback:
        """The open callback of ``number``, created unless it already has one.

        ``entered_at``: when the caller joined the queue they are leaving, or now for a request
        from the "no agent" menu; the callback is served in that order. A second request from
        the same number keeps the first one's place and data.
        """
        national = normalize_phone(number)
        if national is None:
            raise CallbackError(f"{number!r} is not an Iranian number we can call back")
        if not province.strip():
            raise CallbackError("a callback needs a province")
        now = self._now()
        entered = min(as_aware(entered_at), now)  # a clock ahead of ours must not jump the queue
        existing = self._open_for(national)
        if existing is not None:
            return existing
        try:
            with session_scope(self.engine) as session:
                row = Callback(
                    number=national,
                    active_number=national,
                    province=province.strip(),
                    status=CallbackStatus.PENDING,
                    requested_at=now,
                    entered_at=entered,
                    call_id=call_id,
                    ticket_id=ticket_id,
                    next_attempt_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return row
        except IntegrityError:  # the same number asked on another call at the same moment
            existing = self._open_for(national)
            if existing is None:
                raise
            return existing

    def _open_for(self, national: str) -> Callback | None:
        with Session(self.engine, expire_on_commit=False) as session:
            statement = select(Callback).where(col(Callback.active_number) == national)
            return session.exec(statement).first()

    def cancel(self, callback_id: int) -> Callback:
        """Cancel an open callback. A stand-in holding its place is withdrawn by the next
        dispatcher pass; a call already ringing or talking is not cut off."""
        now = self._now()
        with session_scope(self.engine) as session:
            changed = session.execute(
                update(Callback)
                .where(col(Callback.id) == callback_id, col(Callback.status).in_(OPEN_STATUSES))
                .values(
                    status=CallbackStatus.CANCELLED,
                    active_number=None,
                    finished_at=as_stored(Callback.finished_at, now),
                    updated_at=as_stored(Callback.updated_at, now),
                )
            ).rowcount  # type: ignore[attr-defined]
            row = _row(session, callback_id)
            if not changed:
                raise CallbackError(f"callback {callback_id} is already {row.status}")
            session.refresh(row)
            return row

    def get(self, callback_id: int) -> Callback | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Callback, callback_id)

    def attempts_of(self, callback_id: int) -> builtins.list[CallbackAttempt]:
        with Session(self.engine, expire_on_commit=False) as session:
            statement = (
                select(CallbackAttempt)
                .where(col(CallbackAttempt.callback_id) == callback_id)
                .order_by(col(CallbackAttempt.id))
            )
            return builtins.list(session.exec(statement))

    # -- the dispatcher's side ----------------------------------------------------------------

    def pending_provinces(self) -> set[str]:
        """Provinces with at least one pending callback (whose hours the dispatcher checks)."""
        with Session(self.engine) as session:
            statement = (
                select(Callback.province)
                .where(col(Callback.status) == CallbackStatus.PENDING)
                .distinct()
            )
            return set(session.exec(statement))

    def due(
        self, now: datetime | None = None, provinces: Collection[str] | None = None, limit: int = 1
    ) -> builtins.list[Callback]:
        """Pending callbacks whose next attempt may start now, oldest entry first, in
        ``provinces`` (None: any)."""
        if limit <= 0 or (provinces is not None and not provinces):
            return []
        moment = self._now(now)
        statement = (
            select(Callback)
            .where(col(Callback.status) == CallbackStatus.PENDING)
            .where(col(Callback.next_attempt_at) <= as_stored(Callback.next_attempt_at, moment))
            .order_by(col(Callback.entered_at), col(Callback.id))
            .limit(limit)
        )
        if provinces is not None:
            statement = statement.where(col(Callback.province).in_(sorted(provinces)))
        with Session(self.engine, expire_on_commit=False) as session:
            return builtins.list(session.exec(statement))

    def claim(
        self,
        callback_id: int,
        node: str,
        dialer: str,
        now: datetime | None = None,
        *,
        early: bool = False,
    ) -> CallbackAttempt | None:
        """Open the callback's next attempt, or None if it is no longer pending and due (another
        dispatcher claimed it first, it was cancelled, its retry spacing has not passed).

        ``early``: a supervisor's "call now" — the retry spacing does not hold it back; the
        claim is the same conditional UPDATE, so still one attempt at a time per number."""
        moment = self._now(now)
        due = col(Callback.next_attempt_at) <= as_stored(Callback.next_attempt_at, moment)
        with session_scope(self.engine) as session:
            won = session.execute(
                update(Callback)
                .where(
                    col(Callback.id) == callback_id,
                    col(Callback.status) == CallbackStatus.PENDING,
                    *(() if early else (due,)),
                )
                .values(
                    status=CallbackStatus.QUEUED, updated_at=as_stored(Callback.updated_at, moment)
                )
                .returning(Callback.attempts)  # SQLite 3.35+ and PostgreSQL
            ).first()
            if won is None:
                return None
            attempt = CallbackAttempt(
                callback_id=callback_id,
                slot=won[0] + 1,
                node=node,
                dialer=dialer,
                started_at=moment,
                lease_until=moment + self.lease,
            )
            session.add(attempt)
            session.flush()
            return attempt

    def placed(self, attempt_id: int, external_id: str) -> None:
        """The dialer's id for the attempt's call (Asterisk uniqueid, Twilio CallSid)."""
        with session_scope(self.engine) as session:
            session.execute(
                update(CallbackAttempt)
                .where(col(CallbackAttempt.id) == attempt_id)
                .values(external_id=external_id[:64])
            )

    def connected(
        self, attempt_id: int, agent: str | None = None, at: datetime | None = None
    ) -> bool:
        """An agent took the attempt (or the caller's phone rings, caller-first): the callback
        is in progress. Repeating it (a second event) only fills in the agent."""
        moment = self._now(at)
        with session_scope(self.engine) as session:
            # Written first, so a concurrent finish() of the same attempt is serialized with this.
            touched = session.execute(
                update(CallbackAttempt)
                .where(col(CallbackAttempt.id) == attempt_id)
                .where(col(CallbackAttempt.ended_at).is_(None))
                .values(
                    connected_at=func.coalesce(
                        CallbackAttempt.connected_at,
                        as_stored(CallbackAttempt.connected_at, moment),
                    ),
                    agent=func.coalesce(CallbackAttempt.agent, agent and agent[:128]),
                )
            ).rowcount  # type: ignore[attr-defined]
            if touched != 1:
                return False
            callback_id = session.exec(
                select(CallbackAttempt.callback_id).where(col(CallbackAttempt.id) == attempt_id)
            ).one()
            session.execute(
                update(Callback)
                .where(col(Callback.id) == callback_id)
                .where(col(Callback.status) == CallbackStatus.QUEUED)
                .values(
                    status=CallbackStatus.IN_PROGRESS,
                    updated_at=as_stored(Callback.updated_at, moment),
                )
            )
            return True

    def finish(
        self,
        attempt_id: int,
        outcome: Outcome | str,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> Callback | None:
        """Close an open attempt and move its callback on; None if the attempt was already
        closed (the outcome arrived twice, from an event and from a recovery check).

        answered → done; no answer, busy, failed, interrupted → one attempt used: pending again
        after the retry spacing, or failed when none is left; withdrawn → pending at once, no
        attempt used. A cancelled callback stays cancelled.
        """
        outcome = Outcome(outcome)
        moment = self._now(at)
        with session_scope(self.engine) as session:
            closed = session.execute(
                update(CallbackAttempt)
                .where(col(CallbackAttempt.id) == attempt_id)
                .where(col(CallbackAttempt.ended_at).is_(None))
                .values(
                    ended_at=as_stored(CallbackAttempt.ended_at, moment),
                    outcome=outcome.value,
                    detail=(detail or None) and detail[:DETAIL_MAX],
                    lease_until=None,
                )
            ).rowcount  # type: ignore[attr-defined]
            if closed != 1:
                return None
            attempt = session.get(CallbackAttempt, attempt_id)
            assert attempt is not None
            callback = session.exec(
                select(Callback).where(col(Callback.id) == attempt.callback_id).with_for_update()
            ).one()
            self._move_on(callback, outcome, moment)
            session.add(callback)
            session.flush()
            return callback

    def _move_on(self, callback: Callback, outcome: Outcome, moment: datetime) -> None:
        counted = outcome.value in COUNTED_OUTCOMES
        if counted:
            callback.attempts += 1
        callback.updated_at = moment
        if callback.status not in (CallbackStatus.QUEUED, CallbackStatus.IN_PROGRESS):
            return  # cancelled while the attempt ran: the record grows, the status stays
        if outcome is Outcome.ANSWERED:
            self._close(callback, CallbackStatus.DONE, moment)
        elif counted and callback.attempts >= self.max_attempts:
            self._close(callback, CallbackStatus.FAILED, moment)
        else:
            callback.status = CallbackStatus.PENDING
            callback.next_attempt_at = moment + self.retry if counted else moment

    @staticmethod
    def _close(callback: Callback, status: CallbackStatus, moment: datetime) -> None:
        callback.status = status
        callback.active_number = None
        callback.finished_at = moment

    def open_attempts(self) -> builtins.list[OpenAttempt]:
        """Every attempt not yet closed, oldest first."""
        statement = (
            select(CallbackAttempt, Callback)
            .join(Callback, col(Callback.id) == col(CallbackAttempt.callback_id))
            .where(col(CallbackAttempt.ended_at).is_(None))
            .order_by(col(CallbackAttempt.id))
        )
        with Session(self.engine) as session:
            return [_open(attempt, callback) for attempt, callback in session.exec(statement)]

    def renew(self, attempt_ids: Iterable[int], now: datetime | None = None) -> None:
        """Extend the leases of attempts whose calls were just seen alive."""
        ids = sorted(set(attempt_ids))
        if not ids:
            return
        until = self._now(now) + self.lease
        with session_scope(self.engine) as session:
            session.execute(
                update(CallbackAttempt)
                .where(col(CallbackAttempt.id).in_(ids), col(CallbackAttempt.ended_at).is_(None))
                .values(lease_until=as_stored(CallbackAttempt.lease_until, until))
            )

    def list(
        self,
        status: str | Collection[str] | None = None,
        limit: int | None = None,
        provinces: Collection[str] | None = None,
        newest_first: bool = False,
    ) -> builtins.list[Callback]:
        """Callbacks in order of their original entry time (``newest_first``: the reverse);
        ``status`` one or several; ``provinces`` a desk user's scope (None: every province)."""
        order = (col(Callback.entered_at), col(Callback.id))
        if newest_first:
            order = (col(Callback.entered_at).desc(), col(Callback.id).desc())
        statement = select(Callback).order_by(*order)
        if provinces is not None:
            statement = statement.where(col(Callback.province).in_(sorted(provinces)))
        if status is not None:
            wanted = [status] if isinstance(status, str) else builtins.list(status)
            unknown = set(wanted) - {s.value for s in CallbackStatus}
            if unknown:
                raise CallbackError(f"unknown status {', '.join(sorted(unknown))}")
            statement = statement.where(col(Callback.status).in_(wanted))
        if limit is not None:
            statement = statement.limit(limit)
        with Session(self.engine, expire_on_commit=False) as session:
            return builtins.list(session.exec(statement))


def _open(attempt: CallbackAttempt, callback: Callback) -> OpenAttempt:
    assert attempt.id is not None
    return OpenAttempt(
        id=attempt.id,
        callback_id=attempt.callback_id,
        slot=attempt.slot,
        number=callback.number,
        province=callback.province,
        entered_at=as_aware(callback.entered_at),
        callback_status=callback.status,
        dialer=attempt.dialer,
        external_id=attempt.external_id,
        started_at=as_aware(attempt.started_at),
        connected_at=as_aware(attempt.connected_at),
        lease_until=as_aware(attempt.lease_until),
    )
