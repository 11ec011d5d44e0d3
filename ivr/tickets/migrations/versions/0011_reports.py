"""The nightly reports: which day's report went to whom, and mails that carry files.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

``report_delivery`` has one row per day and scope (province or ``national``) whose report was
queued: its primary key keeps a day from being mailed twice by two nodes or after a restart.
The outbox (``notification``) gains ``attachments`` (a JSON list of file paths: the PDF and the
CSV) and ``office_hours`` (true for the escalations as before; the report is mailed at night).

(Written on 0009; chained after the desk's 0010 when the desk branch was merged in.)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_delivery",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "scope"),
    )
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("attachments", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("office_hours", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("office_hours")
        batch.drop_column("attachments")
    op.drop_table("report_delivery")
