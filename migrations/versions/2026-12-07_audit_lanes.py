"""audit trail lanes: chains of their own for the nightly dedupe's writing processes

Revision ID: 0011_audit_lanes
Revises: 0010_review_person_status
Create Date: 2026-12-07 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_audit_lanes"
down_revision: str | None = "0010_review_person_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every event written so far is on lane 0: its chain verifies as it did.
    op.add_column(
        "audit_events",
        sa.Column("lane", sa.SmallInteger(), server_default="0", nullable=False),
    )
    # A lane's head, and `mdm audit verify` walking lane by lane.
    op.create_index("ix_audit_events_lane", "audit_events", ["lane", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_lane", table_name="audit_events")
    # ALTER TABLE ... DROP COLUMN on SQLite too (3.35 and later): a copied table would
    # leave the append-only triggers behind.
    op.drop_column("audit_events", "lane")
