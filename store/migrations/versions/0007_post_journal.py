"""a journal of the steps of Telegram posts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 00:00:00

A Telegram bot cannot read a chat's history, so a post retried after a crash
cannot find what its first attempt already sent. Each step of a post (the
forum topic, the card, each part of a long text, each file) is now written
down with the id Telegram answered, and a retry skips the steps found.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "post_journal",
        sa.Column("messenger", sa.String(length=20), nullable=False),
        sa.Column("post_key", sa.String(length=200), nullable=False),
        sa.Column("step", sa.String(length=200), nullable=False),
        sa.Column("result_id", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("messenger", "post_key", "step"),
    )
    with op.batch_alter_table("post_journal", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_post_journal_recorded_at"), ["recorded_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("post_journal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_journal_recorded_at"))

    op.drop_table("post_journal")
