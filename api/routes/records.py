"""Ingest and match records."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import ValidationError

from api.deps import ActorDep, CorrelationDep, PrincipalDep, RegistryDep
from api.problems import problem, problem_of, validation_errors
from api.responses import json_response
from api.schemas import (
    BatchIn,
    BatchItem,
    BatchOut,
    MatchIn,
    MatchOut,
    RecordIn,
    RecordResult,
    SplitIn,
    SplitOut,
)
from mdm.model.errors import BatchTooLarge, InvalidRecord
from mdm.model.keys import Principal
from mdm.model.record import IncomingRecord
from mdm.services.ingest import IngestFailure, IngestResult, ingest_many, ingest_one
from mdm.services.match import match_record
from mdm.services.stewardship import split_record

router = APIRouter(prefix="/v1", tags=["records"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"description": "Invalid record (problem+json naming each field)"},
    401: {"description": "Missing or invalid API key"},
    413: {"description": "Body too large"},
}


_FOREIGN = "this key writes records of the source {} only"


def own_source(principal: Principal, source: str) -> None:
    """A key bound to a source acts on that source's records only (no broken object-level
    authorisation through another source's ids)."""
    if principal.source is not None and source != principal.source:
        raise HTTPException(403, _FOREIGN.format(principal.source))


def _incoming(body: RecordIn) -> IncomingRecord:
    return IncomingRecord(
        source=body.source,
        source_id=body.source_id,
        data=body.data,
        updated_at=body.updated_at,
        person_id=body.person_id,
    )


def result_out(result: IngestResult) -> RecordResult:
    return RecordResult(
        source=result.source,
        source_id=result.source_id,
        person_id=result.person_id,
        decision=result.decision,
        score=result.score,
        matched_on=list(result.matched_on),
        review_id=result.review_id,
        review_ids=list(result.review_ids),
        merged_person_ids=list(result.merged_ids),
        warnings=[w.as_dict() for w in result.warnings],
        explanation=result.explanation,
    )


@router.post(
    "/records",
    response_model=RecordResult,
    status_code=201,
    responses={200: {"description": "An existing record was updated"}, **_ERRORS},
)
async def post_record(
    body: RecordIn,
    request: Request,
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    correlation_id: CorrelationDep,
) -> Response:
    """Ingest one record: normalise, match, link it to a person and return the decision."""
    own_source(principal, body.source)
    metrics = request.app.state.metrics
    try:
        result = ingest_one(registry, _incoming(body), actor=actor, correlation_id=correlation_id)
    except InvalidRecord as exc:
        metrics.record_refused(body.source, [e.as_dict() for e in exc.errors])
        raise
    metrics.record_ingested(result.source, result.decision, result.score)
    return json_response(result_out(result), 201 if result.created else 200)


@router.post("/records:batch", response_model=BatchOut, responses=_ERRORS)
async def post_batch(
    body: BatchIn,
    request: Request,
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    correlation_id: CorrelationDep,
) -> Response:
    """Ingest up to 1,000 records, one result per record in the order posted; records
    sharing a key are applied in that order; a bad record fails alone."""
    limit = registry.settings.max_batch_records
    if len(body.records) > limit:
        raise BatchTooLarge(len(body.records), limit)
    results: list[BatchItem | None] = [None] * len(body.records)
    accepted: list[tuple[int, IncomingRecord]] = []
    for i, raw in enumerate(body.records):
        try:
            record = RecordIn.model_validate(raw)
            if principal.source is not None and record.source != principal.source:
                results[i] = BatchItem(
                    source=record.source,
                    source_id=record.source_id,
                    error=problem(403, _FOREIGN.format(principal.source), title="Forbidden",
                                  errors=[{"field": f"records.{i}.source",
                                           "message": _FOREIGN.format(principal.source)}]),
                )  # fmt: skip
                continue
            accepted.append((i, _incoming(record)))
        except ValidationError as exc:
            errors = [
                {"field": f"records.{i}.{e['field']}", "message": e["message"]}
                for e in validation_errors(exc.errors())
            ]
            results[i] = BatchItem(
                source=raw.get("source") if isinstance(raw.get("source"), str) else None,
                source_id=raw.get("source_id") if isinstance(raw.get("source_id"), str) else None,
                error=problem(
                    422, "The record is not valid", title="Invalid record", errors=errors
                ),
            )
    metrics = request.app.state.metrics
    outcomes = ingest_many(
        registry, [r for _, r in accepted], actor=actor, correlation_id=correlation_id
    )
    for (i, incoming), outcome in zip(accepted, outcomes, strict=True):
        if isinstance(outcome, IngestFailure):
            results[i] = BatchItem(
                source=incoming.source,
                source_id=incoming.source_id,
                error=problem_of(outcome.error),
            )
            metrics.record_refused(
                incoming.source, [e.as_dict() for e in getattr(outcome.error, "errors", [])]
            )
        else:
            metrics.record_ingested(outcome.source, outcome.decision, outcome.score)
            r = result_out(outcome)
            results[i] = BatchItem(
                source=r.source,
                source_id=r.source_id,
                person_id=r.person_id,
                decision=r.decision,
                score=r.score,
                matched_on=r.matched_on,
                review_id=r.review_id,
                merged_person_ids=r.merged_person_ids or None,
                warnings=r.warnings,
            )
    return json_response(BatchOut(results=[r for r in results if r is not None]))


@router.post("/match", response_model=MatchOut, responses=_ERRORS)
async def post_match(body: MatchIn, registry: RegistryDep, actor: ActorDep) -> Response:
    """What the registry would decide for this record, with every candidate scored.
    Writes nothing."""
    result = match_record(
        registry,
        IncomingRecord(
            source=body.source,
            source_id=body.source_id or "",
            data=body.data,
            person_id=body.person_id,
        ),
    )
    out = MatchOut(
        decision=result.decision,
        score=result.score,
        person_id=result.person_id,
        matched_on=list(result.matched_on),
        candidates=[
            {"person_id": c.person_id, "score": c.score, "explanation": c.explanation}
            for c in result.candidates
        ],
        explanation=result.explanation,
        warnings=[w.as_dict() for w in result.warnings],
    )
    return json_response(out)


@router.post(
    "/records/{source}/{source_id}/split",
    response_model=SplitOut,
    responses={
        404: {"description": "Unknown record"},
        422: {"description": "The record is its person's only one, or the target is unknown"},
    },
)
async def split(
    source: str,
    source_id: str,
    body: SplitIn,
    registry: RegistryDep,
    actor: ActorDep,
    principal: PrincipalDep,
    correlation_id: CorrelationDep,
) -> SplitOut:
    """Move one record out of its person, to a new person or to `person_id`: both golden
    records are rebuilt, the link becomes manual, and the two persons are recorded as not a
    match so no automatic decision puts the record back. Emits `person.split`."""
    own_source(principal, source)
    result = split_record(
        registry, source, source_id, actor=actor, into=body.person_id, note=body.note,
        correlation_id=correlation_id,
    )  # fmt: skip
    return SplitOut(person_id=result.person_id, from_person_id=result.from_person_id)
