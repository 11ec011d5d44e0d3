"""The agents on the Twilio agents' line (ivr.callbacks.agent_line).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10

One new table, nothing existing changes: a row per agent's call on the agents' line, idle or
talking, so the callback dispatcher knows Twilio's free agents (Twilio's REST API lists who
waits in a queue, not who dequeues from it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_line",
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("caller_sid", sa.String(length=64), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_sid"),
    )


def downgrade() -> None:
    op.drop_table("agent_line")
