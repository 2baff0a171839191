"""Stewards' decisions: resolve a review item (merge or distinct), merge two persons.

Each decision is one unit of work through the same working set as ingest: records move,
the golden record is rebuilt, audit and outbox events are written in the same
transaction. A decision made on a state the steward was not shown (a person changed, the
item resolved by someone else) is refused with the current state, never applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Literal
from uuid import UUID

from mdm.flow.survivorship import Choice
from mdm.model.errors import (
    MergeRefused,
    PersonNotFound,
    RecordNotFound,
    ReviewNotFound,
    SplitRefused,
    StaleDecision,
)
from mdm.model.person import PersonState, ReviewItem
from mdm.services.context import Registry
from mdm.services.persons import PersonView, view_of
from mdm.services.retry import run_with_retries
from mdm.services.working_set import WorkingSet
from mdm.store.registry import RegistryRepository

# merge | distinct for a match item; keep (the golden value) | replace (with the other
# value) for a conflict item.
Decision = Literal["merge", "distinct", "keep", "replace"]
MATCH_DECISIONS = ("merge", "distinct")
CONFLICT_DECISIONS = ("keep", "replace")


@dataclass(frozen=True, slots=True)
class ReviewDetail:
    """A review item with both persons as they are now, for a side-by-side comparison."""

    item: ReviewItem
    person_a: PersonView
    person_b: PersonView


def review_detail(registry: Registry, review_id: UUID) -> ReviewDetail:
    with registry.database.uow() as uow:
        item = uow.registry.get_review(review_id)
        if item is None:
            raise ReviewNotFound(review_id)
        return ReviewDetail(item, view_of(uow, item.person_a), view_of(uow, item.person_b))


@dataclass(frozen=True, slots=True)
class Resolution:
    item: ReviewItem
    person_id: UUID  # the surviving person after a merge; person_b's after distinct


def resolve_review(
    registry: Registry,
    review_id: UUID,
    decision: Decision,
    *,
    actor: str,
    note: str | None = None,
    versions: tuple[int, int] | None = None,
    correlation_id: str | None = None,
) -> Resolution:
    """Merge the item's two persons, or record that they are distinct; for a conflict item,
    keep the golden value or replace it with the other one (the choice holds until the
    record it came from changes that value).

    `versions` are the versions of the two persons the steward was shown (as
    `review_detail` returns them); if either changed since, `StaleDecision`.
    """
    work = partial(_resolve, registry, review_id, decision, actor, note, versions, correlation_id)
    return run_with_retries(work)


def _resolve(
    registry: Registry,
    review_id: UUID,
    decision: Decision,
    actor: str,
    note: str | None,
    versions: tuple[int, int] | None,
    correlation_id: str | None,
) -> Resolution:
    scorer = registry.scorer
    with registry.database.uow() as uow:
        repo = uow.registry
        item = repo.get_review(review_id, lock=True)
        if item is None:
            raise ReviewNotFound(review_id)
        if item.status != "open":
            raise StaleDecision(
                f"The review item was already resolved ({item.status})", _current(item)
            )
        allowed = CONFLICT_DECISIONS if item.kind == "conflict" else MATCH_DECISIONS
        if decision not in allowed:
            raise MergeRefused(f"A {item.kind} item takes one of: {', '.join(allowed)}", "decision")
        ws = registry.working_set(repo, scorer)
        ws.load_persons([item.person_a, item.person_b])
        a, b = _live(ws, item.person_a), _live(ws, item.person_b)
        if item.kind == "conflict":
            return _resolve_conflict(ws, repo, item, decision, a, actor, note, correlation_id,
                                     uow.commit)  # fmt: skip
        if versions is not None and versions != (a.version, b.version):
            raise StaleDecision(
                "A person of this review item changed since it was shown",
                _current(item, a, b),
            )
        resolved = replace(
            item,
            status="merged" if decision == "merge" else "distinct",
            decision=decision,
            resolved_at=ws.now,
            resolved_by=actor,
            note=note,
        )
        # Written first: the merge below closes the other open items of the pair.
        repo.resolve_review(resolved)
        if decision == "distinct":
            repo.add_not_a_match(a.id, b.id, actor=actor, reason="review", at=ws.now,
                                 review_id=item.id)  # fmt: skip
        person_id = b.id
        if decision == "merge" and a.id != b.id:
            survivor, gone = sorted((a, b), key=ws.seniority)
            cause = {"rule": "steward", "review_id": str(item.id)}
            ws.merge(survivor, gone, actor=actor, correlation_id=correlation_id, cause=cause)
            person_id = survivor.id
        elif decision == "merge":
            person_id = a.id
        ws.review_event(actor, correlation_id, resolved, action="review.resolved")
        ws.flush(actor=actor, correlation_id=correlation_id)
        uow.commit()
        return Resolution(resolved, person_id)


def _resolve_conflict(
    ws: WorkingSet,
    repo: RegistryRepository,
    item: ReviewItem,
    decision: Decision,
    person: PersonState,
    actor: str,
    note: str | None,
    correlation_id: str | None,
    commit: Callable[[], None],
) -> Resolution:
    field = item.explanation["field"]
    side = item.explanation["kept" if decision == "keep" else "other"]
    backed = any(
        (r.source, r.source_id) == (side["source"], side["source_id"])
        and r.attributes.get(field) == side["value"]
        for r in person.records
    )
    if not backed:
        raise StaleDecision(
            f"The record {side['source']}/{side['source_id']} no longer holds this {field}",
            _current(item, person, person),
        )
    ws.choose(person, field, Choice(side["source"], side["source_id"], side["value"]))
    resolved = replace(
        item,
        status="resolved",
        decision=decision,
        resolved_at=ws.now,
        resolved_by=actor,
        note=note,
    )
    repo.resolve_review(resolved)
    ws.review_event(actor, correlation_id, resolved, action="review.resolved")
    ws.flush(actor=actor, correlation_id=correlation_id)
    commit()
    return Resolution(resolved, person.id)


def merge_persons(
    registry: Registry,
    person_id: UUID,
    other_id: UUID,
    *,
    actor: str,
    note: str | None = None,
    correlation_id: str | None = None,
) -> UUID:
    """Merge `other_id` into `person_id`, which keeps its id; the other redirects to it.

    A steward's merge is not held back by conflicting attributes: the steward has seen
    them. Returns the surviving id (the person `person_id` resolves to).
    """
    work = partial(_merge, registry, person_id, other_id, actor, note, correlation_id)
    return run_with_retries(work)


def _merge(
    registry: Registry,
    person_id: UUID,
    other_id: UUID,
    actor: str,
    note: str | None,
    correlation_id: str | None,
) -> UUID:
    scorer = registry.scorer
    with registry.database.uow() as uow:
        ws = registry.working_set(uow.registry, scorer)
        ws.load_persons([person_id, other_id])
        survivor = _live(ws, person_id)
        try:
            other = _live(ws, other_id)
        except PersonNotFound as exc:
            raise MergeRefused(str(exc), "other_id") from None
        if survivor.id == other.id:
            if person_id == other_id:
                raise MergeRefused("A person cannot be merged with itself", "other_id")
            return survivor.id  # merged already: the same decision twice is no change
        cause: dict[str, Any] = {"rule": "steward"}
        if note:
            cause["note"] = note
        ws.merge(survivor, other, actor=actor, correlation_id=correlation_id, cause=cause)
        ws.flush(actor=actor, correlation_id=correlation_id)
        uow.commit()
        return survivor.id


@dataclass(frozen=True, slots=True)
class Split:
    person_id: UUID  # where the record is now
    from_person_id: UUID


def split_record(
    registry: Registry,
    source: str,
    source_id: str,
    *,
    actor: str,
    into: UUID | None = None,
    note: str | None = None,
    correlation_id: str | None = None,
) -> Split:
    """Move one record out of its person: to a new person, or to the person `into`.

    Both golden records are rebuilt, the record's link becomes manual, and the two persons
    are recorded as not a match, so no automatic decision puts the record back.
    """
    work = partial(_split, registry, source, source_id, actor, into, note, correlation_id)
    return run_with_retries(work)


def _split(
    registry: Registry,
    source: str,
    source_id: str,
    actor: str,
    into: UUID | None,
    note: str | None,
    correlation_id: str | None,
) -> Split:
    scorer = registry.scorer
    with registry.database.uow() as uow:
        repo = uow.registry
        known, _, _ = repo.lookup([(source, source_id)], (), 1)
        if (source, source_id) not in known:
            raise RecordNotFound(source, source_id)
        ws = registry.working_set(repo, scorer)
        ws.load_persons([known[(source, source_id)], *([into] if into else [])])
        record = ws.records[(source, source_id)]
        person = _live(ws, record.person_id)
        found = ws.live(into) if into is not None else None
        if into is not None and found is None:
            raise SplitRefused(f"No live person has the id {into}", "person_id")
        if found is not None and found.id == person.id:
            raise SplitRefused("The record is already linked to that person", "person_id")
        if len(person.records) == 1:
            raise SplitRefused(
                "The record is the only one of its person; merge the persons instead",
                "source_id",
            )
        target = found or ws.new_person()
        ws.relink(record, target, rule="split")
        after: dict[str, Any] = {
            "source": source,
            "source_id": source_id,
            "new_person_id": str(target.id),
        }
        if note:
            after["note"] = note
        ws.person_event(actor, correlation_id, "person.split", person.id, after)
        ws.flush(actor=actor, correlation_id=correlation_id)
        # After the flush: the person split off may be new.
        repo.add_not_a_match(person.id, target.id, actor=actor, reason="split", at=ws.now)
        uow.commit()
        return Split(target.id, person.id)


def _live(ws: WorkingSet, person_id: UUID) -> PersonState:
    person = ws.live(person_id)
    if person is None:
        raise PersonNotFound(person_id)
    return person


def _current(
    item: ReviewItem, a: PersonState | None = None, b: PersonState | None = None
) -> dict[str, object]:
    current: dict[str, object] = {
        "status": item.status,
        "decision": item.decision,
        "resolved_by": item.resolved_by,
        "resolved_at": item.resolved_at.isoformat() if item.resolved_at else None,
    }
    if a is not None and b is not None:
        current["person_a"] = {"id": str(a.id), "version": a.version}
        current["person_b"] = {"id": str(b.id), "version": b.version}
    return current
