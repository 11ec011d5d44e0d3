"""Tracking numbers that are not consecutive: the shared key, made once at upgrade.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

One row: a random secret every node derives tracking numbers with (ivr.tickets.tracking.
keyed_tracking), and ``legacy_end``, the first sequence number past every block reserved before
(each block is at most ``MAX_BLOCK_SIZE`` numbers), so a keyed number never equals a ticket's
consecutive number from before. Existing tickets keep theirs. Upgrade with the nodes stopped: a
node still running the older version would go on numbering consecutively.

(0007 and 0008 are other branches' migrations: at the merge, ``down_revision`` becomes the last
of them.)
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_BLOCK_SIZE = 1000
"""ivr.tickets.allocator.MAX_BLOCK_SIZE, copied: a migration must not change with the code."""


def upgrade() -> None:
    table = op.create_table(
        "tracking_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("legacy_end", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    last_block = op.get_bind().execute(sa.text("SELECT max(id) FROM tracking_block")).scalar()
    legacy_end = 0 if last_block is None else (int(last_block) + 1) * MAX_BLOCK_SIZE
    op.bulk_insert(table, [{"id": 1, "secret": secrets.token_hex(32), "legacy_end": legacy_end}])


def downgrade() -> None:
    op.drop_table("tracking_key")
