"""Ingest: resolve source records to persons (DESIGN section 2 and 3).

normalise -> lock exact keys -> load the working set -> per record: known record, exact
keys, blocking candidates -> score -> decide -> link / create / review -> golden record,
audit and outbox, all in one transaction per batch.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Any
from uuid import UUID

from mdm.flow.decide import Candidate, Decision, Outcome, Rule, bridged, decide, merge_conflicts
from mdm.model.errors import BatchTooLarge, ErasedRecord, FieldIssue, InvalidRecord, MdmError
from mdm.model.ids import new_id
from mdm.model.person import (
    LinkedRecord,
    LinkSource,
    LinkState,
    PersonState,
    PersonStatus,
    ReviewItem,
)
from mdm.model.record import IncomingRecord, NormalisedRecord
from mdm.model.rejection import Rejection
from mdm.services.context import Registry
from mdm.services.retry import run_with_retries
from mdm.services.sources import prepare, sealed_locations
from mdm.services.working_set import WorkingSet


class DecisionName(StrEnum):
    """What an ingest did with a record, as the API reports it."""

    CREATED = "created"
    LINKED = "linked"
    UPDATED = "updated"
    REVIEW = "review"


@dataclass(frozen=True, slots=True)
class IngestResult:
    source: str
    source_id: str
    person_id: UUID
    decision: str
    score: float
    matched_on: tuple[str, ...]
    created: bool  # a person or a source record was created
    review_ids: tuple[UUID, ...] = ()
    merged_ids: tuple[UUID, ...] = ()  # persons this record showed to be the same human
    warnings: tuple[FieldIssue, ...] = ()
    explanation: dict[str, Any] = field(default_factory=dict)

    @property
    def review_id(self) -> UUID | None:
        return self.review_ids[0] if self.review_ids else None


@dataclass(frozen=True, slots=True)
class IngestFailure:
    index: int
    error: MdmError


def ingest_one(
    registry: Registry, record: IncomingRecord, *, actor: str, correlation_id: str | None = None
) -> IngestResult:
    """Ingest one record; raise `InvalidRecord` if it cannot be accepted."""
    (outcome,) = ingest_many(registry, [record], actor=actor, correlation_id=correlation_id)
    if isinstance(outcome, IngestFailure):
        raise outcome.error
    return outcome


def ingest_many(
    registry: Registry,
    records: Sequence[IncomingRecord],
    *,
    actor: str,
    correlation_id: str | None = None,
    replay_of: UUID | None = None,
) -> list[IngestResult | IngestFailure]:
    """Ingest records in order; a bad record fails alone and is kept in the rejection
    store. `replay_of` names the rejection a single record is replayed from: its outcome
    is written on that rejection, in the same transaction, instead of a new one.

    Each run of up to `UNIT_SIZE` records is one transaction: long enough to amortise the
    round trips, short enough that concurrent batches touching the same persons do not
    queue behind each other's locks for seconds. A record whose exact key (or the record
    itself) a concurrent transaction has locked is left for the next unit, with every later
    record sharing a key with it, instead of holding up the whole unit: records sharing a
    key keep their order, and the results come back in the order posted. Re-posting a
    batch is safe: records already stored are updated in place.
    """
    limit = registry.settings.max_batch_records
    if len(records) > limit:
        raise BatchTooLarge(len(records), limit)
    outcomes: list[IngestResult | IngestFailure | None] = [None] * len(records)
    valid: list[tuple[int, NormalisedRecord]] = []
    for i, incoming in enumerate(records):
        try:
            prepared = prepare(registry, incoming)
            registry.mapping_stats.count(incoming.source, prepared.mapping)
            valid.append((i, prepared))
        except InvalidRecord as exc:
            outcomes[i] = IngestFailure(i, exc)
            registry.mapping_stats.count_rejected(incoming.source)
    # The records refused by validation are kept with the first unit of work.
    refused = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, IngestFailure)]
    pending = deque(valid)
    waited: set[int] = set()  # records already left for a later unit once
    while True:
        unit = [pending.popleft() for _ in range(min(UNIT_SIZE, len(pending)))]
        # A unit tries its locks first when some of its records could go ahead without
        # the others; a unit holding a record that was left once waits for every lock.
        defer = len(unit) > 1 and waited.isdisjoint(i for i, _ in unit)
        done, later = run_with_retries(
            partial(
                _ingest_unit, registry, records, unit, refused, actor, correlation_id, replay_of,
                defer,
            )
        )  # fmt: skip
        refused = []
        for i, outcome in done:
            outcomes[i] = outcome
        pending.extendleft(reversed(later))
        waited.update(i for i, _ in later)
        if not pending:
            return [o for o in outcomes if o is not None]


UNIT_SIZE = 100


def _ingest_unit(
    registry: Registry,
    records: Sequence[IncomingRecord],
    unit: list[tuple[int, NormalisedRecord]],
    refused: list[tuple[int, IngestFailure]],
    actor: str,
    correlation_id: str | None,
    replay_of: UUID | None,
    defer: bool = False,
) -> tuple[list[tuple[int, IngestResult | IngestFailure]], list[tuple[int, NormalisedRecord]]]:
    """One transaction: the unit's outcomes, and (with `defer`) the records left for a later
    unit because a concurrent unit holds one of their locks."""
    scorer = registry.scorer  # read before the unit of work: it may load the model
    with registry.database.uow() as uow:
        now = datetime.now(UTC)
        ws = registry.working_set(uow.registry, scorer, now=now)
        later: list[tuple[int, NormalisedRecord]] = []
        if defer:
            # Two batches carrying records of the same human would otherwise take turns
            # for whole units; the other records of the unit need not wait.
            left = ws.contended([n for _, n in unit])
            if left:
                later = [entry for k, entry in enumerate(unit) if k in left]
                unit = [entry for k, entry in enumerate(unit) if k not in left]
        ws.load([n for _, n in unit])
        done: list[tuple[int, IngestResult | IngestFailure]] = []
        for i, n in unit:
            try:
                done.append((i, _resolve(registry, ws, n, actor, correlation_id)))
            except (InvalidRecord, ErasedRecord) as exc:
                done.append((i, IngestFailure(i, exc)))
        ws.flush(actor=actor, correlation_id=correlation_id)
        for i, outcome in [*done, *refused]:
            if replay_of is not None:
                if isinstance(outcome, IngestFailure):
                    uow.rejections.record_failure(
                        replay_of, errors=_error_list(outcome.error), at=now
                    )
                else:
                    uow.rejections.mark_replayed(replay_of, person_id=outcome.person_id, at=now)
            elif isinstance(outcome, IngestFailure) and not isinstance(outcome.error, ErasedRecord):
                # A re-posted record of an erased person is refused, and not kept either.
                rejection_id = new_id()
                if isinstance(outcome.error, InvalidRecord):
                    outcome.error.rejection_id = rejection_id
                uow.rejections.insert(
                    Rejection(
                        id=rejection_id,
                        source=records[i].source,
                        source_id=records[i].source_id,
                        raw=envelope(
                            records[i],
                            sealed_locations(registry, records[i].source, records[i].data),
                        ),
                        errors=_error_list(outcome.error),
                        correlation_id=correlation_id,
                        created_at=now,
                    )
                )
        uow.commit()
        return done, later


def _error_list(error: MdmError) -> list[dict[str, Any]]:
    return [e.as_dict() for e in getattr(error, "errors", [])]


def envelope(record: IncomingRecord, sealed: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record as it was posted, ready to be posted again; `sealed` names the locations
    of values the store keeps encrypted."""
    out: dict[str, Any] = {
        "source": record.source,
        "source_id": record.source_id,
        "data": dict(record.data),
    }
    if sealed:
        out["sealed"] = list(sealed)
    if record.updated_at is not None:
        out["updated_at"] = record.updated_at.isoformat()
    if record.person_id is not None:
        out["person_id"] = str(record.person_id)
    return out


