"""How long a queue call's conversation lasted (AMI ``AgentComplete``'s ``TalkTime``).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01

One nullable column on ``call``: the nightly report's average talk time and each agent's talk
time need the conversation's end, which neither the IVR's own end of the call (the transfer)
nor the queue's leave time gives.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.add_column(sa.Column("queue_talk_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.drop_column("queue_talk_s")
