"""The desk: login sessions, wrong-password tries, and what a ticket needs to be worked.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

``desk_session`` (one row per login, so logout ends it on every node) and ``login_attempt``
(wrong passwords, counted per name and per address) are new. ``ticket`` gains the assignee,
the written answer and its rendered audio, and indexes the desk's lists need on a million rows:
(province, status, due_at) for "my work" and the filtered list, (province, created_at) for the
default list, and the caller's and callback number reversed so "the last digits of a phone
number" is a prefix search on an index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "desk_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("desk_session") as batch:
        batch.create_index("ix_desk_session_token_hash", ["token_hash"], unique=True)
        batch.create_index("ix_desk_session_user_id", ["user_id"])
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_attempt") as batch:
        batch.create_index("ix_login_attempt_at", ["at"])
        batch.create_index("ix_login_attempt_username", ["username"])
        batch.create_index("ix_login_attempt_address", ["address"])


def downgrade() -> None:
    op.drop_table("login_attempt")
    op.drop_table("desk_session")