def _resolve(
    registry: Registry,
    ws: WorkingSet,
    record: NormalisedRecord,
    actor: str,
    correlation_id: str | None,
) -> IngestResult:
    known = ws.records.get((record.source, record.source_id))
    if known is not None:
        owner = ws.persons.get(known.person_id)
        if owner is not None and owner.status == PersonStatus.ERASED:
            raise ErasedRecord(record.source, record.source_id, owner.id)
        return _update_known(ws, record, known, actor, correlation_id)

    candidates = ws.candidates(record)
    decision = decide(candidates, registry.thresholds)
    explanation = decision.explanation()
    linked_record = _new_record(ws, record, decision, explanation)

    merged: list[UUID] = []
    if decision.outcome == Outcome.LINK:
        assert decision.person_id is not None
        person = ws.persons[decision.person_id]
        linked_record.person_id = person.id
        ws.add_record(person, linked_record)
        result_decision = DecisionName.LINKED
        person = _merge_bridged(
            registry, ws, person, candidates, linked_record, merged, actor, correlation_id
        )
    else:
        person = ws.new_person()
        linked_record.person_id = person.id
        ws.add_record(person, linked_record)
        result_decision = DecisionName.CREATED

    review_ids: list[UUID] = []
    if decision.outcome == Outcome.REVIEW:
        result_decision = DecisionName.REVIEW
        for other in decision.review_with:
            item = ReviewItem(
                id=new_id(),
                kind="match",
                status="open",
                person_a=other,
                person_b=person.id,
                score=_score_with(decision, other),
                explanation=explanation,
                created_at=ws.now,
                source=record.source,
            )
            ws.reviews.append(item)
            ws.review_event(actor, correlation_id, item)
            review_ids.append(item.id)

    ws.record_event(
        actor,
        correlation_id,
        "record.linked",
        linked_record,
        {
            "decision": result_decision,
            "score": round(decision.confidence, 6),
            "rule": decision.rule.value,
        },
    )
    return IngestResult(
        source=record.source,
        source_id=record.source_id,
        person_id=person.id,
        decision=result_decision,
        score=round(decision.confidence, 6),
        matched_on=decision.matched_on if decision.outcome != Outcome.CREATE else (),
        created=True,
        review_ids=tuple(review_ids),
        merged_ids=tuple(merged),
        warnings=record.warnings,
        explanation=explanation,
    )


