"""Calls record their time in the agents' queue: joined, left, wait, outcome and agent.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30

Filled from Asterisk's AMI queue events by ``ivr.telephony.queue_events``. Plain SQLAlchemy
types only, as in 0001. Every column is nullable, so SQLite adds them with ALTER TABLE (no
table copy) and calls from before this revision simply have no queue data.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("queue", sa.String(length=64)),
    ("queue_joined_at", sa.DateTime(timezone=True)),
    ("queue_left_at", sa.DateTime(timezone=True)),
    ("queue_wait_s", sa.Float()),
    ("queue_outcome", sa.String(length=16)),
    ("agent", sa.String(length=128)),
)


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        for name, type_ in COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call") as batch:
        for name, _type in reversed(COLUMNS):
            batch.drop_column(name)
