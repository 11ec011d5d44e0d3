"""Several nodes on one database: ``ivr`` subprocesses and the logs they write.

* ``db_url`` / ``migrated_url`` / ``pg_url`` — from ``tests/pg.py``: SQLite and a scratch
  PostgreSQL database (``pg_url``: PostgreSQL only).
* ``nodes`` — a factory of :class:`Node` processes (``ivr scheduler`` or ``ivr serve``), each
  killed at the end of the test if it is still running.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ivr_nodes import PROJECT_ROOT, Node, ivr_command, node_env
from pg import db_url, migrated_url, pg_url  # noqa: F401  (fixtures for this folder)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    """``nodes(name, db_url, *args, storage=None, **settings)`` starts ``ivr ARGS`` (default
    ``scheduler``) as node ``name``; every node still running is killed afterwards."""
    started: list[Node] = []

    def start(
        name: str, url: str, *args: str, storage: Path | None = None, **settings: str
    ) -> Node:
        storage = storage or tmp_path / f"storage-{name}"
        storage.mkdir(parents=True, exist_ok=True)
        env = node_env(storage, url, node_name=name, **settings)
        log_path = tmp_path / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [ivr_command(), *(args or ("scheduler",))],
                env=env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        node = Node(name, process, log_path)
        started.append(node)
        return node

    yield start
    for node in started:
        if node.alive():
            node.process.kill()
            node.process.wait(timeout=10)
        # Captured: pytest shows it only when the test failed.
        print(f"--- node {node.name} (exit {node.process.returncode}) ---\n{node.log()[-4000:]}")
