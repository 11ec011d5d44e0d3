"""The scheduler's callback job: one dispatcher pass on the leader, every few seconds.

``ivr.scheduler`` calls :func:`run` with the leader's engine. What a pass needs beyond the
database lives as long as the process: the AMI connection (its listener keeps recording the
outcomes of calls it placed, even after this node stops leading — a fact is a fact) and the
dialer. The dispatcher itself is rebuilt whenever the scheduler hands over a new engine (each
leadership term has its own).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from ivr.calendar.agent_hours import AgentHours, load_agent_hours
from ivr.calendar.store import CachedCalendar
from ivr.callbacks.agent_line import AgentLine
from ivr.callbacks.asterisk import EVENT_MASK, AsteriskDialer, AsteriskQueueView
from ivr.callbacks.dialing import Dialer
from ivr.callbacks.dispatcher import CallNowRefused, Dispatcher, PassReport
from ivr.callbacks.queue_view import QueueView
from ivr.callbacks.service import CallbackService
from ivr.callbacks.twilio import TwilioDialer
from ivr.callbacks.twilio_view import TwilioQueueView, TwilioRest
from ivr.settings import Settings
from ivr.telephony.ami import AmiClient, AmiError

log = logging.getLogger(__name__)


def dialer_kind(settings: Settings) -> str:
    """asterisk, twilio or off: ``auto`` means Asterisk when AMI is configured."""
    if settings.callback_dialer != "auto":
        return settings.callback_dialer
    return "asterisk" if settings.ami_username else "off"


@dataclass
class _Telephony:
    dialer: Dialer
    view: Callable[[Engine], QueueView]
    """The queue view on this engine (Twilio's reads the agents' line from the database)."""
    ami: AmiClient | None
    rest: TwilioRest | None = None


@dataclass
class _Runtime:
    engine: Engine
    dispatcher: Dispatcher


_lock = threading.Lock()
_telephony: _Telephony | None = None
_runtime: _Runtime | None = None
_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.warning("callbacks: %s", message)


def _telephony_for(settings: Settings) -> _Telephony | None:
    global _telephony
    if _telephony is not None:
        return _telephony
    kind = dialer_kind(settings)
    if kind == "off":
        _say_once("no dialer configured (IVR_CALLBACK_DIALER, IVR_AMI_USERNAME): none placed")
        return None
    if kind == "twilio":
        try:
            _telephony = _twilio(settings)
        except ValueError as error:  # a missing setting: said once, nothing placed
            _say_once(f"Twilio callbacks are off: {error}")
            return None
        return _telephony
    ami = AmiClient(
        settings.ami_host,
        settings.ami_port,
        settings.ami_username,
        settings.ami_secret,
        event_mask=EVENT_MASK,
    )
    try:
        ami.connect(timeout=3.0)
    except AmiError as error:  # the watchdog keeps trying; passes skip until it is up
        log.warning("callbacks: AMI not reachable yet: %s", error)
    queue = settings.agent_queue
    dialer = AsteriskDialer(
        ami,
        queue=queue,
        dial=settings.callback_dial,
        caller_id=settings.callback_caller_id,
        hold_seconds=settings.callback_hold_seconds,
        ring_seconds=settings.callback_ring_seconds,
    )
    view = AsteriskQueueView(ami, queue)
    _telephony = _Telephony(dialer, lambda _engine: view, ami)
    return _telephony


def _twilio(settings: Settings) -> _Telephony:
    """Caller-first through the REST API; the queue from Twilio and the agents' line."""
    dialer = TwilioDialer(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        from_number=settings.twilio_from,
        public_url=settings.public_url or "",
        api_base=settings.twilio_api_base,
        timeout=settings.twilio_timeout_seconds,
        ring_seconds=settings.callback_ring_seconds,
    )
    rest = TwilioRest(
        settings.twilio_api_base,
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        settings.twilio_timeout_seconds,
    )

    def view(engine: Engine) -> QueueView:
        return TwilioQueueView(rest, AgentLine(engine), settings.agent_queue)

    return _Telephony(dialer, view, None, rest)


def run(engine: Engine, settings: Settings) -> PassReport | None:
    """One pass on ``engine``; None when no dialer is configured."""
    global _runtime
    with _lock:
        telephony = _telephony_for(settings)
        if telephony is None:
            return None
        if _runtime is None or _runtime.engine is not engine:
            hours = AgentHours(load_agent_hours(), CachedCalendar(engine).get)
            dispatcher = Dispatcher(
                CallbackService.from_settings(engine, settings),
                hours,
                telephony.view(engine),
                telephony.dialer,
                node=settings.node_name,
            )
            _runtime = _Runtime(engine, dispatcher)
        dispatcher = _runtime.dispatcher
    return dispatcher.dispatch_once()


def close() -> None:
    """Stop listening and log off (tests; a process that exits needs nothing)."""
    global _telephony, _runtime
    with _lock:
        if _telephony is not None:
            _telephony.dialer.close()
            if _telephony.ami is not None:
                _telephony.ami.close()
            if _telephony.rest is not None:
                _telephony.rest.close()
        _telephony = _runtime = None


def call_now(engine: Engine, settings: Settings, callback_id: int) -> int:
    """The desk's "call now" on this node (``Dispatcher.call_now``); the attempt's id.
    Raises CallNowRefused, also when no dialer is configured."""
    with _lock:
        telephony = _telephony_for(settings)
        if telephony is None:
            raise CallNowRefused("no dialer is configured here (IVR_CALLBACK_DIALER)", "no_dialer")
        if _runtime is not None:
            dispatcher = _runtime.dispatcher
        else:
            hours = AgentHours(load_agent_hours(), CachedCalendar(engine).get)
            dispatcher = Dispatcher(
                CallbackService.from_settings(engine, settings),
                hours,
                telephony.view,
                telephony.dialer,
                node=settings.node_name,
            )
    return dispatcher.call_now(callback_id)
