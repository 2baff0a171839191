"""The rejection store: records the registry refused, kept verbatim, replayable."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import ActorDep, CorrelationDep, PrincipalDep, RegistryDep
from api.routes.records import result_out
from api.schemas import QueryInstant, RejectionOut, RejectionPage, ReplayOut
from mdm.model.errors import RejectionNotFound
from mdm.model.keys import Principal
from mdm.model.rejection import Rejection
from mdm.services.rejections import (
    RejectionFilter,
    get_rejection,
    list_rejections,
    replay_rejection,
)

router = APIRouter(prefix="/v1/rejections", tags=["rejections"])


def rejection_out(r: Rejection) -> RejectionOut:
    return RejectionOut.model_validate(r, from_attributes=True)


@router.get("", response_model=RejectionPage)
async def rejections(
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    source: Annotated[str | None, Query(max_length=64)] = None,
    field: Annotated[
        str | None,
        Query(
            max_length=200,
            description="A canonical field (birth_date) or a place in the payload "
            "(data.first_name)",
        ),
    ] = None,
    status: Literal["open", "replayed"] | None = None,
    since: Annotated[QueryInstant | None, Query(description="Refused at or after")] = None,
    until: Annotated[QueryInstant | None, Query(description="Refused before")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> RejectionPage:
    """Refused records, newest first, each with every reason and the payload as posted."""
    if principal.source is not None:
        source = principal.source  # a source's key sees its own rejections only
    page = list_rejections(
        registry,
        RejectionFilter(source=source, field=field, status=status, since=since, until=until),
        cursor=cursor,
        limit=limit,
    )
    return RejectionPage(items=[rejection_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{rejection_id}", response_model=RejectionOut, responses={404: {}})
async def rejection(
    rejection_id: UUID, registry: RegistryDep, actor: ActorDep, principal: PrincipalDep
) -> RejectionOut:
    return rejection_out(_own(principal, get_rejection(registry, rejection_id)))


def _own(principal: Principal, rejection: Rejection) -> Rejection:
    """Another source's rejection is not found, rather than forbidden: its id says nothing."""
    if principal.source is not None and rejection.source != principal.source:
        raise RejectionNotFound(rejection.id)
    return rejection


@router.post(
    "/{rejection_id}/replay",
    response_model=ReplayOut,
    responses={
        404: {"description": "Unknown rejection"},
        422: {"description": "Still refused: the reasons, as for POST /v1/records"},
    },
)
async def replay(
    rejection_id: UUID,
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    correlation_id: CorrelationDep,
) -> ReplayOut:
    """Ingest the kept payload again through its source's current profile (after the
    profile, or the source's configuration, was fixed). Replaying a rejection already
    replayed changes nothing."""
    _own(principal, get_rejection(registry, rejection_id))
    stored, result = replay_rejection(
        registry, rejection_id, actor=actor, correlation_id=correlation_id
    )
    return ReplayOut(rejection=rejection_out(stored), result=result_out(result) if result else None)
