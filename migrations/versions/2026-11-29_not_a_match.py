"""not a match: pairs of persons stewards said are not one human; the queue by score

Revision ID: 0003_not_a_match
Revises: 0002_match_models
Create Date: 2026-11-29 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_not_a_match"
down_revision: str | None = "0002_match_models"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "not_a_match",
        sa.Column("person_a", sa.Uuid(), nullable=False),
        sa.Column("person_b", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=True),
        sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_a"], ["persons.id"], name=op.f("fk_not_a_match_person_a_persons")
        ),
        sa.ForeignKeyConstraint(
            ["person_b"], ["persons.id"], name=op.f("fk_not_a_match_person_b_persons")
        ),
        sa.PrimaryKeyConstraint("person_a", "person_b", name=op.f("pk_not_a_match")),
    )
    op.create_index("ix_not_a_match_person_b", "not_a_match", ["person_b"])
    op.create_index("ix_review_items_status_score", "review_items", ["status", "score", "id"])


def downgrade() -> None:
    op.drop_index("ix_review_items_status_score", table_name="review_items")
    op.drop_index("ix_not_a_match_person_b", table_name="not_a_match")
    op.drop_table("not_a_match")
