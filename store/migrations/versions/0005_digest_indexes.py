"""indexes for the digest's queries

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 01:00:00

The digest selects tickets by when they were received, answered, solved and
due, messages by kind and time, and status changes by time; without these
indexes each of its queries reads the whole table.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, columns), as store/models.py declares them.
INDEXES = [
    ("ix_tickets_created_at", "tickets", ["created_at"]),
    ("ix_tickets_first_response_at", "tickets", ["first_response_at"]),
    ("ix_tickets_solved_at", "tickets", ["solved_at"]),
    ("ix_tickets_first_response_due_at", "tickets", ["first_response_due_at"]),
    ("ix_tickets_resolution_due_at", "tickets", ["resolution_due_at"]),
    ("ix_messages_kind_received_at", "messages", ["kind", "received_at"]),
    ("ix_messages_kind_delivered_at", "messages", ["kind", "delivered_at"]),
    ("ix_events_kind_at", "events", ["kind", "at"]),
]


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
