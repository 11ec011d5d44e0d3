"""Callbacks on Twilio: each attempt is one ``calls.create`` on Twilio's REST API (caller-first).

Twilio has no way to hold a place in a queue for someone who is not on a call, so the caller is
rung first, and only when the dispatcher sees a free agent nobody else is promised to. What the
answered call does is TwiML at ``Url``; how it ends comes to ``StatusCallback`` — routes of
the Twilio queue webhooks (``ivr/web/twilio_queue.py``), given the attempt id in the query:

* ``{IVR_PUBLIC_URL}/twilio/queue/callback?attempt=<id>`` — the greeting, then the agents'
  queue, where the free agent (waiting in ``<Dial><Queue>``) takes the caller;
* ``{IVR_PUBLIC_URL}/twilio/queue/callback/status?attempt=<id>`` — ``CallStatus`` at the end,
  recorded with ``CallbackService.finish(id, twilio_outcome(CallStatus))``.

Should that status never arrive, :meth:`TwilioDialer.check` asks the REST API for the call.
The REST base URL is ``IVR_TWILIO_API_BASE`` (tests point it at a local stand-in); every request
is bounded by ``IVR_TWILIO_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping, Sequence

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.callbacks.dialing import ALIVE, AttemptOrder, Check, DialError, Ended, Sink
from ivr.callbacks.models import Outcome
from ivr.callbacks.service import OpenAttempt

log = logging.getLogger(__name__)

ANSWER_PATH = "/twilio/queue/callback"
STATUS_PATH = "/twilio/queue/callback/status"

TWILIO_OUTCOMES: Mapping[str, Outcome] = {
    "completed": Outcome.ANSWERED,
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}
"""Twilio's final CallStatus values; any other status means the call is still going."""


def twilio_outcome(call_status: str) -> Outcome | None:
    """The attempt's outcome for a final ``CallStatus``; None while the call goes on."""
    return TWILIO_OUTCOMES.get(call_status.strip().lower())


def e164(national: str) -> str:
    """09121234567 → +989121234567 (Twilio wants E.164)."""
    return "+98" + national[1:] if national.startswith("0") else national


class TwilioDialer:
    """Places attempts with the twilio library's ``calls.create``."""

    name = "twilio"
    holds_place = False

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        public_url: str,
        api_base: str = "https://api.twilio.com",
        timeout: float = 10.0,
        ring_seconds: int = 30,
    ) -> None:
        missing = [
            name
            for name, value in (
                ("IVR_TWILIO_ACCOUNT_SID", account_sid),
                ("IVR_TWILIO_AUTH_TOKEN", auth_token),
                ("IVR_TWILIO_FROM", from_number),
                ("IVR_PUBLIC_URL", public_url),
            )
            if not value
        ]
        if missing:
            raise ValueError(f"Twilio callbacks need {', '.join(missing)}")
        self.from_number = from_number
        self.public_url = public_url.rstrip("/")
        self.ring_seconds = ring_seconds
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        self.client.api.base_url = api_base.rstrip("/")

    def _url(self, path: str, attempt_id: int) -> str:
        return f"{self.public_url}{path}?{urllib.parse.urlencode({'attempt': attempt_id})}"

    def listen(self, sink: Sink) -> None:
        """Twilio reports to the status callback URL, not to this process."""

    def close(self) -> None:
        pass

    def place(self, order: AttemptOrder) -> str:
        try:
            call = self.client.calls.create(
                to=e164(order.number),
                from_=self.from_number,
                url=self._url(ANSWER_PATH, order.attempt_id),
                status_callback=self._url(STATUS_PATH, order.attempt_id),
                timeout=self.ring_seconds,
            )
        except (TwilioException, OSError) as error:
            raise DialError(f"Twilio calls.create: {error}") from error
        if not call.sid:
            raise DialError("Twilio calls.create returned no CallSid")
        return str(call.sid)

    def withdraw(self, attempt_id: int, channel: str) -> None:
        """Nothing waits in a queue on Twilio's side."""

    def check(self, attempts: Sequence[OpenAttempt]) -> Mapping[int, Check]:
        found: dict[int, Check] = {}
        for attempt in attempts:
            if not attempt.external_id:
                continue  # claimed, but calls.create never answered: no trace
            try:
                status = self.client.calls(attempt.external_id).fetch().status
            except TwilioRestException as error:
                if error.status == 404:
                    continue
                raise DialError(f"Twilio calls fetch: {error}") from error
            except (TwilioException, OSError) as error:
                raise DialError(f"Twilio calls fetch: {error}") from error
            outcome = twilio_outcome(str(status or ""))
            if outcome is None:
                found[attempt.id] = ALIVE
            else:
                found[attempt.id] = Ended(attempt.id, outcome, f"CallStatus={status}")
        return found
