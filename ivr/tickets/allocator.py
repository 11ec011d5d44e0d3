"""Tracking numbers for several nodes at once, and while the database is briefly away."""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ivr.clock import as_stored, utcnow
from ivr.tickets.models import TrackingBlock, TrackingKey
from ivr.tickets.tracking import keyed_sequence, keyed_tracking

MAX_BLOCK_SIZE = 1000
"""Migration 0009 counts on it: every sequence number reserved before it is below
``(last block + 1) * MAX_BLOCK_SIZE``."""


_BLOCK: Table = TrackingBlock.__table__  # type: ignore[attr-defined]
_KEY: Table = TrackingKey.__table__  # type: ignore[attr-defined]
_INSERT_BLOCK = insert(_BLOCK).returning(_BLOCK.c.id)
_READ_KEY = select(_KEY.c.secret, _KEY.c.legacy_end).where(_KEY.c.id == 1)


class TrackingKeyMissing(RuntimeError):
    """The database has no tracking key: it was not upgraded (``ivr db upgrade``)."""


log = logging.getLogger(__name__)


class TrackingAllocator:
    """Hi/lo tracking numbers: a TrackingBlock row's id ``k`` owns sequence numbers [k*B, (k+1)*B).

    Every node sharing a database must use the same block size B. The next block is reserved
    when the current one is half used, so numbers keep coming while the database is briefly
    down; a restart forgets the rest of its blocks (gaps are harmless, duplicates are not).
    A sequence number becomes a tracking number through the database's shared key
    (:func:`ivr.tickets.tracking.keyed_tracking`), read with the first block: distinct
    sequence numbers give distinct tracking numbers, and neighbours are far apart.
    """

    def __init__(self, engine: Engine, node: str, block_size: int = 20) -> None:
        if not 2 <= block_size <= MAX_BLOCK_SIZE:
            raise ValueError(f"block_size must be 2..{MAX_BLOCK_SIZE}")
        self._engine = engine
        self._node = node
        self.block_size = block_size
        self._lock = threading.Lock()
        self._next = 0
        self._end = 0  # the current block is used up when _next == _end
        self._spare: int | None = None  # a block reserved ahead, not yet started
        self._reserving = False
        self._key: tuple[bytes, int] | None = None  # the shared secret and legacy_end

    def next_sequence(self) -> int:
        """The next sequence number; raises an UNAVAILABLE error only if no reserved one is left."""
        size = self.block_size
        with self._lock:
            if self._next >= self._end:
                block = self._spare if self._spare is not None else self._new_block()
                self._spare = None
                self._next, self._end = block * size, (block + 1) * size
            n = self._next
            self._next += 1
            reserve = (
                self._spare is None and not self._reserving and self._end - self._next <= size // 2
            )
            self._reserving = self._reserving or reserve
        if reserve:  # outside the lock: other threads keep taking numbers meanwhile
            self._reserve_ahead()
        return n

    def next_tracking(self) -> str:
        n = self.next_sequence()
        assert self._key is not None  # read with the first block, before any number
        return keyed_tracking(n, *self._key)

    def sequence_of(self, tracking: str) -> int | None:
        """Which sequence number (and so which block) a tracking number of this database's key
        came from; None for one it did not issue (or before the key is read)."""
        return None if self._key is None else keyed_sequence(tracking, *self._key)

    def ensure_ready(self) -> None:
        """Hold a block before any number is needed (best effort), so that even the first
        caller of a fresh node who confirms while the database is down hears a number."""
        with self._lock:
            ready = self._next < self._end or self._spare is not None or self._reserving
            self._reserving = True if not ready else self._reserving
        if not ready:
            self._reserve_ahead()

    def _reserve_ahead(self) -> None:
        """Best effort: the current block still has numbers, so a failure here only logs."""
        block: int | None = None
        try:
            block = self._new_block()
        except SQLAlchemyError:
            log.warning("could not reserve the next tracking block; will retry", exc_info=True)
        finally:
            with self._lock:
                self._reserving = False
                if block is not None:
                    self._spare = block

    def _new_block(self) -> int:
        """Reserve a block: one Core insert (a tenth of the tickets wait for it, at B = 20)."""
        with self._engine.begin() as connection:
            if self._key is None:
                key = connection.execute(_READ_KEY).first()
                if key is None:
                    raise TrackingKeyMissing("no tracking key in the database: run ivr db upgrade")
                self._key = (bytes.fromhex(key.secret), key.legacy_end)
            allocated_at = as_stored(_BLOCK.c.allocated_at, utcnow())
            return int(
                connection.execute(
                    _INSERT_BLOCK, {"node": self._node, "allocated_at": allocated_at}
                ).scalar_one()
            )
