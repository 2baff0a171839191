"""The review queue, as data stewards read it."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from uuid import UUID

from mdm.model.errors import InvalidCursor
from mdm.model.person import ReviewItem
from mdm.services.context import Registry


def encode_cursor(item: ReviewItem) -> str:
    raw = json.dumps([item.created_at.isoformat(), str(item.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, item_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(at), UUID(item_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor() from exc


def list_reviews(
    registry: Registry,
    *,
    status: str | None = "open",
    kind: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[ReviewItem], str | None]:
    """One page of review items, oldest first, and the cursor of the next page."""
    after = decode_cursor(cursor) if cursor else None
    with registry.database.uow() as uow:
        items = uow.registry.list_reviews(
            status=status,
            kind=kind,
            min_score=min_score,
            max_score=max_score,
            after=after,
            limit=limit + 1,
        )
    next_cursor = encode_cursor(items[limit - 1]) if len(items) > limit else None
    return items[:limit], next_cursor
