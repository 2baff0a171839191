"""A person's consents: record a statement per purpose, read what holds and the history."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path

from api.deps import ActorDep, CorrelationDep, PrincipalDep, RegistryDep
from api.schemas import ConsentIn, ConsentOut, ConsentRecordedOut, PersonConsentsOut
from mdm.model.consent import PURPOSE_PATTERN, Consent
from mdm.services.consents import consents_of, record_consent

router = APIRouter(prefix="/v1/persons", tags=["consents"])
Purpose = Annotated[str, Path(pattern=PURPOSE_PATTERN, examples=["marketing.email"])]


def consent_out(consent: Consent) -> ConsentOut:
    return ConsentOut(
        purpose=consent.purpose,
        granted=consent.granted,
        source=consent.source,
        at=consent.at,
        evidence=consent.evidence,
        recorded_at=consent.recorded_at,
        recorded_by=consent.recorded_by,
        recorded_on=consent.person_id,
    )


@router.put(
    "/{person_id}/consents/{purpose}",
    response_model=ConsentRecordedOut,
    responses={
        403: {"description": "A key bound to another source than `source`"},
        404: {"description": "Unknown id"},
        410: {"description": "Erased"},
        422: {"description": "Invalid purpose, source or time (problem+json naming the field)"},
    },
)
async def put_consent(
    person_id: UUID,
    purpose: Purpose,
    body: ConsentIn,
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    correlation_id: CorrelationDep,
) -> ConsentRecordedOut:
    """Record that the person gave (`granted: true`) or withdrew consent for a purpose, as
    `source` captured it `at` that time. What holds is the statement with the latest `at`:
    an older one sent later is kept and audited but changes nothing (`changed: false`).
    A merged-away id records on the person it was merged into."""
    if principal.source is not None and body.source != principal.source:
        # A key bound to a source speaks for that source only.
        raise HTTPException(403, f"this key records consents of the source {principal.source} only")
    recorded = record_consent(
        registry, person_id, purpose=purpose, granted=body.granted, source=body.source,
        at=body.at, evidence=body.evidence, actor=actor, correlation_id=correlation_id,
    )  # fmt: skip
    return ConsentRecordedOut(
        **consent_out(recorded.current).model_dump(),
        person_id=recorded.person_id,
        changed=recorded.changed,
    )


@router.get(
    "/{person_id}/consents",
    response_model=PersonConsentsOut,
    responses={404: {"description": "Unknown id"}, 410: {"description": "Erased"}},
)
async def get_consents(
    person_id: UUID, registry: RegistryDep, actor: ActorDep, history: bool = False
) -> PersonConsentsOut:
    """What holds per purpose, also from the ids merged into this person; with
    `history=true` every statement too, newest first."""
    found = consents_of(registry, person_id)
    return PersonConsentsOut(
        person_id=found.person_id,
        consents={purpose: consent_out(c) for purpose, c in found.current.items()},
        history=[consent_out(c) for c in found.history] if history else None,
    )
