"""The first schema: tickets and their history, tracking blocks, calls and their steps.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Plain SQLAlchemy types only (no SQLModel imports): a migration must keep meaning the same thing
when the libraries move on. Times are ``DateTime(timezone=True)``, what SQLModel's ``UTCDateTime``
declares: ``timestamptz`` on PostgreSQL, text on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("province", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("place", sa.String(length=64), nullable=True),
        sa.Column("recording_path", sa.String(), nullable=True),
        sa.Column("caller_number", sa.String(length=32), nullable=True),
        sa.Column("callback_number", sa.String(length=16), nullable=False),
        sa.Column("national_id", sa.String(length=10), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("due_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket") as batch:
        batch.create_index("ix_ticket_tracking", ["tracking"], unique=True)
        batch.create_index("ix_ticket_province", ["province"])
        batch.create_index("ix_ticket_category", ["category"])
        batch.create_index("ix_ticket_status", ["status"])
        batch.create_index("ix_ticket_created_at", ["created_at"])
        batch.create_index("ix_ticket_due_at", ["due_at"])

    op.create_table(
        "ticket_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        _time("at"),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("old_value", sa.String(), nullable=True),
        sa.Column("new_value", sa.String(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ticket_event") as batch:
        batch.create_index("ix_ticket_event_ticket_id", ["ticket_id"])

    op.create_table(
        "tracking_block",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        _time("allocated_at"),
        sa.PrimaryKeyConstraint("id"),
    )

    op.create_table(
        "call",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=True),
        sa.Column("called", sa.String(length=32), nullable=True),
        _time("started_at"),
        _time("ended_at", nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call") as batch:
        batch.create_index("ix_call_external_id", ["external_id"], unique=True)
        batch.create_index("ix_call_started_at", ["started_at"])

    op.create_table(
        "call_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        _time("at"),
        sa.Column("node", sa.String(length=48), nullable=False),
        sa.Column("event", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call_step") as batch:
        batch.create_index("ix_call_step_call_id", ["call_id"])
        batch.create_index("ix_call_step_at", ["at"])


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents for the foreign keys.
    for table in ("call_step", "call", "tracking_block", "ticket_event", "ticket"):
        op.drop_table(table)
