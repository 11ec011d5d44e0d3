"""The agents' queue on Twilio, as the callback dispatcher needs it: who waits, who is free.

Two sources, because Twilio knows one half and our webhooks the other:

* **Waiting callers** come from Twilio's Queues REST API: the queue named IVR_AGENT_QUEUE in
  ``GET …/Queues.json`` (its sid is kept), then ``GET …/Queues/{sid}/Members.json``, whose
  ``date_enqueued`` is each caller's entry time (callbacks are served in entry order with them).
* **Agents** come from the ``agent_line`` table the agents' line keeps (``ivr.callbacks.
  agent_line``): an agent waiting in ``<Dial><Queue>`` is free, one whose connect URL was asked
  is talking. Twilio lists no dequeuers, so this is the only place that knows. An agent's row no
  webhook touched for a while (each ``<Dial>`` ends at most every 600 s and asks its action URL)
  is checked with ``GET …/Calls/{sid}.json`` and dropped once that call is over.

Every request goes only to IVR_TWILIO_API_BASE, is bounded by IVR_TWILIO_TIMEOUT_SECONDS and
by :data:`MAX_BODY` bytes, and reads one page (:data:`MEMBERS_PAGE` callers: the dispatcher
looks no further ahead than there are agents).
"""

from __future__ import annotations

import email.utils
import logging
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ivr.callbacks.agent_line import AgentLine
from ivr.callbacks.models import AgentLineState
from ivr.callbacks.queue_view import QueueSnapshot, QueueViewError, WaitingEntry
from ivr.clock import as_aware, utcnow

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000
"""Bytes one REST answer may have (a full Members page is about 300 kB)."""
MEMBERS_PAGE = 1000
"""Twilio's largest page, and its default queue size."""
QUEUES_PAGE = 100
QUIET = timedelta(seconds=660)
"""An agent's row untouched this long is asked about: a <Dial> lasts at most 600 s."""
MAX_CHECKS = 20
"""Agents' calls asked about in one snapshot at most (the rest wait for the next one)."""
LIVE_CALL = frozenset({"queued", "ringing", "in-progress"})


class TwilioRest:
    """GET requests to Twilio's REST API under one base URL, bounded in time and size."""

    def __init__(self, base: str, account_sid: str, auth_token: str, timeout: float) -> None:
        if not account_sid or not auth_token:
            raise ValueError(
                "Twilio callbacks need IVR_TWILIO_ACCOUNT_SID and IVR_TWILIO_AUTH_TOKEN"
            )
        self.base = base.rstrip("/")
        self.account_sid = account_sid
        self.client = httpx.Client(
            auth=(account_sid, auth_token),
            timeout=timeout,
            follow_redirects=False,  # nothing but the base URL is asked
        )

    def url(self, path: str, **query: str | int) -> str:
        account = urllib.parse.quote(self.account_sid, safe="")
        tail = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"{self.base}/2010-04-01/Accounts/{account}/{path}{tail}"

    def get(self, path: str, **query: str | int) -> dict[str, Any] | None:
        """The JSON answer; None for 404. Raises QueueViewError for anything else."""
        url = self.url(path, **query)
        try:
            with self.client.stream("GET", url) as reply:
                if reply.status_code == 404:
                    return None
                if reply.status_code != 200:
                    raise QueueViewError(f"Twilio {path}: HTTP {reply.status_code}")
                body = bytearray()
                for chunk in reply.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise QueueViewError(f"Twilio {path}: answer over {MAX_BODY} bytes")
            found = httpx.Response(200, content=bytes(body)).json()
        except httpx.HTTPError as error:
            raise QueueViewError(f"Twilio {path}: {error}") from error
        except ValueError as error:
            raise QueueViewError(f"Twilio {path}: not JSON ({error})") from error
        if not isinstance(found, dict):
            raise QueueViewError(f"Twilio {path}: not a JSON object")
        return found

    def close(self) -> None:
        self.client.close()


def _entered(member: dict[str, Any], now: datetime) -> datetime:
    """A member's ``date_enqueued`` (RFC 2822), else now minus its ``wait_time``."""
    text = member.get("date_enqueued")
    if isinstance(text, str):
        try:
            return as_aware(email.utils.parsedate_to_datetime(text)).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    wait = member.get("wait_time")
    return now - timedelta(seconds=wait if isinstance(wait, int) and wait >= 0 else 0)


class TwilioQueueView:
    """One snapshot: the queue's members from Twilio, the agents from ``agent_line``."""

    def __init__(
        self,
        rest: TwilioRest,
        line: AgentLine,
        queue: str,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.rest = rest
        self.line = line
        self.queue = queue
        self.clock = clock
        self._queue_sid: str | None = None
        self._max_size = 0

    def _find_queue(self) -> str | None:
        if self._queue_sid is None:
            page = self.rest.get("Queues.json", PageSize=QUEUES_PAGE) or {}
            for queue in page.get("queues") or []:
                if isinstance(queue, dict) and queue.get("friendly_name") == self.queue:
                    self._queue_sid = str(queue.get("sid") or "") or None
                    size = queue.get("max_size")
                    self._max_size = size if isinstance(size, int) else 0
        return self._queue_sid  # None: nobody was ever enqueued (<Enqueue> creates it)

    def _waiting(self, now: datetime) -> tuple[WaitingEntry, ...]:
        sid = self._find_queue()
        if sid is None:
            return ()
        quoted = urllib.parse.quote(sid, safe="")
        page = self.rest.get(f"Queues/{quoted}/Members.json", PageSize=MEMBERS_PAGE)
        if page is None:  # the queue was deleted: look it up again next time
            self._queue_sid = None
            return ()
        entries = []
        for member in page.get("queue_members") or []:
            if not isinstance(member, dict):
                continue
            position = member.get("position")
            entries.append(
                WaitingEntry(
                    position=position if isinstance(position, int) else len(entries) + 1,
                    entered_at=_entered(member, now),
                    channel=str(member.get("call_sid") or ""),
                )
            )
        return tuple(sorted(entries, key=lambda e: e.position))

    def _drop_ended(self) -> None:
        """Agents' rows nobody has heard of for QUIET whose calls Twilio says are over."""
        rows = self.line.present()
        ended = []
        for row in self.line.unseen_since(rows, QUIET)[:MAX_CHECKS]:
            call = self.rest.get(f"Calls/{urllib.parse.quote(row.call_sid, safe='')}.json")
            if call is None or str(call.get("status") or "") not in LIVE_CALL:
                ended.append(row.call_sid)
        if ended:
            log.info("agents' line: %d calls ended unheard", self.line.gone(ended))

    def snapshot(self) -> QueueSnapshot:
        now = as_aware(self.clock())
        self._drop_ended()
        waiting = self._waiting(now)
        rows = self.line.present()
        free = sum(1 for row in rows if row.state == AgentLineState.IDLE)
        serving = frozenset(
            row.caller_sid for row in rows if row.state == AgentLineState.TALKING and row.caller_sid
        )
        return QueueSnapshot(len(rows), free, waiting, self._max_size, serving=serving)
