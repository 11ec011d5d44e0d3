"""Each menu node's Persian name (``node_names.toml``), for people reading a call's path: agents
in the screen pop, supervisors in the nightly report. Node ids stay what is stored."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

NAMES_FILE = Path(__file__).with_name("node_names.toml")


@cache
def node_names() -> dict[str, str]:
    with NAMES_FILE.open("rb") as f:
        return dict(tomllib.load(f)["node"])


def node_name(node: str) -> str:
    """The node's Persian name; its id when the file has none (a path stored before a node was
    renamed or removed)."""
    return node_names().get(node, node)
