"""How a command refuses bad input: one line on stderr and exit status 1, never a traceback.

``fail`` raises ``Refused``; ``ivr.cli.run`` prints it after the command that refused
(``ivr tickets show: no ticket …``), as click words its own usage errors, so every refusal
reads the same whichever part of ``ivr`` made it.
"""

from __future__ import annotations

from typing import NoReturn


class Refused(Exception):
    """A command refused its input or its situation; the message says why, in one line."""


def fail(message: str) -> NoReturn:
    """Stop the command: ``ivr`` prints ``<command>: message`` on stderr and exits 1."""
    raise Refused(message)
