"""The review queue, as data stewards read it: filtered, sorted, paged, counted."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from mdm.model.errors import InvalidCursor
from mdm.model.person import ReviewItem
from mdm.services.context import Registry

Sort = Literal["age", "-age", "score", "-score"]


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    status: str | None = "open"
    kind: str | None = None
    source: str | None = None
    min_score: float | None = None
    max_score: float | None = None
    created_before: datetime | None = None  # items at least this old
    created_after: datetime | None = None

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "kind": self.kind,
            "source": self.source,
            "min_score": self.min_score,
            "max_score": self.max_score,
            "created_before": self.created_before,
            "created_after": self.created_after,
        }


@dataclass(frozen=True, slots=True)
class ReviewPage:
    items: list[ReviewItem]
    next_cursor: str | None
    counts: dict[str, int]  # items matching the other filters, by status


def encode_cursor(item: ReviewItem, sort: Sort) -> str:
    key = item.score if sort.lstrip("-") == "score" else item.created_at.isoformat()
    raw = json.dumps([sort, key, str(item.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, UUID]:
    """The sort key and id a page ends with; a cursor of another sort order is refused."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, key, item_id = json.loads(base64.urlsafe_b64decode(padded))
        if cursor_sort != sort:
            raise ValueError("another sort order")
        value = float(key) if sort.lstrip("-") == "score" else datetime.fromisoformat(key)
        return value, UUID(item_id)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor() from exc


def list_reviews(
    registry: Registry,
    filters: ReviewFilter = ReviewFilter(),
    *,
    sort: Sort = "age",
    cursor: str | None = None,
    limit: int = 50,
) -> ReviewPage:
    """One page of review items in `sort` order, the next page's cursor, and counts."""
    after = decode_cursor(cursor, sort) if cursor else None
    with registry.database.uow() as uow:
        items = uow.registry.list_reviews(
            sort=sort, after=after, limit=limit + 1, **filters.as_kwargs()
        )
        counts = uow.registry.count_reviews(**filters.as_kwargs())
    next_cursor = encode_cursor(items[limit - 1], sort) if len(items) > limit else None
    return ReviewPage(items[:limit], next_cursor, counts)
