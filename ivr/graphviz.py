"""Graphviz's ``dot``: Graphviz text in, SVG out (the menu tree for people who approve it).

Debian's ``graphviz`` package provides the command; it runs with a time limit, and the text
it is given is ours (``ivr.flow.graph``), never a visitor's.
"""

from __future__ import annotations

import shutil
import subprocess

DOT_TIMEOUT_S = 30


class GraphvizError(Exception):
    """``dot`` is missing or could not draw the graph; the message says which and how to fix it."""


def dot_to_svg(dot: str) -> str:
    command = shutil.which("dot")
    if command is None:
        raise GraphvizError(
            "Graphviz's dot is not installed; install the Debian package: apt-get install graphviz"
        )
    try:
        done = subprocess.run(
            [command, "-Tsvg"],
            input=dot.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GraphvizError(f"dot took longer than {DOT_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise GraphvizError(f"dot failed ({done.returncode}): {message}")
    return done.stdout.decode("utf-8")
