"""Screen pops on their way to an agent's desk: the only writer of the ``desk_event`` table.

A queue call connects to an agent on the telephone side (AMI ``AgentConnect`` on whichever node
holds the AMI connection; the Twilio agents' connect webhook on whichever node Twilio reached),
while the agent's browser keeps its event stream open on whichever node the balancer gave it.
So a pop is a row, not a message in memory: :meth:`DeskEvents.push` writes it, and every
agent's stream (``/desk/events``) reads the rows after the last one it sent — at once when the
push happened in the same process (an in-process wake-up), else within ``poll_s`` (0.5 s), which
keeps "within a second" on several nodes without a message broker.

One row per (user, call): every node that listens to the same PBX sees the same
``AgentConnect`` and pushes it; the unique key turns the copies into one pop. Rows are small and
only the newest matter: every ``PRUNE_EVERY``-th push drops those older than a day (:meth:`prune`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import anyio.to_thread
from sqlalchemy import Engine, UniqueConstraint, delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from ivr.clock import as_stored, utcnow
from ivr.tickets.db import session_scope

log = logging.getLogger(__name__)

POLL_S = 0.5
"""How often a stream looks for pops pushed on another node."""
PRUNE_EVERY = 500
"""Every this many pops, the one that lands on it drops those older than a day."""


class DeskEvent(SQLModel, table=True):
    """A queue call that reached one agent: what their desk must pop up."""

    __tablename__ = "desk_event"
    __table_args__ = (UniqueConstraint("user_id", "external_id", name="uq_desk_event_call"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    channel: str = Field(max_length=16)
    """asterisk or twilio: with ``external_id`` it names the call (``ivr.tickets.calls``)."""
    external_id: str = Field(max_length=64)
    """The caller's call: Asterisk's uniqueid of the queued channel, or Twilio's CallSid."""
    caller: str | None = Field(default=None, max_length=32)
    """The number as the network gave it, for a call the IVR never answered (a callback)."""
    at: datetime = Field(default_factory=utcnow)


class DeskEvents:
    """Pops per user: pushed from any thread, streamed to each user's open desks."""

    def __init__(
        self, engine: Engine, *, poll_s: float = POLL_S, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self.clock = clock
        self._lock = threading.Lock()
        self._waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    # -- writing ---------------------------------------------------------------------------------

    def push(
        self, user_id: int, channel: str, external_id: str, caller: str | None = None
    ) -> int | None:
        """Store the pop and wake this process's streams of the user; its id, or None when
        this call had already popped up for this user (another node, a repeated event)."""
        row = DeskEvent(
            user_id=user_id,
            channel=channel,
            external_id=external_id[:64],
            caller=(caller or None) and caller[:32],
            at=as_stored(DeskEvent.at, self.clock()),
        )
        try:
            with session_scope(self.engine) as session:
                session.add(row)
                session.flush()
                made = row.id
        except IntegrityError:
            return None
        self._wake(user_id)
        if made is not None and made % PRUNE_EVERY == 0:  # keeps the table small, no job needed
            self.prune()
        return made

    def prune(self, older_than: timedelta = timedelta(days=1)) -> int:
        """Drop pops older than that (a desk opened later has no use for them)."""
        limit = as_stored(DeskEvent.at, self.clock() - older_than)
        with session_scope(self.engine) as session:
            result = session.execute(delete(DeskEvent).where(col(DeskEvent.at) < limit))
            return int(result.rowcount)  # type: ignore[attr-defined]

    # -- reading ---------------------------------------------------------------------------------

    def after(self, user_id: int, last_id: int, limit: int = 20) -> builtins.list[DeskEvent]:
        """The user's pops newer than ``last_id``, oldest first."""
        statement = (
            select(DeskEvent)
            .where(col(DeskEvent.user_id) == user_id, col(DeskEvent.id) > last_id)
            .order_by(col(DeskEvent.id))
            .limit(limit)
        )
        with Session(self.engine, expire_on_commit=False) as session:
            return builtins.list(session.exec(statement))

    def get(self, event_id: int) -> DeskEvent | None:
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(DeskEvent, event_id)

    def last_id(self, user_id: int) -> int:
        """Where a new stream starts: pops from before the desk was opened are not replayed."""
        with Session(self.engine) as session:
            found = session.exec(
                select(func.max(DeskEvent.id)).where(col(DeskEvent.user_id) == user_id)
            ).one()
        return int(found or 0)

    async def stream(
        self,
        user_id: int,
        last_id: int | None = None,
        *,
        alive: Callable[[], bool] | None = None,
        check_s: float = 15.0,
    ) -> AsyncIterator[DeskEvent]:
        """The user's pops from ``last_id`` on (None: from now), for as long as it is iterated
        and ``alive()`` (asked every ``check_s``: e.g. the desk session still open) holds.

        Database reads run in a worker thread; between them the stream waits for a local push
        or ``poll_s``, whichever comes first.
        """
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        waiter = (loop, woken)
        with self._lock:
            self._waiters.setdefault(user_id, set()).add(waiter)
        try:
            last = (
                await anyio.to_thread.run_sync(self.last_id, user_id)
                if last_id is None
                else last_id
            )
            checked = time.monotonic()
            while True:
                if alive is not None and time.monotonic() - checked >= check_s:
                    checked = time.monotonic()
                    if not await anyio.to_thread.run_sync(alive):
                        return
                woken.clear()  # before the read: a push during it wakes the next wait
                for event in await anyio.to_thread.run_sync(self.after, user_id, last):
                    assert event.id is not None
                    last = event.id
                    yield event
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self.poll_s)
        finally:
            with self._lock:
                waiters = self._waiters.get(user_id)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[user_id]

    def listening(self, user_id: int) -> int:
        """How many streams of the user are open in this process (tests, logs)."""
        with self._lock:
            return len(self._waiters.get(user_id, ()))

    def _wake(self, user_id: int) -> None:
        with self._lock:
            waiters = builtins.list(self._waiters.get(user_id, ()))
        for loop, woken in waiters:
            try:
                loop.call_soon_threadsafe(woken.set)
            except RuntimeError:  # that loop has closed; its stream is gone
                continue


_hubs: weakref.WeakKeyDictionary[Engine, DeskEvents] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


def desk_events(engine: Engine) -> DeskEvents:
    """The process's hub for ``engine``: the AMI listener, the Twilio webhook and the desk's
    streams share it, so a push in this process wakes the streams here at once."""
    with _hubs_lock:
        hub = _hubs.get(engine)
        if hub is None:
            hub = _hubs[engine] = DeskEvents(engine)
        return hub
