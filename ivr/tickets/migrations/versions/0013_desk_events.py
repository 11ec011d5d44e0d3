"""Screen pops on their way to agents' desks (ivr.desk_events).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

One new table, nothing existing changes. A pop is a row so that the node that hears the call
connect and the node that holds the agent's event stream need not be the same one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "desk_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
        # Every node listening to one PBX hears the same AgentConnect: one pop per call.
        sa.UniqueConstraint("user_id", "external_id", name="uq_desk_event_call"),
    )
    with op.batch_alter_table("desk_event") as batch:
        batch.create_index("ix_desk_event_user_id", ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("desk_event") as batch:
        batch.drop_index("ix_desk_event_user_id")
    op.drop_table("desk_event")
