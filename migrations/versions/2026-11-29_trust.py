"""trust: persons' own keys, the hash-chained append-only audit trail, erasure tombstones

Revision ID: 0008_trust
Revises: 0007_api_keys
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence
from datetime import UTC

import sqlalchemy as sa
from alembic import op

from mdm.store.audit import GENESIS, digest

revision: str = "0008_trust"
down_revision: str | None = "0007_api_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_GUARD = """
CREATE FUNCTION mdm_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
_SQLITE_GUARDS = {
    "audit_events_no_update": "UPDATE",
    "audit_events_no_delete": "DELETE",
}


def upgrade() -> None:
    with op.batch_alter_table("persons") as batch:
        batch.add_column(sa.Column("data_key", sa.Text(), nullable=True))
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_events()
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
    op.create_table(
        "erasures",
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("records", sa.JSON(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_erasures_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_erasures")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION mdm_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION mdm_audit_append_only()"
        )
    else:
        for name, operation in _SQLITE_GUARDS.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {operation} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: {operation} refused'); "
                "END"
            )


def _chain_existing_events() -> None:
    """Events written before the chain existed join it, in their order."""
    conn = op.get_bind()
    audit = sa.table(
        "audit_events",
        # Typed as the models type it: SQLite keeps a UUID as 32 hex digits, and the hash
        # covers the UUID's text with its dashes, as `verify` reads it.
        sa.column("id", sa.Uuid()),
        *(sa.column(c) for c in ("seq", "actor", "action", "entity_type", "entity_id")),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("correlation_id"),
        sa.column("before", sa.JSON()),
        sa.column("after", sa.JSON()),
        sa.column("prev_hash"),
        sa.column("hash"),
    )
    head, after = GENESIS, -1
    while True:
        rows = conn.execute(
            sa.select(audit).where(audit.c.seq > after).order_by(audit.c.seq).limit(10_000)
        ).all()
        if not rows:
            return
        updates = []
        for row in rows:
            m = dict(row._mapping)
            at = m["at"]  # SQLite keeps UTC without a zone
            m["at"] = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            updates.append({"b_seq": m["seq"], "b_prev": head, "b_hash": digest(head, m)})
            head = updates[-1]["b_hash"]
        conn.execute(
            audit.update()
            .where(audit.c.seq == sa.bindparam("b_seq"))
            .values(prev_hash=sa.bindparam("b_prev"), hash=sa.bindparam("b_hash")),
            updates,
        )
        after = rows[-1].seq


def downgrade() -> None:
    # Below this revision nothing holds the persons' own keys: the audit values sealed
    # under them could never be read again. Refused rather than done.
    keyed = op.get_bind().scalar(sa.text("SELECT count(*) FROM persons WHERE data_key IS NOT NULL"))
    if keyed:
        raise RuntimeError(
            f"cannot downgrade below 0008_trust: {keyed} persons hold their own keys, and the "
            "audit values sealed under them would become unreadable"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION mdm_audit_append_only()")
    else:
        for name in _SQLITE_GUARDS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("erasures")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
    with op.batch_alter_table("persons") as batch:
        batch.drop_column("data_key")