def _merge_bridged(
    registry: Registry,
    ws: WorkingSet,
    person: PersonState,
    candidates: list[Candidate],
    linked: LinkedRecord,
    merged: list[UUID],
    actor: str,
    correlation_id: str | None,
) -> PersonState:
    """Merge into `person` every other person the record links to on its own, unless the
    two hold conflicting evidence or a steward said they are distinct. The older person
    survives, so the id other systems have known longest stays. Returns the survivor."""
    for candidate in bridged(candidates, person.id, registry.thresholds):
        other = ws.live(candidate.person_id)
        if other is None or other.id == person.id:
            continue
        conflicts = merge_conflicts(
            [r.features for r in person.records], [r.features for r in other.records], ws.scorer
        )
        if conflicts or ws.is_distinct(person.id, other.id):
            continue
        survivor, gone = sorted((person, other), key=ws.seniority)
        cause = {
            "rule": "bridging_record",
            "record": f"{linked.source}/{linked.source_id}",
            "score": round(candidate.score.confidence, 6),
        }
        ws.merge(survivor, gone, actor=actor, correlation_id=correlation_id, cause=cause)
        merged.append(gone.id)
        person = survivor
    if merged:
        linked.explanation["merged"] = [str(m) for m in merged]
    return person


def _score_with(decision: Decision, person_id: UUID) -> float:
    for c in decision.candidates:
        if c.person_id == person_id:
            return round(c.score.confidence, 6)
    return round(decision.confidence, 6)


def _new_record(
    ws: WorkingSet, record: NormalisedRecord, decision: Decision, explanation: dict[str, Any]
) -> LinkedRecord:
    state = {
        Outcome.LINK: LinkState.MATCH,
        Outcome.REVIEW: LinkState.POSSIBLE_MATCH,
        Outcome.CREATE: LinkState.NO_MATCH,
    }[decision.outcome]
    manual = decision.rule == Rule.PERSON_ID_HINT and decision.outcome == Outcome.LINK
    return LinkedRecord(
        id=new_id(),
        source=record.source,
        source_id=record.source_id,
        person_id=uuid.UUID(int=0),
        attributes=record.attributes,
        features=record.features,
        source_updated_at=record.incoming.updated_at,
        received_at=ws.now,
        version=1,
        link_source=LinkSource.MANUAL if manual else LinkSource.AUTO,
        link_state=state,
        link_score=round(decision.confidence, 6),
        link_rule=decision.rule.value,
        linked_at=ws.now,
        explanation=explanation,
        raw=_raw(record),
    )


