"""Fewer indexes for a new ticket to write: each one is a B-tree page a caller's commit touches.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01

- ``ix_ticket_province`` repeated the leading column of ``ix_ticket_desk_province``
  (``province, id``), which answers every lookup it did;
- ``ix_ticket_category`` and ``ix_ticket_escalation_level`` index a handful of values each: no
  query is answered by them alone, and a filter on them goes with the province's index or the
  newest-first walk of the desk's lists;
- ``ix_ticket_assignee`` keeps only the tickets someone works (``assignee IS NOT NULL``): a new
  ticket has no assignee, so its creation no longer writes this index, and "mine" (``assignee
  = :me``) still finds it on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ASSIGNED = "assignee IS NOT NULL"
DROPPED = {
    "ix_ticket_province": "province",
    "ix_ticket_category": "category",
    "ix_ticket_escalation_level": "escalation_level",
}


def upgrade() -> None:
    for name in DROPPED:
        op.drop_index(name, table_name="ticket")
    op.drop_index("ix_ticket_assignee", table_name="ticket")
    op.create_index(
        "ix_ticket_assignee",
        "ticket",
        ["assignee"],
        sqlite_where=sa.text(ASSIGNED),
        postgresql_where=sa.text(ASSIGNED),
    )


def downgrade() -> None:
    op.drop_index("ix_ticket_assignee", table_name="ticket")
    op.create_index("ix_ticket_assignee", "ticket", ["assignee"])
    for name, column in DROPPED.items():
        op.create_index(name, "ticket", [column])
