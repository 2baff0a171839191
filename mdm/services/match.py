"""Match: what the registry would decide for a record, without writing anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from mdm.flow.decide import Candidate, Outcome, decide
from mdm.model.errors import FieldIssue
from mdm.model.person import LinkedRecord
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.retry import run_with_retries
from mdm.services.sources import prepare


@dataclass(frozen=True, slots=True)
class ScoredCandidate:
    person_id: UUID
    score: float
    explanation: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MatchResult:
    decision: str  # linked | created | review: what an ingest would do now
    score: float
    person_id: UUID | None
    matched_on: tuple[str, ...]
    candidates: tuple[ScoredCandidate, ...]
    explanation: dict[str, Any]
    warnings: tuple[FieldIssue, ...]


_DECISION = {Outcome.LINK: "linked", Outcome.CREATE: "created", Outcome.REVIEW: "review"}


def match_record(registry: Registry, record: IncomingRecord, *, limit: int = 10) -> MatchResult:
    """Score a record against the registry and say what would happen. Writes nothing."""
    normalised = prepare(registry, record)
    scorer = registry.scorer  # read before the unit of work: it may load the model

    def read() -> tuple[LinkedRecord | None, list[Candidate]]:
        # Read only: a merge committed between the look-up and the load is detected by the
        # load (services/retry.py reads again), not prevented by a transaction.
        with registry.database.uow(read_only=True) as uow:
            ws = registry.working_set(uow.registry, scorer)
            ws.load([normalised], lock=False)
            return ws.records.get((record.source, record.source_id)), ws.candidates(normalised)

    # A merge committed while the candidates were read makes them read again.
    known, candidates = run_with_retries(read)
    decision = decide(candidates, registry.thresholds)
    ranked = sorted(candidates, key=lambda c: c.score.confidence, reverse=True)[:limit]
    scored = tuple(
        ScoredCandidate(
            person_id=c.person_id,
            score=round(c.score.confidence, 6),
            explanation={
                "model": c.score.model,
                "exact_keys": list(c.exact_keys),
                "name_similarity": round(c.score.name_similarity, 6),
                "comparisons": [x.as_json() for x in c.score.comparisons],
            },
        )
        for c in ranked
    )
    if known is not None:
        return MatchResult(
            "updated",
            known.link_score,
            known.person_id,
            ("source_id",),
            scored,
            {"rule": "known_record"},
            normalised.warnings,
        )
    return MatchResult(
        decision=_DECISION[decision.outcome],
        score=round(decision.confidence, 6),
        person_id=decision.person_id,
        matched_on=decision.matched_on,
        candidates=scored,
        explanation=decision.explanation(),
        warnings=normalised.warnings,
    )
