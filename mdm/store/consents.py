"""Consent statements: appended, and read by person."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Connection, Table, delete, insert, select

from mdm.model.consent import Consent
from mdm.store.tables import ConsentRow

consents_t = cast(Table, ConsentRow.__table__)


class ConsentRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, consent: Consent) -> None:
        self.conn.execute(
            insert(consents_t).values(
                id=consent.id,
                person_id=consent.person_id,
                purpose=consent.purpose,
                granted=consent.granted,
                source=consent.source,
                at=consent.at,
                evidence=consent.evidence,
                recorded_at=consent.recorded_at,
                recorded_by=consent.recorded_by,
            )
        )

    def erase(self, person_ids: Sequence[UUID]) -> int:
        """An erased person's statements go with it; the audit trail keeps them sealed."""
        done = self.conn.execute(delete(consents_t).where(consents_t.c.person_id.in_(person_ids)))
        return done.rowcount or 0

    def of(self, person_ids: Sequence[UUID], *, purpose: str | None = None) -> list[Consent]:
        """Every statement recorded on these persons (for one purpose, if given)."""
        stmt = select(consents_t).where(consents_t.c.person_id.in_(person_ids))
        if purpose is not None:
            stmt = stmt.where(consents_t.c.purpose == purpose)
        return [_consent(r._mapping) for r in self.conn.execute(stmt)]


def _consent(m: Any) -> Consent:
    return Consent(
        id=m["id"],
        person_id=m["person_id"],
        purpose=m["purpose"],
        granted=m["granted"],
        source=m["source"],
        at=m["at"],
        evidence=m["evidence"],
        recorded_at=m["recorded_at"],
        recorded_by=m["recorded_by"],
    )
