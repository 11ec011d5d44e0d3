"""Callbacks and their attempts (ivr.callbacks).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Plain SQLAlchemy types only, as in 0001. Two new tables, nothing existing changes. The unique
index on ``callback.active_number`` (the number while the callback is open, NULL after) is what
keeps one open callback per number; both databases allow any number of NULLs in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "callback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("active_number", sa.String(length=16), nullable=True),
        sa.Column("province", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _time("requested_at"),
        _time("entered_at"),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _time("next_attempt_at"),
        _time("updated_at"),
        _time("finished_at", nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("callback") as batch:
        batch.create_index("ix_callback_active_number", ["active_number"], unique=True)
        # The dispatcher's one query: pending callbacks in order of their original entry time.
        batch.create_index("ix_callback_status_entered", ["status", "entered_at"])
        # Which provinces have pending callbacks (whose agents' hours to ask): a covering scan.
        batch.create_index("ix_callback_status_province", ["status", "province"])

    op.create_table(
        "callback_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=48), nullable=False),
        sa.Column("dialer", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        _time("started_at"),
        _time("connected_at", nullable=True),
        sa.Column("agent", sa.String(length=128), nullable=True),
        _time("ended_at", nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=True),
        _time("lease_until", nullable=True),
        sa.ForeignKeyConstraint(["callback_id"], ["callback.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("callback_attempt") as batch:
        batch.create_index("ix_callback_attempt_callback_id", ["callback_id"])
        # Open attempts (ended_at IS NULL) and their leases, read on every dispatcher pass.
        batch.create_index("ix_callback_attempt_open", ["ended_at", "lease_until"])


def downgrade() -> None:
    op.drop_table("callback_attempt")
    op.drop_table("callback")
