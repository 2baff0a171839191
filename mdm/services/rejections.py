"""The rejection store, as the people fixing integrations use it: list, read, replay."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from mdm.model.errors import InvalidCursor, InvalidRecord, RejectionNotFound
from mdm.model.record import IncomingRecord
from mdm.model.rejection import Rejection
from mdm.services.context import Registry
from mdm.services.ingest import IngestFailure, IngestResult, ingest_many


@dataclass(frozen=True, slots=True)
class RejectionFilter:
    source: str | None = None
    field: str | None = None  # a canonical field or a location such as data.first_name
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class RejectionPage:
    items: list[Rejection]
    next_cursor: str | None


def list_rejections(
    registry: Registry,
    filters: RejectionFilter = RejectionFilter(),
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> RejectionPage:
    """Newest first."""
    after = _decode(cursor) if cursor else None
    with registry.database.uow() as uow:
        items = uow.rejections.page(
            source=filters.source,
            field=filters.field,
            status=filters.status,
            since=filters.since,
            until=filters.until,
            after=after,
            limit=limit + 1,
        )
    next_cursor = _encode(items[limit - 1]) if len(items) > limit else None
    return RejectionPage(items[:limit], next_cursor)


def get_rejection(registry: Registry, rejection_id: UUID) -> Rejection:
    with registry.database.uow() as uow:
        rejection = uow.rejections.get(rejection_id)
    if rejection is None:
        raise RejectionNotFound(rejection_id)
    return rejection


def replay_rejection(
    registry: Registry, rejection_id: UUID, *, actor: str, correlation_id: str | None = None
) -> tuple[Rejection, IngestResult | None]:
    """Ingest a refused record again, through its source's current profile.

    On success the rejection is marked replayed in the same transaction as the ingest;
    on failure it keeps the new reasons and `InvalidRecord` is raised with them. A
    rejection already replayed is answered as it stands (the result is None): replaying
    twice never ingests twice.
    """
    rejection = get_rejection(registry, rejection_id)
    if rejection.status == "replayed":
        return rejection, None
    incoming = _incoming(rejection)
    (outcome,) = ingest_many(
        registry, [incoming], actor=actor, correlation_id=correlation_id, replay_of=rejection.id
    )
    if isinstance(outcome, IngestFailure):
        raise outcome.error
    return get_rejection(registry, rejection_id), outcome


def _incoming(rejection: Rejection) -> IncomingRecord:
    raw = rejection.raw
    try:
        updated_at = raw.get("updated_at")
        person_id = raw.get("person_id")
        return IncomingRecord(
            source=str(raw["source"]),
            source_id=str(raw["source_id"]),
            data=raw["data"],
            updated_at=datetime.fromisoformat(updated_at) if updated_at else None,
            person_id=UUID(person_id) if person_id else None,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidRecord([], detail=f"the stored payload cannot be replayed: {exc}") from exc


def _encode(item: Rejection) -> str:
    raw = json.dumps([item.created_at.isoformat(), str(item.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, item_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(at), UUID(item_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor() from exc
