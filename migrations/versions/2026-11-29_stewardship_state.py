"""persons.stewardship: values stewards accepted for fields, and the conflicts raised

Revision ID: 0005_stewardship_state
Revises: 0004_rejection_replay
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_stewardship_state"
down_revision: str | None = "0004_rejection_replay"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("stewardship", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("stewardship")
