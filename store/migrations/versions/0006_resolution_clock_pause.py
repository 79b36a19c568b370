"""the resolution clock pauses while a ticket is on hold

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 00:00:00

A ticket on hold waits for the customer, so the time on hold no longer
counts towards the resolution target. A ticket already on hold when this
runs is taken to have paused at its last status change, which the audit log
holds; its resolution due time moves when it leaves hold.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resolution_paused_at", store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "resolution_paused_seconds",
                sa.Integer(),
                nullable=False,
                # A plain string, not sa.text(): with an SQL expression as default,
                # SQLite's batch mode copies the table, which the foreign keys
                # from events and messages forbid once the table has rows.
                server_default="0",
            )
        )

    op.execute(
        "UPDATE tickets SET resolution_paused_at = COALESCE("
        "(SELECT MAX(events.at) FROM events WHERE events.ticket_id = tickets.id "
        "AND events.kind = 'status_changed'), tickets.updated_at) "
        "WHERE tickets.status = 'on_hold'"
    )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("resolution_paused_seconds")
        batch_op.drop_column("resolution_paused_at")
