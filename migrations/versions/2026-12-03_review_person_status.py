"""review items found by person and status

Revision ID: 0010_review_person_status
Revises: 0009_consents
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_review_person_status"
down_revision: str | None = "0009_consents"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A merge looks up the open items of each person it merges away; with the status in
    # the index it reads those and no others.
    for column in ("person_a", "person_b"):
        op.create_index(f"ix_review_items_{column}_status", "review_items", [column, "status"])
        op.drop_index(f"ix_review_items_{column}", table_name="review_items")


def downgrade() -> None:
    for column in ("person_a", "person_b"):
        op.create_index(f"ix_review_items_{column}", "review_items", [column])
        op.drop_index(f"ix_review_items_{column}_status", table_name="review_items")
