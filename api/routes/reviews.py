"""The review queue and stewards' decisions on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import ActorDep, CorrelationDep, PrincipalDep, RegistryDep
from api.routes.persons import person_out, review_out
from api.schemas import ResolutionOut, ResolveIn, ReviewDetailOut, ReviewPage
from mdm.services.reviews import ReviewFilter, list_reviews
from mdm.services.stewardship import resolve_review, review_detail

# A century: older than any registry, and within the range of a date.
MAX_AGE_HOURS = 24 * 366 * 100

router = APIRouter(prefix="/v1/reviews", tags=["reviews"])


@router.get("", response_model=ReviewPage)
async def reviews(
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    status: Literal["open", "merged", "distinct", "resolved"] | None = "open",
    kind: Literal["match", "conflict"] | None = None,
    source: Annotated[
        str | None,
        Query(max_length=64, description="The source of the record that opened the item"),
    ] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    min_age_hours: Annotated[
        float | None, Query(ge=0, le=MAX_AGE_HOURS, description="Items at least this old")
    ] = None,
    max_age_hours: Annotated[
        float | None, Query(ge=0, le=MAX_AGE_HOURS, description="Items at most this old")
    ] = None,
    sort: Literal["age", "-age", "score", "-score"] = "age",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ReviewPage:
    """Review items, cursor-paginated: oldest first by default (`-age` newest first,
    `score` / `-score` by confidence). `counts` holds the items matching the other filters,
    by status."""
    now = datetime.now(UTC)
    filters = ReviewFilter(
        status=status,
        kind=kind,
        source=source,
        min_score=min_score,
        max_score=max_score,
        created_before=now - timedelta(hours=min_age_hours) if min_age_hours is not None else None,
        created_after=now - timedelta(hours=max_age_hours) if max_age_hours is not None else None,
    )
    page = list_reviews(registry, filters, sort=sort, cursor=cursor, limit=limit)
    return ReviewPage(
        items=[review_out(i, principal.scopes) for i in page.items],
        next_cursor=page.next_cursor,
        counts=page.counts,
    )


@router.get(
    "/{review_id}",
    response_model=ReviewDetailOut,
    responses={404: {"description": "Unknown review item"}},
)
async def read_review(
    review_id: UUID, registry: RegistryDep, actor: ActorDep, principal: PrincipalDep
) -> ReviewDetailOut:
    """The item, its per-attribute comparison (`explanation.comparisons`: level and match
    weight), and both persons as they are now."""
    detail = review_detail(registry, review_id)
    return ReviewDetailOut(
        **review_out(detail.item, principal.scopes).model_dump(),
        person_a_detail=person_out(detail.person_a, principal.scopes),
        person_b_detail=person_out(detail.person_b, principal.scopes),
    )


@router.post(
    "/{review_id}/resolve",
    response_model=ResolutionOut,
    responses={
        404: {"description": "Unknown review item"},
        409: {"description": "Resolved already, or a person changed since it was shown"},
    },
)
async def resolve(
    review_id: UUID,
    body: ResolveIn,
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    correlation_id: CorrelationDep,
) -> ResolutionOut:
    """Merge the two persons, or record that they are distinct: the pair is then never
    proposed again. With both versions given, a decision on a changed state gets 409 and
    the current state."""
    versions = None
    if body.person_a_version is not None and body.person_b_version is not None:
        versions = (body.person_a_version, body.person_b_version)
    resolution = resolve_review(
        registry,
        review_id,
        body.decision,
        actor=actor,
        note=body.note,
        versions=versions,
        correlation_id=correlation_id,
    )
    return ResolutionOut(
        review=review_out(resolution.item, principal.scopes),
        person_id=resolution.person_id,
    )
