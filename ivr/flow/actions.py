"""What the engine asks a transport to do.

Every answer of the engine ends with exactly one action that waits for the caller or ends the
call (``Gather``, ``Record``, ``Transfer``, ``HangUp``) — so no path can end in silence — or
with one ticket operation, which the call session performs before the transport sees anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recorded:
    """The caller's own recording, played back inside a prompt list."""

    path: str


Audio = str | Recorded
"""A prompt id from the catalogue, or a recording."""


@dataclass(frozen=True)
class Play:
    prompts: tuple[Audio, ...]


@dataclass(frozen=True)
class Gather:
    """Play prompts that a key interrupts, then collect keys."""

    prompts: tuple[Audio, ...]
    max_digits: int
    finish_on_key: str | None
    timeout_s: int
    allow_empty: bool = False
    """The finish key alone is an answer (skip an optional entry), not silence."""


@dataclass(frozen=True)
class Record:
    max_s: int
    finish_on_key: str
    beep: bool = True


@dataclass(frozen=True)
class Transfer:
    queue: str


@dataclass(frozen=True)
class HangUp:
    pass


@dataclass(frozen=True)
class CreateTicket:
    channel: str
    province: str
    category: str
    place: str | None
    recording_path: str | None
    caller_number: str | None
    callback_number: str
    national_id: str | None


@dataclass(frozen=True)
class LookupTicket:
    tracking: str


@dataclass(frozen=True)
class CheckAgents:
    """Can agents answer this call now (their hours; where the PBX says, someone free)?"""

    province: str
    channel: str


@dataclass(frozen=True)
class RequestCallback:
    """File a callback for ``number``; ``entered_at`` (ISO, UTC) keeps the caller's place in
    the queue they left, None means now (a request from the "no agent" menu)."""

    number: str
    province: str
    entered_at: str | None


@dataclass(frozen=True)
class CheckFollowup:
    """May this caller still try to prove they own this ticket (the guessing limit)?"""

    tracking: str
    caller: str | None


@dataclass(frozen=True)
class CountFailedFollowup:
    """Count a failed try at a ticket's last 4 digits; ``found`` False when the tracking number
    names no ticket (the caller cannot tell the two apart, the counts can)."""

    tracking: str
    caller: str | None
    found: bool


Action = (
    Play
    | Gather
    | Record
    | Transfer
    | HangUp
    | CreateTicket
    | LookupTicket
    | CheckAgents
    | RequestCallback
    | CheckFollowup
    | CountFailedFollowup
)
WAITS = (Gather, Record, Transfer, HangUp)
OPERATIONS = (
    CreateTicket,
    LookupTicket,
    CheckAgents,
    RequestCallback,
    CheckFollowup,
    CountFailedFollowup,
)
