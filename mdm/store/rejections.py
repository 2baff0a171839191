"""The rejection store: refused records kept verbatim, listed, and marked when replayed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    delete,
    insert,
    or_,
    select,
    tuple_,
    update,
)

from mdm.model.rejection import Rejection
from mdm.store.sealing import Sealer
from mdm.store.tables import RejectionRow

rejections_t = cast(Table, RejectionRow.__table__)


def _fields_column(errors: Iterable[dict[str, Any]]) -> str:
    names: dict[str, None] = {}
    for e in errors:
        names.setdefault(str(e.get("field")), None)
        if e.get("canonical"):
            names.setdefault(str(e["canonical"]), None)
    return " " + " ".join(n.replace(" ", "_") for n in names) + " "


class RejectionRepository:
    def __init__(self, conn: Connection, sealer: Sealer) -> None:
        self.conn = conn
        self.sealer = sealer

    def insert(self, rejection: Rejection) -> None:
        self.conn.execute(
            insert(rejections_t).values(
                id=rejection.id,
                source=rejection.source,
                source_id=rejection.source_id,
                raw=self.sealer.seal("raw", rejection.raw),
                errors=rejection.errors,
                fields=_fields_column(rejection.errors),
                correlation_id=rejection.correlation_id,
                created_at=rejection.created_at,
                status=rejection.status,
                attempts=rejection.attempts,
            )
        )

    def erase(self, pairs: Sequence[tuple[str, str]], person_ids: Sequence[UUID]) -> int:
        """Drop the refused payloads of an erased person's records: erasure outranks
        keeping what was sent."""
        c = rejections_t.c
        gone = 0
        for chunk in [list(pairs[i : i + 500]) for i in range(0, len(pairs), 500)] or [[]]:
            where: ColumnElement[bool] = c.person_id.in_(person_ids)
            if chunk:
                where = or_(where, tuple_(c.source, c.source_id).in_(chunk))
            gone += self.conn.execute(delete(rejections_t).where(where)).rowcount or 0
        return gone

    def get(self, rejection_id: UUID, *, lock: bool = False) -> Rejection | None:
        stmt = select(rejections_t).where(rejections_t.c.id == rejection_id)
        if lock and self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        return _rejection(row._mapping, self.sealer) if row is not None else None

    def page(
        self,
        *,
        source: str | None = None,
        field: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, UUID] | None = None,
        limit: int,
    ) -> list[Rejection]:
        """Newest first; `after` is the time and id of the last item of the previous page."""
        c = rejections_t.c
        stmt = select(rejections_t)
        if source is not None:
            stmt = stmt.where(c.source == source)
        if field is not None:
            # Either the canonical field or the location in the payload.
            stmt = stmt.where(c.fields.contains(f" {field.replace(' ', '_')} ", autoescape=True))
        if status is not None:
            stmt = stmt.where(c.status == status)
        if since is not None:
            stmt = stmt.where(c.created_at >= since)
        if until is not None:
            stmt = stmt.where(c.created_at < until)
        if after is not None:
            at, last_id = after
            stmt = stmt.where(or_(c.created_at < at, and_(c.created_at == at, c.id < last_id)))
        stmt = stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        return [_rejection(r._mapping, self.sealer) for r in self.conn.execute(stmt)]

    def mark_replayed(self, rejection_id: UUID, *, person_id: UUID, at: datetime) -> None:
        self.conn.execute(
            update(rejections_t)
            .where(rejections_t.c.id == rejection_id)
            .values(
                status="replayed",
                replayed_at=at,
                last_attempt_at=at,
                person_id=person_id,
                attempts=rejections_t.c.attempts + 1,
            )
        )

    def record_failure(
        self, rejection_id: UUID, *, errors: list[dict[str, Any]], at: datetime
    ) -> None:
        """A replay that failed again: the new reasons replace the old ones."""
        self.conn.execute(
            update(rejections_t)
            .where(rejections_t.c.id == rejection_id)
            .values(
                errors=errors,
                fields=_fields_column(errors),
                last_attempt_at=at,
                attempts=rejections_t.c.attempts + 1,
            )
        )


def _rejection(m: Any, sealer: Sealer) -> Rejection:
    return Rejection(
        id=m["id"],
        source=m["source"],
        source_id=m["source_id"],
        raw=sealer.open("raw", m["raw"]),
        errors=m["errors"],
        correlation_id=m["correlation_id"],
        created_at=m["created_at"],
        status=m["status"],
        attempts=m["attempts"],
        last_attempt_at=m["last_attempt_at"],
        replayed_at=m["replayed_at"],
        person_id=m["person_id"],
    )
