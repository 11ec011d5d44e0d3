"""How a test reads an ``ivr`` command's refusal: the one line every refusal is."""

from __future__ import annotations

import subprocess


def refusal(done: subprocess.CompletedProcess[str], command: str) -> str:
    """What ``ivr COMMAND …`` said as it refused (``command`` as typed: ``"tickets show"``):
    status 1, one line on stderr that starts with ``ivr COMMAND:``, no traceback; the rest of
    that line."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    prefix = f"ivr {command}: "
    assert len(lines) == 1 and lines[0].startswith(prefix), done.stderr
    return lines[0].removeprefix(prefix)
