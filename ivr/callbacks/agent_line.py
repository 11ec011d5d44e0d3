"""Who is on the Twilio agents' line, and whether they are free: the only writer of ``agent_line``.

The line's webhooks (``ivr/web/twilio_agents.py``) say what they see: an agent typed the right
PIN and waits in ``<Dial><Queue>`` (:meth:`AgentLine.idle`), a caller was dequeued to them (the
connect URL: :meth:`AgentLine.talking`), their call ended (:meth:`AgentLine.gone`). The Twilio
queue view reads :meth:`AgentLine.present` on the leader; several nodes share the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlmodel import Session, select

from ivr.callbacks.models import AgentLine as AgentLineRow
from ivr.callbacks.models import AgentLineState
from ivr.clock import as_aware, utcnow


class AgentLine:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def idle(self, call_sid: str, agent: str) -> None:
        """The agent's call waits for the next caller (after the PIN, and after each call)."""
        self._put(call_sid, agent, AgentLineState.IDLE, None)

    def talking(self, call_sid: str, caller_sid: str | None) -> bool:
        """A caller was dequeued to this agent's call; False when the call is not known."""
        now = self.clock()
        with Session(self.engine) as session:
            row = session.get(AgentLineRow, call_sid)
            if row is None:
                return False
            row.state, row.caller_sid, row.since, row.seen_at = (
                AgentLineState.TALKING,
                caller_sid,
                now,
                now,
            )
            session.add(row)
            session.commit()
        return True

    def gone(self, call_sids: Iterable[str]) -> int:
        """These agents' calls ended; returns how many rows went."""
        sids = [s for s in call_sids if s]
        if not sids:
            return 0
        with Session(self.engine) as session:
            done = session.exec(delete(AgentLineRow).where(AgentLineRow.call_sid.in_(sids)))  # type: ignore[attr-defined,call-overload]
            session.commit()
            return int(done.rowcount or 0)

    def caller_of(self, call_sid: str) -> str | None:
        """The caller this agent's call was last talking to (None: no one yet)."""
        with Session(self.engine) as session:
            row = session.get(AgentLineRow, call_sid)
            return None if row is None else row.caller_sid

    def agent_of(self, call_sid: str) -> str | None:
        with Session(self.engine) as session:
            row = session.get(AgentLineRow, call_sid)
            return None if row is None else row.agent

    def present(self) -> list[AgentLineRow]:
        """Every agent's call on the line, the longest idle first."""
        with Session(self.engine) as session:
            rows = session.exec(select(AgentLineRow).order_by(AgentLineRow.since))  # type: ignore[arg-type]
            return list(rows)

    def unseen_since(self, rows: Iterable[AgentLineRow], quiet: timedelta) -> list[AgentLineRow]:
        """The rows no webhook touched for ``quiet``: their calls may have ended unheard."""
        limit = as_aware(self.clock()) - quiet
        return [row for row in rows if as_aware(row.seen_at) <= limit]

    def _put(self, call_sid: str, agent: str, state: AgentLineState, caller: str | None) -> None:
        now = self.clock()
        with Session(self.engine) as session:
            row = session.get(AgentLineRow, call_sid)
            if row is None:
                row = AgentLineRow(call_sid=call_sid, agent=agent, since=now, seen_at=now)
            elif row.state != state:
                row.since = now
            row.agent, row.state, row.caller_sid, row.seen_at = agent, state, caller, now
            session.add(row)
            session.commit()
