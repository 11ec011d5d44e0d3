"""One dispatcher pass: which callbacks to place now, and where in the agents' queue.

The scheduler's leader runs :meth:`Dispatcher.dispatch_once` every few seconds. The rules, each
with its reason:

* **Entry order, together with live callers.** A callback keeps the place of the queue entry it
  came from. With a dialer that holds places (Asterisk, agent-first) the attempt is a stand-in
  channel that joins the agents' queue at the position its entry time gives among the entries
  waiting there, so app_queue itself serves callbacks and live callers in entry order.
* **A look-ahead as wide as the agents.** A stand-in is placed only when fewer entries than there
  are logged-in agents wait ahead of it. Live callers join the queue by themselves; a callback
  must already be in it when its turn comes, and between two passes at most one entry per agent
  is served, so a callback outside this window cannot be passed over before the next pass. At
  most that many stand-ins wait at once, so the queue (maxlen) stays for live callers.
* **Never more callbacks in progress than agents.** A callback is *in progress* only once an
  agent has taken its stand-in; the caller is rung only then. A dialer that rings callers at
  once (Twilio, caller-first) may start only as many as there are free agents not yet promised.
* **One attempt at a time per number**: one open callback per number (a unique column) and one
  open attempt per callback (the claim is a conditional UPDATE, safe with several nodes).
* **Agents' hours**: only callbacks of provinces whose agents answer now are placed, and a
  stand-in still waiting when its province closes is withdrawn (not counted as an attempt).
* **Leases**: an attempt nobody has heard of for ``lease/2`` is checked with the dialer: alive,
  its lease is renewed; ended while no one listened, its stored outcome is taken; no trace and
  its lease is over, it is closed as interrupted — counted, and the next try waits the spacing.

Where the order is exact only up to one pass (IVR_CALLBACK_DISPATCH_SECONDS): a caller who
presses 1 is out of the queue until the next pass places their stand-in, so an agent freed in
between takes the next caller; live callers' entry times come from QueueStatus in whole seconds;
and an entry leaving the queue between the pass's QueueStatus and its Originate shifts the
stand-in's position by one.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ivr.calendar.agent_hours import AgentHours
from ivr.callbacks.dialing import (
    ALIVE,
    AttemptOrder,
    Connected,
    Dialer,
    DialError,
    DialEvent,
    Ended,
)
from ivr.callbacks.models import CallbackStatus, Outcome
from ivr.callbacks.queue_view import QueueSnapshot, QueueView, QueueViewError
from ivr.callbacks.service import CallbackService, OpenAttempt
from ivr.clock import as_aware

log = logging.getLogger(__name__)


@dataclass
class PassReport:
    """What one pass did (attempt ids), for logs and tests."""

    placed: list[int] = field(default_factory=list)
    withdrawn: list[int] = field(default_factory=list)
    renewed: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)
    interrupted: list[int] = field(default_factory=list)
    window: int = 0
    error: str | None = None

    def __bool__(self) -> bool:
        return bool(self.placed or self.withdrawn or self.recovered or self.interrupted)


class CallNowRefused(Exception):
    """A "call now" the rules do not allow at this moment: the message says which rule, the
    ``code`` names it for a page (unknown, not_pending, closed, queue, no_agent, full, busy,
    dial, no_dialer)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Dispatcher:
    """Places callbacks through one dialer, looking at one queue."""

    def __init__(
        self,
        service: CallbackService,
        hours: AgentHours,
        view: QueueView,
        dialer: Dialer,
        *,
        node: str = "node1",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.service = service
        self.hours = hours
        self.view = view
        self.dialer = dialer
        self.node = node
        self.clock = clock or service.clock
        dialer.listen(self.on_event)

    # -- events from the dialer (its own thread) ------------------------------------------------

    def on_event(self, event: DialEvent) -> None:
        """Record what the dialer saw; the first outcome of an attempt wins."""
        now = as_aware(self.clock())
        if isinstance(event, Connected):
            self.service.connected(event.attempt_id, event.agent, at=now)
        elif isinstance(event, Ended):
            self.service.finish(event.attempt_id, event.outcome, event.detail, at=now)

    # -- one pass --------------------------------------------------------------------------------

    def dispatch_once(self, now: datetime | None = None) -> PassReport:
        report = PassReport()
        moment = as_aware(now or self.clock())
        attempts = self.service.open_attempts()
        self._check_leases(attempts, moment, report)
        try:
            snapshot = self.view.snapshot()
        except QueueViewError as error:
            report.error = f"queue not readable: {error}"
            log.warning("callbacks: %s; nothing placed", report.error)
            return report
        if report.recovered or report.interrupted:  # some closed: read them again
            attempts = self.service.open_attempts()
        open_attempts = {a.id: a for a in attempts}
        self._withdraw_stale(snapshot, open_attempts, moment, report)
        self._place(snapshot, open_attempts, moment, report)
        if report:
            log.info(
                "callbacks: placed %s withdrawn %s recovered %s interrupted %s (window %d)",
                report.placed,
                report.withdrawn,
                report.recovered,
                report.interrupted,
                report.window,
            )
        return report

    def _check_leases(self, attempts: list[OpenAttempt], now: datetime, report: PassReport) -> None:
        soon = now + self.service.lease / 2
        stale = [a for a in attempts if a.lease_until is None or a.lease_until <= soon]
        if not stale:
            return
        try:
            checks = self.dialer.check(stale)
        except DialError as error:  # cannot tell alive from dead: decide next time
            log.warning("callbacks: cannot check %d attempts: %s", len(stale), error)
            return
        alive = []
        for attempt in stale:
            found = checks.get(attempt.id)
            if found == ALIVE:
                alive.append(attempt.id)
            elif isinstance(found, Ended):
                if self.service.finish(attempt.id, found.outcome, found.detail, at=now):
                    report.recovered.append(attempt.id)
            elif attempt.lease_until is None or attempt.lease_until <= now:
                detail = "lease expired with no trace of the call (its dispatcher died?)"
                if self.service.finish(attempt.id, Outcome.INTERRUPTED, detail, at=now):
                    report.interrupted.append(attempt.id)
        self.service.renew(alive, now)
        report.renewed.extend(alive)

    def _withdraw_stale(
        self,
        snapshot: QueueSnapshot,
        open_attempts: dict[int, OpenAttempt],
        now: datetime,
        report: PassReport,
    ) -> None:
        """Stand-ins that must leave the queue: closed attempt, cancelled callback, hours over."""
        for entry in snapshot.waiting:
            if entry.attempt_id is None:
                continue
            attempt = open_attempts.get(entry.attempt_id)
            if attempt is None:
                reason = "its attempt is already closed"
            elif attempt.callback_status == CallbackStatus.CANCELLED:
                reason = "the callback was cancelled"
            elif attempt.connected_at is None and not self.hours.is_open(attempt.province, now):
                reason = "the agents' hours are over"
            else:
                continue
            if attempt is not None:
                self.service.finish(attempt.id, Outcome.WITHDRAWN, reason, at=now)
                del open_attempts[attempt.id]
            try:
                self.dialer.withdraw(entry.attempt_id, entry.channel)
            except DialError as error:
                log.warning("callbacks: could not withdraw %s: %s", entry.channel, error)
            report.withdrawn.append(entry.attempt_id)

    def _place(
        self,
        snapshot: QueueSnapshot,
        open_attempts: dict[int, OpenAttempt],
        now: datetime,
        report: PassReport,
    ) -> None:
        holding = [a for a in open_attempts.values() if a.connected_at is None]
        live = [e for e in snapshot.waiting if e.attempt_id is None]
        if self.dialer.holds_place:
            window = snapshot.agents_logged_in
        else:  # every open attempt is a caller ringing or talking: each has an agent promised,
            # unless an agent already talks to it (no longer free, and counted so already).
            promised = [a for a in open_attempts.values() if a.external_id not in snapshot.serving]
            window = snapshot.agents_free - len(promised)
        report.window = max(window, 0)
        if window <= 0:
            return
        # Everything that will be served before a callback entered at t: every live caller and
        # every stand-in (visible in the queue yet or not) that entered no later than t.
        ahead_times = sorted([e.entered_at for e in live] + [a.entered_at for a in holding])
        # The queue as Asterisk holds it, for the position argument.
        queue_times = [
            open_attempts[e.attempt_id].entered_at
            if e.attempt_id in open_attempts
            else e.entered_at
            for e in snapshot.waiting
        ]
        provinces = {p for p in self.service.pending_provinces() if self.hours.is_open(p, now)}
        placed_here = 0
        for callback in self.service.due(now, provinces, limit=window):
            assert callback.id is not None
            entered = as_aware(callback.entered_at)
            ahead = bisect.bisect_right(ahead_times, entered)
            if ahead >= window:
                break  # outside the look-ahead: and so is every later one
            if snapshot.max_len and len(snapshot.waiting) + placed_here >= snapshot.max_len:
                break
            attempt = self.service.claim(callback.id, self.node, self.dialer.name, now)
            if attempt is None or attempt.id is None:
                continue  # another dispatcher took it, or it was cancelled a moment ago
            newer = next((i for i, t in enumerate(queue_times) if t > entered), len(queue_times))
            order = AttemptOrder(
                attempt_id=attempt.id,
                callback_id=callback.id,
                number=callback.number,
                province=callback.province,
                entered_at=entered,
                position=newer + placed_here + 1,
            )
            try:
                external_id = self.dialer.place(order)
            except DialError as error:
                self.service.finish(attempt.id, Outcome.WITHDRAWN, f"not placed: {error}", at=now)
                log.warning("callbacks: attempt %d not placed: %s", attempt.id, error)
                continue
            self.service.placed(attempt.id, external_id)
            if not self.dialer.holds_place:  # caller-first: ringing now, an agent is promised
                self.service.connected(attempt.id, at=now)
            bisect.insort(ahead_times, entered)
            placed_here += 1
            report.placed.append(attempt.id)

    # -- a supervisor's "call now" ----------------------------------------------------------------

    def call_now(self, callback_id: int, now: datetime | None = None) -> int:
        """Place one pending callback at once (the desk's "call now"); the attempt's id.

        The same rules as a pass, except the retry spacing: inside its province's agents'
        hours only; one attempt at a time per number (the claim); and only onto an agent who
        is free and promised to no one — every entry already waiting and every attempt not yet
        taken comes first, so the callback jumps ahead of nobody. Raises CallNowRefused.
        """
        moment = as_aware(now or self.clock())
        callback = self.service.get(callback_id)
        if callback is None:
            raise CallNowRefused(f"no callback {callback_id}", "unknown")
        if callback.status != CallbackStatus.PENDING:
            raise CallNowRefused(
                f"callback {callback_id} is {callback.status}, not pending", "not_pending"
            )
        if not self.hours.is_open(callback.province, moment):
            raise CallNowRefused(f"the agents of {callback.province} do not answer now", "closed")
        try:
            snapshot = self.view.snapshot()
        except QueueViewError as error:
            raise CallNowRefused(f"the queue cannot be read: {error}", "queue") from None
        open_attempts = self.service.open_attempts()
        waiting_ids = {e.attempt_id for e in snapshot.waiting if e.attempt_id is not None}
        promised = len(snapshot.waiting) + sum(
            1 for a in open_attempts if a.connected_at is None and a.id not in waiting_ids
        )
        if not self.dialer.holds_place:  # caller-first: every open attempt holds an agent
            promised = len(snapshot.waiting) + len(open_attempts)
        if snapshot.agents_free - promised <= 0:
            raise CallNowRefused("no agent is free for it now", "no_agent")
        if snapshot.max_len and len(snapshot.waiting) >= snapshot.max_len:
            raise CallNowRefused("the queue is full", "full")
        attempt = self.service.claim(callback_id, self.node, self.dialer.name, moment, early=True)
        if attempt is None or attempt.id is None:
            raise CallNowRefused(f"callback {callback_id} is being called already", "busy")
        order = AttemptOrder(
            attempt_id=attempt.id,
            callback_id=callback_id,
            number=callback.number,
            province=callback.province,
            entered_at=as_aware(callback.entered_at),
            position=len(snapshot.waiting) + 1,
        )
        try:
            external_id = self.dialer.place(order)
        except DialError as error:
            self.service.finish(attempt.id, Outcome.WITHDRAWN, f"not placed: {error}", at=moment)
            raise CallNowRefused(f"the call could not be placed: {error}", "dial") from None
        self.service.placed(attempt.id, external_id)
        if not self.dialer.holds_place:
            self.service.connected(attempt.id, at=moment)
        log.info("callbacks: call now %d placed as attempt %d", callback_id, attempt.id)
        return attempt.id
