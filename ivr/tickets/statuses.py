"""A ticket's statuses and the one table of moves between them (as h11 keeps its states).

``TicketService.set_status`` and ``refer`` ask ``check_transition`` before they write anything,
so a refused move raises ``TransitionRefused`` and changes nothing.  The table says for every
allowed move why it exists; anything not in it is refused.

The main line is registered → in_review → referred → waiting_for_caller → answered → closed.
The shortcuts and the ways back, and why:

* registered → referred: an agent who sees at once whose matter it is refers it straight away.
* registered → answered: a question answered on the first call back (first-contact resolution)
  needs no review step in between.
* registered/in_review/referred → waiting_for_caller: the office or the agency needs something
  from the caller (a document, an address), found out on the first call back or later; the SLA
  clocks pause.
* waiting_for_caller → in_review/referred: the caller answered; the work goes back to whoever
  was doing it, and the clocks run again with the paused time added on.
* referred → in_review: the agency sends it back (not theirs); the office reviews it again.
* answered → in_review: the caller disputes the answer; the ticket is reopened.
* … → closed from anything unfinished, but only with a note saying why (a duplicate, the caller
  withdrew, never came back): closing without an answer must leave a reason in the history.
  From answered a note is not needed: the answer is the reason.
* closed is final: a new complaint about the same matter is a new ticket, with its own clock.

Moving to referred needs an agency: ``refer`` names one; ``set_status(…, referred)`` only works
for a ticket that already has one (coming back from waiting_for_caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    REGISTERED = "registered"
    IN_REVIEW = "in_review"
    REFERRED = "referred"
    WAITING_FOR_CALLER = "waiting_for_caller"
    ANSWERED = "answered"
    CLOSED = "closed"


SYSTEM = "system"
"""The actor of changes nobody made by hand (the overdue watch, a calendar recompute)."""
CALLER = "caller"
"""The actor of a ticket the caller registered on the phone."""


@dataclass(frozen=True)
class Move:
    """An allowed status change: whether it needs a note, and why it is allowed."""

    why: str
    needs_note: bool = False


_CLOSE = Move("closed without an answer: the note says why (duplicate, withdrawn …)", True)

TRANSITIONS: dict[Status, dict[Status, Move]] = {
    Status.REGISTERED: {
        Status.IN_REVIEW: Move("an agent takes the ticket up"),
        Status.REFERRED: Move("whose matter it is is clear at once"),
        Status.WAITING_FOR_CALLER: Move("the first call back shows something is missing"),
        Status.ANSWERED: Move("answered on the first call back"),
        Status.CLOSED: _CLOSE,
    },
    Status.IN_REVIEW: {
        Status.REFERRED: Move("the responsible agency takes it over"),
        Status.WAITING_FOR_CALLER: Move("the office needs something from the caller"),
        Status.ANSWERED: Move("the office answered the caller"),
        Status.CLOSED: _CLOSE,
    },
    Status.REFERRED: {
        Status.IN_REVIEW: Move("the agency sent it back: not theirs"),
        Status.WAITING_FOR_CALLER: Move("the agency needs something from the caller"),
        Status.ANSWERED: Move("the agency's answer reached the caller"),
        Status.CLOSED: _CLOSE,
    },
    Status.WAITING_FOR_CALLER: {
        Status.IN_REVIEW: Move("the caller answered; the office goes on"),
        Status.REFERRED: Move("the caller answered; the agency goes on"),
        Status.CLOSED: Move("the caller never came back: the note says so", True),
    },
    Status.ANSWERED: {
        Status.IN_REVIEW: Move("the caller disputes the answer: reopened"),
        Status.CLOSED: Move("the answer stands"),
    },
    Status.CLOSED: {},
}
"""From status → to status → the move.  A status missing from an inner table is refused."""

OPEN_STATUSES: tuple[str, ...] = tuple(
    s.value for s in (Status.REGISTERED, Status.IN_REVIEW, Status.REFERRED)
)
"""Statuses whose SLA clocks run: not paused (waiting for the caller) and not finished.  The
overdue watch, the reports and the lists all mean these by "open"."""
UNFINISHED_STATUSES: tuple[str, ...] = (*OPEN_STATUSES, Status.WAITING_FOR_CALLER.value)
"""Statuses whose deadlines still matter, so a calendar change recomputes them."""


class TransitionRefused(ValueError):
    """A status change the table does not allow (or allows only with a note)."""

    def __init__(self, tracking: str, old: str, new: str, reason: str) -> None:
        super().__init__(f"ticket {tracking}: {old} → {new} refused: {reason}")
        self.tracking, self.old, self.new, self.reason = tracking, old, new, reason


class UnknownStatus(ValueError):
    """A status name that is not one of ``Status``."""

    def __init__(self, name: str) -> None:
        known = ", ".join(s.value for s in Status)
        super().__init__(f"unknown status {name!r} (known: {known})")


def parse_status(name: Status | str) -> Status:
    try:
        return Status(name)
    except ValueError:
        raise UnknownStatus(str(name)) from None


def allowed_moves(old: Status | str) -> dict[Status, Move]:
    """Where a ticket in ``old`` may go next (empty for a closed ticket)."""
    return TRANSITIONS[parse_status(old)]


def check_transition(tracking: str, old: str, new: Status | str, note: str | None) -> Move:
    """The move from ``old`` to ``new``, or ``TransitionRefused`` saying what is allowed."""
    target = parse_status(new)
    moves = allowed_moves(old)
    move = moves.get(target)
    if move is None:
        if not moves:
            reason = f"a {old} ticket is final"
        else:
            reason = f"from {old} a ticket may go to {', '.join(s.value for s in moves)}"
        raise TransitionRefused(tracking, old, target.value, reason)
    if move.needs_note and not (note and note.strip()):
        raise TransitionRefused(tracking, old, target.value, f"a note is needed: {move.why}")
    return move