def _raw(record: NormalisedRecord) -> dict[str, Any]:
    """The payload exactly as posted under `data`, with the envelope fields sent and what
    the source's profile did to it (`mapping`), so every value can be traced back."""
    incoming = record.incoming
    raw: dict[str, Any] = {"data": dict(incoming.data)}
    if record.mapping:
        raw["mapping"] = record.mapping
    if incoming.updated_at is not None:
        raw["updated_at"] = incoming.updated_at.isoformat()
    if incoming.person_id is not None:
        raw["person_id"] = str(incoming.person_id)
    if record.sealed:
        raw["sealed"] = list(record.sealed)
    return raw


def _update_known(
    ws: WorkingSet,
    record: NormalisedRecord,
    known: LinkedRecord,
    actor: str,
    correlation_id: str | None,
) -> IngestResult:
    person = ws.live(known.person_id)
    assert person is not None, "a live record is linked to a live person"
    warnings = list(record.warnings)
    review_ids: tuple[UUID, ...] = ()
    incoming_at = record.incoming.updated_at
    if (
        incoming_at is not None
        and known.source_updated_at
        and incoming_at < known.source_updated_at
    ):
        warnings.append(
            FieldIssue("updated_at", "older than the stored version of this record; not applied")
        )
    else:
        updated = LinkedRecord(
            id=known.id,
            source=known.source,
            source_id=known.source_id,
            person_id=person.id,
            attributes=record.attributes,
            features=record.features,
            source_updated_at=incoming_at or known.source_updated_at,
            received_at=ws.now,
            version=known.version + 1,
            link_source=known.link_source,
            link_state=known.link_state,
            link_score=known.link_score,
            link_rule=known.link_rule,
            linked_at=known.linked_at,
            explanation=known.explanation,
            raw=_raw(record),
        )
        ws.replace_record(person, updated)
        if updated.features != known.features:
            reopened = ws.reopen_distinct(person, updated, actor, correlation_id)
            review_ids = tuple(item.id for item in reopened)
        ws.record_event(
            actor,
            correlation_id,
            "record.updated",
            updated,
            {
                "decision": DecisionName.UPDATED,
                "version": updated.version,
            },
        )
    return IngestResult(
        source=record.source,
        source_id=record.source_id,
        person_id=person.id,
        decision=DecisionName.UPDATED,
        score=known.link_score,
        matched_on=("source_id",),
        created=False,
        review_ids=review_ids,
        warnings=tuple(warnings),
        explanation={"rule": Rule.KNOWN_RECORD.value},
    )


def load_unmatched(
    registry: Registry, records: Sequence[IncomingRecord], *, actor: str
) -> list[UUID]:
    """Each record its own person, without matching: a legacy system's records taken in
    as they are, for the nightly dedupe to resolve. One transaction; the records must be
    new to the registry; a bad record raises `InvalidRecord` before anything is written.
    Returns the persons created."""
    prepared = [prepare(registry, r) for r in records]
    scorer = registry.scorer  # read before the unit of work: it may load the model

    def unit() -> list[UUID]:
        with registry.database.uow() as uow:
            ws = registry.working_set(uow.registry, scorer)
            created = []
            for record in prepared:
                explanation = {"rule": "loaded_unmatched"}
                decision = Decision(Outcome.CREATE, Rule.NO_CANDIDATE, 0.0)
                linked = _new_record(ws, record, decision, explanation)
                person = ws.new_person()
                linked.person_id = person.id
                ws.add_record(person, linked)
                ws.record_event(actor, None, "record.linked", linked,
                                {"decision": DecisionName.CREATED, **explanation})  # fmt: skip
                created.append(person.id)
            ws.flush(actor=actor, correlation_id=None)
            uow.commit()
            return created

    return run_with_retries(unit)
