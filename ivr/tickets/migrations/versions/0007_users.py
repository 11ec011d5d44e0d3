"""Users: agents, supervisors, national staff and admins (ivr.users).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

One new table, nothing existing changes. ``app_user``, since ``user`` is reserved on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("province", sa.String(length=32), nullable=True),
        sa.Column("extension", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("pin_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("app_user") as batch:
        batch.create_index("ix_app_user_name", ["name"], unique=True)
        # The agents' Twilio line finds the agent by the calling number.
        batch.create_index("ix_app_user_phone", ["phone"])


def downgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.drop_index("ix_app_user_phone")
        batch.drop_index("ix_app_user_name")
    op.drop_table("app_user")
