"""rejections: replay state, the failing fields for filtering, indexes by time and source

Revision ID: 0004_rejection_replay
Revises: 0003_not_a_match
Create Date: 2026-11-29 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_rejection_replay"
down_revision: str | None = "0003_not_a_match"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rejections") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="open")
        )
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("person_id", sa.Uuid(), nullable=True))
        # The failing fields, space-delimited with a leading and trailing space, so that a
        # filter by field is one LIKE on both databases.
        batch.add_column(sa.Column("fields", sa.Text(), nullable=False, server_default=" "))
    op.create_index("ix_rejections_created_at", "rejections", ["created_at", "id"])
    op.create_index("ix_rejections_source", "rejections", ["source", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_rejections_source", table_name="rejections")
    op.drop_index("ix_rejections_created_at", table_name="rejections")
    with op.batch_alter_table("rejections") as batch:
        for column in ("fields", "person_id", "replayed_at", "last_attempt_at", "attempts"):
            batch.drop_column(column)
        batch.drop_column("status")
