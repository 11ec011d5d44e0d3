"""Asterisk transport: FastAGI in, AGI commands out; nothing here decides where a call goes.

Each call is one FastAGI connection (one thread). The session's state stays in memory for the
call's life and is saved after every turn, so a database hiccup is heard by nobody. The
transfer to agents is done by Asterisk itself: the controller sets ``IVR_ACTION=transfer`` and
``IVR_QUEUE`` and returns, and the dialplan (``dialplans/extensions.conf``) runs ``Queue()``.
The dialplan passes the number the caller dialled as the AGI's first argument (the province is
chosen by it); without one, the AGI's extension stands in.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ivr.flow import actions as act
from ivr.flow.events import Digits, Event, Hangup, RecordingFailed, RecordingFinished, Timeout
from ivr.flow.resume import QueueReturn, ReturnReason
from ivr.prompts import ASTERISK_SUBDIR, file_stem, read_wav_info
from ivr.session import CallSession, Services
from ivr.settings import Settings
from ivr.telephony.agi import AgiCall, AgiLimits, CallerHungUp, FastAgiServer

log = logging.getLogger(__name__)


def sound_name(audio: act.Audio) -> str:
    """What STREAM FILE plays: ``ivr124/<stem>`` under sounds/fa/, or a recording's path."""
    if isinstance(audio, act.Recorded):
        return str(Path(audio.path).with_suffix(""))
    return f"{ASTERISK_SUBDIR}/{file_stem(audio)}"


@dataclass
class AsteriskCalls:
    """The FastAGI handler: walks one caller through the flow over AGI."""

    services: Services
    settings: Settings

    def __call__(self, call: AgiCall) -> None:
        external_id = call.uniqueid or f"agi-{uuid.uuid4().hex[:12]}"
        session, actions = CallSession.start(
            self.services,
            channel="asterisk",
            external_id=external_id,
            caller=call.callerid or None,
            called=dialled_number(call),
            default_province=self.settings.province,
            channel_id=call.channel or None,
            resume=queue_return(call.script),
        )
        try:
            while (event := self._perform(call, session, actions)) is not None:
                actions = session.feed(event)
        except CallerHungUp:
            session.feed(Hangup())
            raise
        except Exception:
            session.crashed()  # the dialplan sends the caller to the agents' queue
            raise

    def _perform(
        self, call: AgiCall, session: CallSession, actions: tuple[act.Action, ...]
    ) -> Event | None:
        """Carry out one turn; return the caller's answer, or None when the AGI part is over."""
        for action in actions:
            match action:
                case act.Play(prompts):
                    call.stream([sound_name(a) for a in prompts])
                case act.Gather():
                    return _gather(call, action)
                case act.Record():
                    return self._record(call, session, action)
                case act.Transfer(queue):
                    call.set_variable("IVR_ACTION", "transfer")
                    call.set_variable("IVR_QUEUE", queue)
                    return None
                case act.HangUp():
                    call.set_variable("IVR_ACTION", "hangup")
                    return None
        return None

    def _record(self, call: AgiCall, session: CallSession, record: act.Record) -> Event:
        folder = self.settings.recordings_dir
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / f"asterisk-{_safe(session.external_id)}-{uuid.uuid4().hex[:6]}"
        try:
            call.record(
                str(base),
                "wav",
                record.finish_on_key,
                record.max_s * 1000,
                beep=record.beep,
                silence_s=5,
            )
        except CallerHungUp:
            base.with_suffix(".wav").unlink(missing_ok=True)  # no ticket will ever point to it
            raise
        path = base.with_suffix(".wav")
        if not path.is_file():
            # RECORD FILE creates the file before the caller speaks: none means Asterisk could
            # not write it, which is the system's failure, not a silent caller.
            log.error("call %s: Asterisk wrote no recording at %s", session.external_id, path)
            return RecordingFailed()
        return RecordingFinished(str(path), read_wav_info(path).duration)


def dialled_number(call: AgiCall) -> str | None:
    """What the caller dialled: the dialplan's first AGI argument (``IVR_CALLED``), else the
    extension the AGI runs in."""
    args = call.args
    return (args[0] if args and args[0] else call.extension) or None


def queue_return(script: str) -> QueueReturn | None:
    """What ``agi://…/ivr124?resume=…`` says about a call back from the queue; None for a new
    call (or a marker this version does not know, which is then treated as a new call)."""
    query = parse_qs(urlsplit(script).query)

    def one(key: str) -> str:
        return query.get(key, [""])[0]

    try:
        reason = ReturnReason(one("resume"))
    except ValueError:
        return None
    return QueueReturn(
        reason=reason,
        queue=one("queue"),
        status=one("status"),
        entered_at=_utc(one("entered")),
        position=_count(one("position")),
        waited_s=_count(one("waited")),
    )


def _count(text: str) -> int | None:
    """A queue position or a wait in seconds, as the dialplan wrote it; None if it is not one."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


def _utc(text: str) -> datetime.datetime | None:
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _gather(call: AgiCall, gather: act.Gather) -> Event:
    """GET DATA rules in, flow events out: ``#`` first means "finish key alone"."""
    digits, timed_out = call.gather(
        [sound_name(a) for a in gather.prompts], gather.timeout_s * 1000, gather.max_digits
    )
    if digits == "#" and gather.finish_on_key == "#":
        return Digits("")
    if not digits and timed_out:
        return Timeout()
    return Digits(digits)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def agi_server(services: Services, settings: Settings) -> FastAgiServer:
    """The FastAGI server ``ivr serve`` runs beside the web app, within the settings' limits."""
    limits = AgiLimits(
        env_deadline_s=settings.agi_env_seconds,
        command_idle_s=settings.agi_command_idle_seconds,
        max_connections=settings.agi_max_connections,
    )
    return FastAgiServer(
        AsteriskCalls(services, settings), settings.agi_host, settings.agi_port, limits=limits
    )
