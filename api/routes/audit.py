"""The audit trail: every state change, hash-chained, for auditors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ActorDep, PrincipalDep, RegistryDep
from api.routes.persons import history_entry
from api.schemas import HistoryPage, QueryInstant
from mdm.model.errors import InvalidCursor
from mdm.services.persons import audit_trail

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=HistoryPage)
async def list_audit(
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    entity_type: Annotated[str | None, Query(max_length=32)] = None,
    entity_id: Annotated[str | None, Query(max_length=320)] = None,
    by: Annotated[str | None, Query(max_length=128, description="The actor")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    correlation_id: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[QueryInstant | None, Query(description="From this time (inclusive)")] = None,
    until: Annotated[QueryInstant | None, Query(description="Before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> HistoryPage:
    """Audit events in the order they were chained (oldest first), with actor, time,
    correlation id and before/after. Sensitive values follow the caller's scopes; a
    person's values read `{"erased": true}` once the person was erased."""
    after = None
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidCursor()
        after = int(cursor)
    entries, next_seq = audit_trail(
        registry, after=after, limit=limit, entity_type=entity_type, entity_id=entity_id,
        actor=by, action=action, correlation_id=correlation_id, since=since, until=until,
    )  # fmt: skip
    return HistoryPage(
        items=[history_entry(e, principal.scopes) for e in entries],
        next_cursor=str(next_seq) if next_seq is not None else None,
    )
