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
    with op.batch_alter_table("ticket") as batch:
        batch.add_column(sa.Column("assignee", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("answer_text", sa.String(), nullable=True))
        batch.add_column(sa.Column("answer_audio_path", sa.String(), nullable=True))
        batch.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("callback_reversed", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("caller_reversed", sa.String(length=32), nullable=True))
    _fill_reversed()
    with op.batch_alter_table("ticket") as batch:
        batch.create_index("ix_ticket_assignee", ["assignee"])
        batch.create_index("ix_ticket_callback_reversed", ["callback_reversed"])
        batch.create_index("ix_ticket_caller_reversed", ["caller_reversed"])
        batch.create_index("ix_ticket_desk_province", ["province", "id"])
        batch.create_index("ix_ticket_desk_status", ["province", "status", "id"])
        batch.create_index("ix_ticket_desk_due", ["province", "status", "due_at"])
    with op.batch_alter_table("call") as batch:
        batch.create_index("ix_call_caller", ["caller"])
        batch.create_index("ix_call_queue_joined_at", ["queue_joined_at"])  # waiting now


def _reversed(number: str | None) -> str | None:
    """ivr.tickets.models.reversed_digits, copied: a migration must not change with the code."""
    digits = "".join(c for c in (number or "") if c.isdigit())
    return digits[::-1] or None


def _fill_reversed(batch_size: int = 5000) -> None:
    """Existing tickets get their search keys, a batch at a time."""
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, callback_number, caller_number FROM ticket WHERE id > :last "
                "ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": batch_size},
        ).all()
        if not rows:
            return
        bind.execute(
            sa.text(
                "UPDATE ticket SET callback_reversed = :cb, caller_reversed = :cr WHERE id = :id"
            ),
            [{"id": r[0], "cb": _reversed(r[1]), "cr": _reversed(r[2])} for r in rows],
        )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("call") as batch:
        batch.drop_index("ix_call_queue_joined_at")
        batch.drop_index("ix_call_caller")
    with op.batch_alter_table("ticket") as batch:
        for name in (
            "ix_ticket_desk_due",
            "ix_ticket_desk_status",
            "ix_ticket_desk_province",
            "ix_ticket_caller_reversed",
            "ix_ticket_callback_reversed",
            "ix_ticket_assignee",
        ):
            batch.drop_index(name)
        for column in (
            "caller_reversed",
            "callback_reversed",
            "answered_at",
            "answer_audio_path",
            "answer_text",
            "assignee",
        ):
            batch.drop_column(column)
    op.drop_table("login_attempt")
    op.drop_table("desk_session")
