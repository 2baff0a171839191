"""Merge groups of persons, many groups per transaction: the nightly dedupe's write stage.

The merge is a steward's or a bridging record's (WorkingSet.merge, then its flush): the
person known longest survives; the others' records move to it and their ids redirect to
it for good; their keys and open review items follow; its golden record is rebuilt from
all the records, its own stewardship choices first and the others' for the fields it has
none; a value the rules will not apply silently opens a conflict review item, once; every
change is audited and published. Only the cost differs: one read and one pipelined write
per chunk of groups, and only what a merge reads (no lineage, no candidate bookkeeping).
A test holds both paths to the same registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from mdm.flow.block import Key, blocking_keys
from mdm.flow.survivorship import Choice, FieldRule, RecordView, build_golden
from mdm.model.ids import new_id
from mdm.model.person import (
    AuditEvent,
    OutboxEvent,
    PersonState,
    PersonStatus,
    RecordValues,
    ReviewItem,
)
from mdm.services.working_set import published_changes
from mdm.store.registry import RegistryRepository


class _Unit:
    """What one chunk's merges write."""

    def __init__(self, now: datetime, actor: str) -> None:
        self.now, self.actor = now, actor
        self.audit: list[AuditEvent] = []
        self.outbox: list[OutboxEvent] = []
        self.reviews: list[ReviewItem] = []
        self.moved: dict[UUID, UUID] = {}  # record -> its new person
        self.merged: dict[UUID, UUID] = {}  # merged-away person -> survivor
        self.absorbed: dict[UUID, list[UUID]] = {}  # survivor -> persons merged into it
        self.keys_added: set[tuple[str, str, UUID]] = set()
        self.keys_removed: set[tuple[str, str, UUID]] = set()
        self.stewardship: set[UUID] = set()
        self.updated: list[PersonState] = []

    def touch(self, person_id: UUID, before: set[Key], after: set[Key]) -> None:
        """A person's keys went from `before` to `after` (WorkingSet._touch)."""
        for key in after - before:
            row = (*key, person_id)
            if row in self.keys_removed:
                self.keys_removed.discard(row)
            else:
                self.keys_added.add(row)
        for key in before - after:
            row = (*key, person_id)
            if row in self.keys_added:
                self.keys_added.discard(row)
            else:
                self.keys_removed.add(row)

    def event(
        self,
        action: str,
        entity_type: str,
        entity_id: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        person_id: UUID | None,
        payload: dict[str, Any],
    ) -> None:
        self.audit.append(
            AuditEvent(new_id(), self.now, self.actor, action, entity_type, entity_id, None,
                       before, after)
        )  # fmt: skip
        self.outbox.append(OutboxEvent(new_id(), action, person_id, payload, self.now))

    def person_event(
        self,
        action: str,
        person_id: UUID,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        published: dict[str, Any] = {"person_id": str(person_id), **(payload or {})}
        if after is not None and before is not None:
            published["changed_fields"] = sorted(after)
        self.event(action, "person", str(person_id), before, after, person_id, published)


def _keys(records: Sequence[RecordValues]) -> set[Key]:
    keys: set[Key] = set()
    for r in records:
        keys |= blocking_keys(r.features)
    return keys


def merge_groups(
    repo: RegistryRepository,
    groups: Sequence[Sequence[UUID]],
    *,
    now: datetime,
    actor: str,
    cause: Mapping[str, Any],
    kinds: Mapping[str, str],
    rules: Mapping[str, FieldRule],
) -> int:
    """Merge each group into its person known longest, within the caller's transaction;
    the number of persons merged away. A group whose persons became one meanwhile (online,
    or by a steward) merges what is left of it."""
    persons, records = repo.load_for_merge({pid for group in groups for pid in group})
    unit = _Unit(now, actor)
    survivors: dict[UUID, tuple[dict[str, Any], list[RecordValues]]] = {}
    for group in groups:
        live: dict[UUID, PersonState] = {}
        for pid in group:
            person = _live(persons, pid)
            if person is not None:
                live[person.id] = person
        if len(live) < 2:
            continue
        ordered = sorted(live.values(), key=lambda p: (p.created_at, p.id))
        survivor = ordered[0]
        owned = records.setdefault(survivor.id, [])
        if survivor.id not in survivors:
            survivors[survivor.id] = (survivor.golden, list(owned))
        for other in ordered[1:]:
            _merge(unit, survivor, other, owned, records.pop(other.id, []),
                   {**cause, "persons": len(ordered)})  # fmt: skip
    for pid in sorted({*survivors, *unit.merged}):
        person = persons[pid]
        if person.status == PersonStatus.MERGED:
            person.golden, person.lineage = {}, {}
            person.version += 1
            person.updated_at = now
            unit.updated.append(person)
            continue
        before, _ = survivors[pid]
        _rebuild(unit, person, before, records[pid], kinds, rules)
    _write(repo, unit, persons)
    return len(unit.merged)


def _live(persons: Mapping[UUID, PersonState], person_id: UUID) -> PersonState | None:
    """The live person an id resolves to, following merges (WorkingSet.live)."""
    person = persons.get(person_id)
    seen = set()
    while person is not None and person.status == PersonStatus.MERGED:
        if person.id in seen or person.merged_into is None:
            return None
        seen.add(person.id)
        person = persons.get(person.merged_into)
    if person is None or person.status != PersonStatus.ACTIVE:
        return None
    return person


def _merge(
    unit: _Unit,
    survivor: PersonState,
    other: PersonState,
    owned: list[RecordValues],
    moved: list[RecordValues],
    cause: dict[str, Any],
) -> None:
    before_survivor = _keys(owned)
    for record in moved:
        unit.moved[record.id] = survivor.id
    owned.extend(moved)
    unit.touch(survivor.id, before_survivor, _keys(owned))
    unit.touch(other.id, _keys(moved), set())
    if other.choices or other.raised:
        # The survivor's own decisions stand; the other's fill the fields it has none for.
        survivor.choices = {**other.choices, **survivor.choices}
        survivor.raised |= other.raised
        unit.stewardship.add(survivor.id)
    other.status = PersonStatus.MERGED
    other.merged_into = survivor.id
    # Those merged into `other` earlier in the unit now redirect to the survivor.
    absorbed = unit.absorbed.setdefault(survivor.id, [])
    for merged_away in unit.absorbed.pop(other.id, ()):
        unit.merged[merged_away] = survivor.id
        absorbed.append(merged_away)
    unit.merged[other.id] = survivor.id
    absorbed.append(other.id)
    after = {
        "into": str(survivor.id),
        "records": [f"{r.source}/{r.source_id}" for r in moved],
        **cause,
    }
    unit.audit.append(
        AuditEvent(new_id(), unit.now, unit.actor, "person.merged", "person", str(other.id),
                   None, None, after)
    )  # fmt: skip
    payload = {"person_id": str(survivor.id), "merged_id": str(other.id), **cause}
    unit.outbox.append(OutboxEvent(new_id(), "person.merged", survivor.id, payload, unit.now))


def _rebuild(
    unit: _Unit,
    person: PersonState,
    before: dict[str, Any],
    records: Sequence[RecordValues],
    kinds: Mapping[str, str],
    rules: Mapping[str, FieldRule],
) -> None:
    """The survivor's golden record from all its records, and the events it calls for
    (WorkingSet.flush of a person that was there before the unit)."""
    result = build_golden(
        (RecordView(r.source, r.source_id, r.version, r.attributes, r.updated_at,
                    kinds.get(r.source)) for r in records),
        rules,
        {name: Choice.from_json(raw) for name, raw in person.choices.items()},
    )  # fmt: skip
    for conflict in result.conflicts:
        if conflict.key in person.raised:
            continue
        person.raised.add(conflict.key)
        unit.stewardship.add(person.id)
        item = ReviewItem(
            id=new_id(), kind="conflict", status="open", person_a=person.id,
            person_b=person.id, score=0.0,
            explanation={"rule": "conflict", "key": conflict.key, "field": conflict.field,
                         "kept": conflict.kept.described(),
                         "other": conflict.other.described()},
            created_at=unit.now, source=conflict.other.source,
        )  # fmt: skip
        unit.reviews.append(item)
        opened = {"review_id": str(item.id), "person_a": str(item.person_a),
                  "person_b": str(item.person_b), "score": item.score}  # fmt: skip
        unit.event("review.opened", "review", str(item.id), None, opened, item.person_b, opened)
    golden, lineage = result.attributes, result.lineage
    person.golden, person.lineage = golden, lineage
    person.version += 1
    person.updated_at = unit.now
    unit.updated.append(person)
    changed = sorted(k for k in golden.keys() | before.keys() if golden.get(k) != before.get(k))
    if changed:
        unit.person_event(
            "person.updated", person.id,
            {k: before.get(k) for k in changed}, {k: golden.get(k) for k in changed},
            published_changes(golden, lineage, changed),
        )  # fmt: skip
    if golden.get("employee_id") and golden.get("employee_id") != before.get("employee_id"):
        # The HRIS issued the id: the ATS and the CRM wait for it.
        unit.person_event("person.employee_id_assigned", person.id, None, None,
                          published_changes(golden, lineage, ["employee_id"]))  # fmt: skip
    if golden.get("status") == "hired" and before.get("status") != "hired":
        unit.person_event("person.hired", person.id, None, None)


def _write(repo: RegistryRepository, unit: _Unit, persons: Mapping[UUID, PersonState]) -> None:
    """In WorkingSet.flush's order: the audit chain last, its lock held to the commit."""
    repo.move_records(unit.moved)
    repo.remove_keys(unit.keys_removed)
    with repo.pipelined():
        repo.update_persons(unit.updated)
        repo.add_keys(unit.keys_added)
        repo.insert_reviews(unit.reviews)
        repo.insert_outbox(unit.outbox)
    if unit.merged:
        repo.repoint_reviews(unit.merged, actor=unit.actor, at=unit.now)
        repo.carry_not_a_match(unit.merged, actor=unit.actor, at=unit.now)
    repo.set_stewardship_of(
        {pid: (persons[pid].choices, persons[pid].raised) for pid in unit.stewardship}
    )
    repo.insert_audit(unit.audit)
