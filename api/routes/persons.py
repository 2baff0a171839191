"""Read persons and search them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import ActorDep, CorrelationDep, PrincipalDep, RegistryDep
from api.schemas import (
    ConsentStateOut,
    ErasureOut,
    FieldOut,
    HistoryEntryOut,
    HistoryPage,
    MergeIn,
    PersonOut,
    PersonPage,
    RecordLinkOut,
    ReviewOut,
)
from mdm.model.errors import InvalidCursor
from mdm.model.person import ReviewItem
from mdm.model.redaction import (
    redact,
    redact_explanation,
    redact_lineage,
    redact_mapping,
    visibility,
)
from mdm.services.erasure import erase_person
from mdm.services.persons import (
    PersonView,
    explain_field,
    get_person,
    person_history,
    search_persons,
)
from mdm.services.stewardship import merge_persons

router = APIRouter(prefix="/v1/persons", tags=["persons"])


def person_out(view: PersonView, scopes: Iterable[str]) -> PersonOut:
    """The person as the caller may see it: sensitive fields redacted without the scope."""
    held = frozenset(scopes)
    return PersonOut(
        id=view.id,
        status=view.status,
        attributes=redact(view.attributes, held),
        lineage=redact_lineage(view.lineage, held),
        records=[
            RecordLinkOut(
                source=r.source,
                source_id=r.source_id,
                link_source=r.link_source,
                link_state=r.link_state,
                score=r.score,
                rule=r.rule,
                linked_at=r.linked_at,
                version=r.version,
                updated_at=r.updated_at,
                mapping=redact_mapping(r.mapping, held),
            )
            for r in view.records
        ],
        aliases=list(view.aliases),
        consents={
            purpose: ConsentStateOut(granted=c.granted, source=c.source, at=c.at)
            for purpose, c in view.consents.items()
        },
        version=view.version,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


@router.get(
    "/{person_id}",
    response_model=PersonOut,
    responses={404: {"description": "Unknown id"}, 410: {"description": "Erased"}},
)
async def read_person(
    person_id: UUID, registry: RegistryDep, actor: ActorDep, principal: PrincipalDep
) -> PersonOut:
    """The golden record, its lineage, linked records and what holds of its consents per
    purpose. A merged-away id answers with the person it was merged into (whose `aliases`
    hold the old id)."""
    return person_out(get_person(registry, person_id), principal.scopes)


@router.get("", response_model=PersonPage)
async def search(
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    country: Annotated[str | None, Query(min_length=2, max_length=2)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> PersonPage:
    """Persons by exact email, phone (E.164, or national with `country`) or full name."""
    after = None
    if cursor:
        try:
            after = UUID(cursor)
        except ValueError:
            raise InvalidCursor() from None
    views = search_persons(
        registry,
        email=email,
        phone=phone,
        name=name,
        country=country,
        limit=limit + 1,
        after=after,
    )
    next_cursor = str(views[limit - 1].id) if len(views) > limit else None
    return PersonPage(
        items=[person_out(v, principal.scopes) for v in views[:limit]], next_cursor=next_cursor
    )


@router.post(
    "/{person_id}/merge",
    response_model=PersonOut,
    responses={
        404: {"description": "Unknown id"},
        410: {"description": "Erased"},
        422: {"description": "The other person is unknown, erased, or the same"},
    },
)
async def merge(
    person_id: UUID,
    body: MergeIn,
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    correlation_id: CorrelationDep,
) -> PersonOut:
    """Merge `other_id` into this person, which keeps its id: the other's records move,
    its id redirects here for good (listed in `aliases`), its open review items follow, and
    the golden record is rebuilt. Merging twice is no change."""
    survivor = merge_persons(
        registry, person_id, body.other_id, actor=actor, note=body.note,
        correlation_id=correlation_id,
    )  # fmt: skip
    return person_out(get_person(registry, survivor), principal.scopes)


@router.get(
    "/{person_id}/history",
    response_model=HistoryPage,
    responses={404: {"description": "Unknown id"}, 410: {"description": "Erased"}},
)
async def history(
    person_id: UUID,
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> HistoryPage:
    """Every link, update, merge, split, review decision and golden record change of the
    person (and of the ids merged into it), oldest first, with actor, time and
    before/after."""
    after = None
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidCursor()
        after = int(cursor)
    entries, next_seq = person_history(registry, person_id, after=after, limit=limit)
    return HistoryPage(
        items=[history_entry(e, principal.scopes) for e in entries],
        next_cursor=str(next_seq) if next_seq is not None else None,
    )


@router.delete(
    "/{person_id}",
    response_model=ErasureOut,
    responses={404: {"description": "Unknown id"}, 410: {"description": "Already erased"}},
)
async def erase(
    person_id: UUID,
    registry: RegistryDep,
    actor: ActorDep,
    correlation_id: CorrelationDep,
    reason: Annotated[
        str,
        Query(
            min_length=1,
            max_length=500,
            description="Why (a request reference); kept in the tombstone and the audit trail",
        ),
    ],
) -> ErasureOut:
    """Erase the person: every personal value in the golden record, the linked records,
    their raw payloads, review items, events and refused payloads goes, and its audit values
    become unreadable. A tombstone remains; the id answers 410 from now on; a
    `person.erased` event lists every (source, source_id) so each system can delete its
    copy; a record of the person posted again is refused with 409."""
    done = erase_person(
        registry, person_id, actor=actor, reason=reason, correlation_id=correlation_id
    )
    return ErasureOut(
        person_id=done.person_id,
        erased_at=done.erased_at,
        requested_by=done.requested_by,
        reason=done.reason,
        records=[{"source": s, "source_id": i} for s, i in done.records],
        aliases=list(done.aliases),
    )


@router.get(
    "/{person_id}/fields/{field}",
    response_model=FieldOut,
    responses={404: {"description": "Unknown id"}, 410: {"description": "Erased"}},
)
async def field_lineage(
    person_id: UUID, field: str, registry: RegistryDep, actor: ActorDep, principal: PrincipalDep
) -> FieldOut:
    """One golden field explained: its survivorship rule, the record its value came from
    and the values it won over, a steward's choice, and the conflicts raised on it."""
    explained = explain_field(registry, person_id, field)
    seen = visibility(explained.field, principal.scopes)
    lineage = redact_lineage({explained.field: explained.lineage}, principal.scopes)
    value = redact({explained.field: explained.value}, principal.scopes).get(explained.field)
    choice = explained.choice if seen == "clear" else None
    return FieldOut(
        person_id=explained.person_id,
        field=explained.field,
        value=value,
        strategy=explained.rule.strategy.value,
        owners=list(explained.rule.owners),
        immutable=explained.rule.immutable,
        sensitive=explained.rule.sensitive,
        lineage=lineage.get(explained.field, {}),
        choice=choice,
        conflicts=[review_out(c, principal.scopes) for c in explained.conflicts],
    )


def review_out(item: ReviewItem, scopes: Iterable[str]) -> ReviewOut:
    out = ReviewOut.model_validate(item, from_attributes=True)
    out.explanation = redact_explanation(item.explanation, scopes)
    return out


def history_entry(entry: Any, scopes: Iterable[str]) -> HistoryEntryOut:
    out = HistoryEntryOut.model_validate(entry, from_attributes=True)
    out.before = redact(out.before, scopes) if out.before is not None else None
    out.after = redact(out.after, scopes) if out.after is not None else None
    return out
