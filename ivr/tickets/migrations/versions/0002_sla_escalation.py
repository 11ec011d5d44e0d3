"""SLA clocks and escalation on tickets; the calendar, supervisors and the mail outbox as tables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Plain SQLAlchemy types only, as in 0001.  The new ticket columns are nullable or have a server
default, so SQLite adds them with ALTER TABLE (no table copy, even with a million tickets).
Open tickets from before this revision get ``sla_check_at = due_at`` so the overdue watch sees
them; ``ivr calendar recompute`` fills in their first-response and warning times.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_TICKET_TIMES = (
    "first_response_due_at",
    "first_response_warn_at",
    "resolution_warn_at",
    "responded_at",
    "first_response_warned_at",
    "resolution_warned_at",
    "escalated_at",
    "sla_check_at",
)
UNFINISHED = ("registered", "in_review", "referred", "waiting_for_caller")


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("ticket") as batch:
        for name in NEW_TICKET_TIMES:
            batch.add_column(_time(name, nullable=True))
        batch.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_index("ix_ticket_escalation_level", ["escalation_level"])
        batch.create_index("ix_ticket_sla_check_at", ["sla_check_at"])
    ticket = sa.table("ticket", sa.column("sla_check_at"), sa.column("due_at"), sa.column("status"))
    op.execute(
        ticket.update()
        .where(ticket.c.status.in_(UNFINISHED), ticket.c.due_at.is_not(None))
        .values(sla_check_at=ticket.c.due_at)
    )

    op.create_table(
        "holiday",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("province", sa.String(length=32), nullable=True),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("holiday") as batch:
        batch.create_index("ix_holiday_day", ["day"])

    op.create_table(
        "holiday_seed",
        sa.Column("jalali_year", sa.Integer(), autoincrement=False, nullable=False),
        _time("seeded_at"),
        sa.PrimaryKeyConstraint("jalali_year"),
    )

    op.create_table(
        "thursday_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=False),
        sa.Column("closes", sa.Time(), nullable=False),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("thursday_rule") as batch:
        batch.create_index("ix_thursday_rule_effective_from", ["effective_from"], unique=True)

    op.create_table(
        "supervisor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("province", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("supervisor") as batch:
        batch.create_index("ix_supervisor_province", ["province"])

    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("province", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("body_html", sa.String(), nullable=True),
        _time("created_at"),
        _time("not_before"),
        _time("sent_at", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["ticket.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "step", "recipient", name="uq_notification_step"),
    )
    with op.batch_alter_table("notification") as batch:
        batch.create_index("ix_notification_pending", ["sent_at", "not_before"])


def downgrade() -> None:
    for table in ("notification", "supervisor", "thursday_rule", "holiday_seed", "holiday"):
        op.drop_table(table)
    with op.batch_alter_table("ticket") as batch:
        batch.drop_index("ix_ticket_sla_check_at")
        batch.drop_index("ix_ticket_escalation_level")
        batch.drop_column("escalation_level")
        for name in reversed(NEW_TICKET_TIMES):
            batch.drop_column(name)
