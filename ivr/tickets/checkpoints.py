"""SQLite's WAL checkpoints, done beside the commits that callers wait for instead of inside one.

By default the commit that takes the WAL past 1,000 pages copies them back into the database
file itself: about one new ticket in eighty, and that caller's commit takes 5 ms instead of
0.6 (it was the p99 of ticket creation). This process's connections turn that off
(``PRAGMA wal_autocheckpoint=0``, ``ivr.tickets.db``) and each write's commit pokes the file's
checkpointer instead. The checkpointer runs PASSIVE checkpoints, which never wait for or block
a reader or a writer, every ``CHECK_EVERY_S`` while commits come. After ``IDLE_PASSES`` quiet
passes it ends, so an idle database or a finished command keeps no thread. SQLite itself
checkpoints when the last connection to a file closes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.5
IDLE_PASSES = 4


class Checkpointer:
    """The WAL checkpoints of one database file, on a thread that runs only while it is written."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._poked = False

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None

    def poke(self) -> None:
        """A write was committed: checkpoint soon (a thread is started if none runs)."""
        with self._lock:
            self._poked = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"wal-checkpoint {Path(self.path).name}", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            # mode=rw: a database removed meanwhile is not created again, empty.
            connection = sqlite3.connect(
                f"file:{self.path}?mode=rw", uri=True, timeout=0, isolation_level=None
            )
        except sqlite3.Error as error:
            log.warning("no WAL checkpoints for %s: %s", self.path, error)
            with self._lock:
                self._thread = None
            return
        try:
            quiet = 0
            while True:
                time.sleep(CHECK_EVERY_S)
                with self._lock:
                    poked, self._poked = self._poked, False
                    if not poked:
                        quiet += 1
                        if quiet >= IDLE_PASSES:
                            self._thread = None
                            return
                        continue
                quiet = 0
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # busy: another process checkpoints; next pass
                    log.debug("WAL checkpoint of %s skipped: %s", self.path, error)
        finally:
            connection.close()


_checkpointers: dict[str, Checkpointer] = {}
_guard = threading.Lock()


def checkpointer_for(database: str) -> Checkpointer:
    """One checkpointer per SQLite file per process, shared by every engine on it."""
    key = str(Path(database).resolve())
    with _guard:
        found = _checkpointers.get(key)
        if found is None:
            found = _checkpointers[key] = Checkpointer(key)
        return found
