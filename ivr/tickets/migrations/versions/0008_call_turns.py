"""Idempotent Twilio turns and one ticket per call.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09

``call.turn`` counts the answers a call was given and ``call.reply`` keeps the last one (with
``call.reply_token``, Twilio's ``I-Twilio-Idempotency-Token`` of the request that got it), so a
retried or replayed webhook gets the same answer again and changes nothing. ``ticket.call_key``
names the call a ticket was registered on; its unique index is what makes a ticket be created
at most once per call, whatever retries, replays and the spool do (NULL for tickets made at a
desk, and for tickets older than this revision: any number of NULLs is allowed on both
databases). Plain SQLAlchemy only, as in 0001; 0007 is left to a migration landing beside it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("turn", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("reply", sa.String(), nullable=True))
        batch.add_column(sa.Column("reply_token", sa.String(length=64), nullable=True))
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("call_key", sa.String(length=80), nullable=True))
        batch.create_index("ix_ticket_call_key", ["call_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        batch.drop_index("ix_ticket_call_key")
        batch.drop_column("call_key")
    with op.batch_alter_table("call") as batch:
        batch.drop_column("reply_token")
        batch.drop_column("reply")
        batch.drop_column("turn")
