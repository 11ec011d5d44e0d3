"""The words the call records are written in: event kinds, step outcomes, how a call ended.

Defined once here, beside the engine that produces them, so the session stores them, the call
store checks them and the reports group by them — no class names, no free strings. The values
are what the ``call_step`` and ``call`` tables hold: renaming one needs a migration.
"""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """What a transport (or the ticket store) told the engine: ``call_step.event``."""

    CALL_STARTED = "call_started"
    DIGITS = "digits"
    """Keys ended by the finish key or the digit limit; the finish key alone too."""
    TIMEOUT = "timeout"
    """Silence: nothing pressed before the gather's timeout."""
    RECORDING_FINISHED = "recording_finished"
    RECORDING_FAILED = "recording_failed"
    """The caller spoke but the server could not fetch or store the recording."""
    HANGUP = "hangup"
    TICKET_CREATED = "ticket_created"
    TICKET_LOOKED_UP = "ticket_looked_up"
    SYSTEM_FAILED = "system_failed"
    AGENTS_CHECKED = "agents_checked"
    """Whether agents can answer now (hours, logged-in agents), and when they open next."""
    CALLBACK_FILED = "callback_filed"
    QUEUE_LEFT = "queue_left"
    """The caller left the agents' queue without an agent (Twilio's ``<Enqueue action>``)."""
    FOLLOWUP_CHECKED = "followup_checked"
    """The guessing limit's answer for a follow-up (``ivr.followup_guard``)."""
    """A part the call needs (the database, the ticket store) failed under it."""


class StepOutcome(StrEnum):
    """What came of one event: ``call_step.outcome``."""

    STARTED = "started"
    OK = "ok"
    """A valid key or answer: the call moved on."""
    REPEAT = "repeat"
    SKIPPED = "skipped"
    """``#`` alone at an optional entry (the national ID): a valid answer, nothing given."""
    INVALID = "invalid"
    """A key the menu does not take, or an entry that fails its check (length, check digit)."""
    REJECTED = "rejected"
    """A well-formed entry the call's data refuses (the last four digits do not match)."""
    EMPTY = "empty"
    """The finish key ``#`` alone where an answer is required; not silence."""
    TIMEOUT = "timeout"
    """Silence."""
    TOO_SHORT = "too_short"
    """A recording under the minimum length, or none at all."""
    NOT_SAVED = "not_saved"
    """The caller's recording was lost by the system (see ``EventKind.RECORDING_FAILED``)."""
    CREATED = "created"
    VERIFIED_BY_CALLER_ID = "verified_by_caller_id"
    NEEDS_VERIFICATION = "needs_verification"
    TRANSFER_REQUESTED = "transfer_requested"
    """The caller asked for an agent (pressed 0)."""
    TRANSFER_AFTER_FAILURES = "transfer_after_failures"
    """The third failure in a row at the step's node handed the caller to an agent."""
    TRANSFER_UNAVAILABLE = "transfer_unavailable"
    """The system could not go on with the call, so a person takes it."""
    AGENTS_AVAILABLE = "agents_available"
    """Agents can answer now: the caller goes to the queue."""
    NO_AGENT = "no_agent"
    """Outside the agents' hours, nobody logged in, or the queue gave the caller back."""
    CALLBACK_FILED = "callback_filed"
    """A callback is pending for the caller's number (a new one, or the one it had)."""
    QUEUE_LEFT = "queue_left"
    """The caller left the queue for the callback step (key 1 in the queue)."""
    TRIES_LEFT = "tries_left"
    """The follow-up's guessing limit lets the caller (go on) trying the last 4 digits."""
    TOO_MANY_TRIES = "too_many_tries"
    """The ticket or the caller used up the follow-up's tries: only an agent can open it."""
    GAVE_UP = "gave_up"
    """The third failure in a row where an agent cannot help either: a goodbye, then hang up."""
    HANGUP = "hangup"
    IGNORED = "ignored"
    """An event the call's node has nothing to do with (after a transfer or the hangup)."""
    UNEXPECTED = "unexpected"
    """An event of the wrong kind for the node: the node is said again."""


FAILURES = frozenset(
    {
        StepOutcome.INVALID,
        StepOutcome.REJECTED,
        StepOutcome.EMPTY,
        StepOutcome.TIMEOUT,
        StepOutcome.TOO_SHORT,
        StepOutcome.NOT_SAVED,
    }
)
"""Outcomes that count towards the three failures in a row."""
TRANSFERS = frozenset(
    {
        StepOutcome.TRANSFER_REQUESTED,
        StepOutcome.TRANSFER_AFTER_FAILURES,
        StepOutcome.TRANSFER_UNAVAILABLE,
    }
)
"""Outcomes that hand the caller to the agents' queue: the transfer's cause."""


class CallEnd(StrEnum):
    """How the IVR's part of a call ended: ``call.ended_by``."""

    CALLER = "caller"
    """The caller hung up while in the menus."""
    IVR = "ivr"
    """The IVR hung up."""
    TRANSFERRED = "transferred"
    """Handed to the agents' queue; the cause is the transfer step's outcome."""
    SYSTEM_ERROR = "system_error"
    """The IVR failed and lost the call (Asterisk's dialplan then queues the caller)."""


class CallOutcome(StrEnum):
    """What came of a call, for the reports: ``call.outcome``."""

    TICKET = "ticket"
    FOLLOWUP = "followup"
    TRANSFERRED = "transferred"
    CALLBACK = "callback"
    """A callback was filed (or the number's pending one kept) and the IVR said goodbye."""
    ABANDONED = "abandoned"
    FAILED = "failed"
