"""SQLite's WAL is checkpointed beside the commits, not inside one (``ivr.tickets.checkpoints``):
on a real file, a commit never copies the WAL back, yet the database file receives it soon
after, and the thread that does it ends once the writes stop."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ivr.tickets import checkpoints
from ivr.tickets.db import make_engine


def wait_for(condition, limit_s: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_commits_leave_the_checkpoints_to_their_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "CHECK_EVERY_S", 0.1)
    path = tmp_path / "ivr.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as connection:
            assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
            connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
        empty = path.stat().st_size
        for index in range(400):  # 400 commits of 4 KB: about 1,000 pages of WAL
            with engine.begin() as connection:
                connection.execute(
                    text("INSERT INTO note (body) VALUES (:b)"), {"b": f"{index:04d}" * 1000}
                )
        checkpointer = checkpoints.checkpointer_for(str(path))
        assert wait_for(lambda: path.stat().st_size > empty + 1_000_000), (
            "the WAL never reached the database file"
        )
        assert wait_for(lambda: not checkpointer.running), "the thread outlived the writes"
        with engine.begin() as connection:  # a later write starts it again
            connection.execute(text("INSERT INTO note (body) VALUES ('again')"))
        assert checkpointer.running
    finally:
        engine.dispose()
