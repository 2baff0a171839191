"""The review queue (read-only until stewards' decisions land)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import ActorDep, RegistryDep
from api.schemas import ReviewOut, ReviewPage
from mdm.services.reviews import list_reviews

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])


@router.get("", response_model=ReviewPage)
async def reviews(
    registry: RegistryDep,
    actor: ActorDep,
    status: Literal["open", "merged", "distinct", "resolved"] | None = "open",
    kind: Literal["match", "conflict"] | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ReviewPage:
    """Review items, oldest first, cursor-paginated."""
    items, next_cursor = list_reviews(
        registry,
        status=status,
        kind=kind,
        min_score=min_score,
        max_score=max_score,
        cursor=cursor,
        limit=limit,
    )
    return ReviewPage(
        items=[ReviewOut.model_validate(i, from_attributes=True) for i in items],
        next_cursor=next_cursor,
    )
