"""The follow-up guessing limit: failed tries counted per ticket and per calling number.

The last 4 digits of a callback number are only 10,000 guesses, so every wrong answer (and
every tracking number that names no ticket) is written to ``followup_try``, the one table this
module owns. Counting happens in the shared database, so a guesser who spreads calls over the
nodes of a cluster meets the same limit. Once a ticket, or a caller, has used up its tries in
the window, the follow-up hands the caller to an agent, and a warning for supervisors names the
ticket and the number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, bindparam, func, select

from ivr.clock import as_stored, utcnow
from ivr.tickets.models import FollowupTry

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
"""How far back failed tries count: a rolling day, so midnight gives a guesser nothing."""
WITHHELD = "withheld"
"""The caller key of calls without a calling number: they share one allowance."""

_TRY = FollowupTry.__table__  # type: ignore[attr-defined]
_INSERT = _TRY.insert()
_BY_TICKET = (
    select(func.count())
    .select_from(_TRY)
    .where(_TRY.c.tracking == bindparam("tracking"), _TRY.c.at >= bindparam("since"))
    .scalar_subquery()
)
_BY_CALLER = (
    select(func.count())
    .select_from(_TRY)
    .where(_TRY.c.caller == bindparam("caller"), _TRY.c.at >= bindparam("since"))
    .scalar_subquery()
)
_COUNTS = select(_BY_TICKET, _BY_CALLER)


class TryKind(StrEnum):
    """What went wrong in one failed try: ``followup_try.kind``."""

    MISMATCH = "mismatch"
    """The last 4 digits typed are not the ticket's callback number's."""
    NOT_FOUND = "not_found"
    """The tracking number is well formed but names no ticket."""


@dataclass(frozen=True)
class Verdict:
    """Whether a follow-up may go on, with the failed tries that decided it."""

    allowed: bool
    ticket_tries: int
    caller_tries: int


class FollowupGuard:
    """Counts failed follow-up tries and says when a ticket or a caller has had enough."""

    def __init__(
        self, engine: Engine, *, per_ticket: int, per_caller: int, window: timedelta = WINDOW
    ) -> None:
        self.engine = engine
        self.per_ticket = per_ticket
        self.per_caller = per_caller
        self.window = window

    def check(self, tracking: str, caller: str | None, *, now: datetime | None = None) -> Verdict:
        """May ``caller`` try ``tracking`` now? Logged for supervisors when not."""
        verdict = self._verdict(tracking, caller_key(caller), now or utcnow())
        if not verdict.allowed:
            self._warn("refused a follow-up", tracking, caller, verdict)
        return verdict

    def failed(
        self,
        tracking: str,
        caller: str | None,
        kind: TryKind,
        *,
        call_id: int | None = None,
        now: datetime | None = None,
    ) -> Verdict:
        """Count one failed try; the verdict includes it (the try that uses up the allowance
        already stops the caller)."""
        moment = now or utcnow()
        key = caller_key(caller)
        with self.engine.begin() as connection:
            connection.execute(
                _INSERT,
                {
                    "at": as_stored(FollowupTry.at, moment),
                    "tracking": tracking[:16],
                    "caller": key,
                    "kind": TryKind(kind).value,
                    "call_id": call_id,
                },
            )
        verdict = self._verdict(tracking, key, moment)
        if not verdict.allowed:
            self._warn(f"limit reached by a {kind.value} try", tracking, caller, verdict)
        return verdict

    def _verdict(self, tracking: str, key: str, now: datetime) -> Verdict:
        since = as_stored(FollowupTry.at, now - self.window)
        with self.engine.connect() as connection:
            row = connection.execute(
                _COUNTS, {"tracking": tracking[:16], "caller": key, "since": since}
            ).one()
        ticket_tries, caller_tries = int(row[0]), int(row[1])
        allowed = ticket_tries < self.per_ticket and caller_tries < self.per_caller
        return Verdict(allowed, ticket_tries, caller_tries)

    def _warn(self, what: str, tracking: str, caller: str | None, verdict: Verdict) -> None:
        log.warning(
            "follow-up guard: %s: ticket %s has %d failed tries (limit %d), caller %s has %d"
            " (limit %d) in the last %d h; only an agent can open it now",
            what,
            tracking,
            verdict.ticket_tries,
            self.per_ticket,
            caller or WITHHELD,
            verdict.caller_tries,
            self.per_caller,
            self.window.total_seconds() // 3600,
        )


def caller_key(caller: str | None) -> str:
    """The calling number as counted: as the network gave it, ``withheld`` when it gave none."""
    return (caller or "").strip()[:32] or WITHHELD
