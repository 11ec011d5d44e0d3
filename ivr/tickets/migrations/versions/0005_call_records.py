"""Call records fit for reports: the call's province, its channel id and how it ended; steps
written in the flow's enums.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

New nullable columns on ``call`` (SQLite adds and drops them with ALTER TABLE, no table copy):
``channel_id`` (Asterisk's channel name, Twilio's ParentCallSid or CallSid), ``province`` (chosen
by the called number; indexed, reports group by it) and ``ended_by``
(``ivr.flow.outcomes.CallEnd``).

Rows written before this revision are translated so old and new calls read alike:
``call_step.event`` from the event class names (``CallStarted``) to ``EventKind`` values
(``call_started``); ``#`` alone, logged as ``timeout``, becomes ``empty``; skipping the national
ID with ``#`` becomes ``skipped``; a ``transfer`` becomes ``transfer_requested`` when the key was
0 and ``transfer_after_failures`` otherwise (the only two causes there were). Old calls get
``ended_by`` from their outcome and ``province`` from their ticket where they have one.
Plain SQLAlchemy only, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("channel_id", sa.String(length=128)),
    ("province", sa.String(length=32)),
    ("ended_by", sa.String(length=16)),
)
EVENT_NAMES = {
    "CallStarted": "call_started",
    "Digits": "digits",
    "Timeout": "timeout",
    "RecordingFinished": "recording_finished",
    "RecordingFailed": "recording_failed",
    "Hangup": "hangup",
    "SystemFailed": "system_failed",
    "TicketCreated": "ticket_created",
    "TicketLookedUp": "ticket_looked_up",
}

call = sa.table(
    "call",
    sa.column("id", sa.Integer),
    sa.column("outcome", sa.String),
    sa.column("ended_by", sa.String),
    sa.column("province", sa.String),
    sa.column("ticket_id", sa.Integer),
)
step = sa.table(
    "call_step",
    sa.column("node", sa.String),
    sa.column("event", sa.String),
    sa.column("key", sa.String),
    sa.column("outcome", sa.String),
)
ticket = sa.table("ticket", sa.column("id", sa.Integer), sa.column("province", sa.String))


def _set(table: sa.TableClause, where: sa.ColumnElement[bool], **values: object) -> None:
    op.execute(table.update().where(where).values(**values))


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("call", sa.Column(name, type_, nullable=True))
    op.create_index("ix_call_province", "call", ["province"])

    for old, new in EVENT_NAMES.items():
        _set(step, step.c.event == old, event=new)
    _set(step, (step.c.event == "digits") & (step.c.outcome == "timeout"), outcome="empty")
    _set(
        step,
        (step.c.node == "nid") & (step.c.key == "0 digits") & (step.c.outcome == "ok"),
        outcome="skipped",
    )
    _set(step, (step.c.outcome == "transfer") & (step.c.key == "0"), outcome="transfer_requested")
    _set(step, step.c.outcome == "transfer", outcome="transfer_after_failures")

    _set(call, call.c.outcome == "transferred", ended_by="transferred")
    _set(call, call.c.outcome.in_(("ticket", "followup", "abandoned")), ended_by="caller")
    owner = sa.select(ticket.c.province).where(ticket.c.id == call.c.ticket_id).scalar_subquery()
    _set(call, call.c.ticket_id.is_not(None), province=owner)


def downgrade() -> None:
    for old, new in EVENT_NAMES.items():
        _set(step, step.c.event == new, event=old)
    _set(step, step.c.outcome == "empty", outcome="timeout")
    _set(step, step.c.outcome == "skipped", outcome="ok")
    _set(step, step.c.outcome == "not_saved", outcome="too_short")
    _set(step, step.c.outcome.like("transfer_%"), outcome="transfer")

    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+): a batch copy of "call" would have to
    # drop the table its steps refer to, which SQLite's foreign keys refuse once calls exist.
    op.drop_index("ix_call_province", table_name="call")
    for name, _type in reversed(COLUMNS):
        op.drop_column("call", name)
