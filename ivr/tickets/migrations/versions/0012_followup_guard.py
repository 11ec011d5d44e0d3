"""Follow-up tries that failed, so guessing the last 4 digits is limited on every node.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10

One row per failed try (a wrong last 4, or a tracking number naming no ticket), with the
ticket's number and the calling number; ``ivr.followup_guard`` counts them per ticket and per
caller over a window, through the two indexes. Plain SQLAlchemy only, as in 0001. (At the merge,
``down_revision`` becomes the last migration landed before it.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "followup_try",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tracking", sa.String(length=16), nullable=False),
        sa.Column("caller", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["call.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("followup_try") as batch:
        batch.create_index("ix_followup_try_tracking_at", ["tracking", "at"])
        batch.create_index("ix_followup_try_caller_at", ["caller", "at"])


def downgrade() -> None:
    op.drop_table("followup_try")
