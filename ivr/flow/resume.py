"""A call the dialplan hands back to the IVR from the agents' queue, and why.

The dialplan (``[ivr-124-resume]`` in dialplans/extensions.conf) says it in the AGI path;
``ivr.telephony.asterisk`` reads it into a ``QueueReturn`` for ``CallSession.start``. The flow's
nodes for these calls (the "no agent" branch, the callback confirm step) use it; until they
exist, a returning call starts like a new one.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import StrEnum


class ReturnReason(StrEnum):
    CALLBACK = "callback"
    """The caller pressed 1 in the queue: confirm the number, keep the place (``entered_at``)."""
    NO_AGENT = "no_agent"
    """Queue() gave the caller back: nobody logged in or all paused, full, or no such queue."""


@dataclass(frozen=True)
class QueueReturn:
    reason: ReturnReason
    queue: str
    status: str
    """Asterisk's QUEUESTATUS (JOINEMPTY, LEAVEEMPTY, FULL, UNKNOWN…) or EXITWITHKEY."""
    entered_at: datetime.datetime | None
    """When the caller joined the queue (UTC): a callback is served in this order."""
    position: int | None
    """The caller's position when leaving; None when the caller never joined."""
    waited_s: int | None
