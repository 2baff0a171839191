"""The working set of one unit of work: the persons a batch of records can touch.

Loaded once per batch (locks, known records, keys, persons with their records), changed
in memory record by record so that each record sees the ones before it, then written in
bulk. A single record is a batch of one: the online and bulk paths are the same code.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from mdm.flow.block import Key, blocking_keys, candidate_keys, exact_keys, without_generic
from mdm.flow.decide import Candidate
from mdm.flow.score import Score, Scorer
from mdm.flow.survivorship import (
    DEFAULT_RULES,
    Choice,
    Conflict,
    FieldRule,
    RecordView,
    build_golden,
)
from mdm.model.errors import ConcurrentUpdate, FieldIssue, InvalidRecord
from mdm.model.ids import new_id
from mdm.model.person import (
    MERGED_NOTE,
    AuditEvent,
    LinkedRecord,
    LinkSource,
    LinkState,
    OutboxEvent,
    PersonState,
    PersonStatus,
    ReviewItem,
)
from mdm.model.record import MatchFeatures, NormalisedRecord
from mdm.store.registry import RegistryRepository

# Scoring is cheap but not free: past this many candidates the ones sharing most keys win.
MAX_CANDIDATES = 32
# More persons than this sharing nothing but a name key are namesakes, not candidates.
NAME_CROWD = 12


class GenericKeys:
    """Keys known to be generic: shared by more persons than a block may hold.

    A placeholder such as test@test.com turns up in many batches; locking it would make
    every concurrent batch wait for the others, although a generic key never links a
    record. The set is a hint, bounded in size, checked against the database by every
    look-up (a key can stop being generic when persons are merged or erased).
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._keys: set[Key] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def learn(self, generic: set[Key], checked: set[Key]) -> None:
        """Keys found generic, and keys checked but no longer generic."""
        self._keys -= checked - generic
        if len(self._keys) + len(generic) > self.limit:
            self._keys.clear()
        self._keys |= generic


def record_lock(source: str, source_id: str) -> str:
    return f"record:{source}:{source_id}"


def _lock_name(key: Key) -> str:
    return f"{key[0]}:{key[1]}"


DEFAULT_KINDS: Mapping[str, str] = {"crm": "crm", "ats": "ats", "hris": "hris"}


def _choose(
    shared: Mapping[UUID, set[str]], f: MatchFeatures
) -> tuple[set[UUID], dict[UUID, list[str]]]:
    """The persons a record is scored against, out of those sharing keys with it (and the
    kinds of key each shares): every one sharing an exact key, then the ones sharing most
    kinds of key, up to MAX_CANDIDATES. Also, for each exact match, its exact kinds."""
    record_exact = {kind for kind, _ in exact_keys(f)}
    exact = {
        pid: sorted(kinds & record_exact) for pid, kinds in shared.items() if kinds & record_exact
    }
    if len(shared) <= MAX_CANDIDATES:  # the usual case: no ranking to do
        return set(shared), exact
    ranked = sorted(shared, key=lambda pid: (-len(shared[pid]), pid))
    return set(exact) | set(ranked[:MAX_CANDIDATES]), exact


class WorkingSet:
    def __init__(
        self,
        repo: RegistryRepository,
        scorer: Scorer,
        *,
        now: datetime,
        block_cap: int,
        generic_keys: GenericKeys | None = None,
        kinds: Mapping[str, str] | None = None,
        rules: Mapping[str, FieldRule] = DEFAULT_RULES,
    ) -> None:
        self.repo = repo
        # Source key -> kind (crm, ats, hris): the kind decides who owns a golden field.
        self.kinds = kinds if kinds is not None else DEFAULT_KINDS
        self.rules = rules
        self.scorer = scorer
        self.now = now
        self.block_cap = block_cap
        self.known_generic = generic_keys if generic_keys is not None else GenericKeys()
        self.persons: dict[UUID, PersonState] = {}
        self.records: dict[tuple[str, str], LinkedRecord] = {}
        self.index: dict[Key, set[UUID]] = defaultdict(set)
        self.generic: set[Key] = set()
        self._golden_before: dict[UUID, dict[str, Any]] = {}
        # Persons and records loaded as candidates, without golden record and attributes.
        self._partial: set[UUID] = set()
        self._partial_records: set[UUID] = set()
        self._new_persons: dict[UUID, PersonState] = {}
        self._touched: set[UUID] = set()
        self._new_records: dict[UUID, LinkedRecord] = {}
        self._updated_records: dict[UUID, LinkedRecord] = {}
        self._keys_added: set[tuple[str, str, UUID]] = set()
        self._keys_removed: set[tuple[str, str, UUID]] = set()
        self._moved_records: dict[UUID, UUID] = {}
        self._relinked: dict[UUID, LinkedRecord] = {}
        self._merged: dict[UUID, UUID] = {}
        self.reviews: list[ReviewItem] = []
        self._stewardship_changed: set[UUID] = set()
        self.audit: list[AuditEvent] = []
        self.outbox: list[OutboxEvent] = []

    # -- loading ---------------------------------------------------------------------------
    def load(self, records: Sequence[NormalisedRecord], *, lock: bool = True) -> None:
        """Lock the batch's exact keys, then load everything its records can touch.

        Keys already known to be generic are not locked: they never link a record. Should
        the look-up find one of them no longer generic, it is locked and looked up again
        before anything is decided on it.
        """
        wanted: set[Key] = set()
        for r in records:
            wanted |= candidate_keys(r.features)
        pairs = [(r.source, r.source_id) for r in records]
        exact: set[Key] = set()
        locks: set[str] = set()
        if lock:
            for r in records:
                exact |= exact_keys(r.features)
                locks |= self.lock_names(r)
        skipped = {k for k in exact if k in self.known_generic}
        known, hits, self.generic = self.repo.lookup(pairs, wanted, self.block_cap, lock=locks)
        stale = skipped - self.generic
        if stale:
            for key in stale:
                hits.pop(key, None)
            _, fresh, generic = self.repo.lookup(
                [], stale, self.block_cap, lock={_lock_name(k) for k in stale}
            )
            hits.update(fresh)
            self.generic |= generic
        self.known_generic.learn(self.generic & exact, exact)
        for key, ids in hits.items():
            self.index[key].update(ids)
        person_ids = set(known.values())
        for r in records:
            # Only those a record would score: a name block near the cap holds dozens.
            chosen, _ = _choose(self._blocked(r.features), r.features)
            person_ids |= chosen
        person_ids.update(r.incoming.person_id for r in records if r.incoming.person_id)
        # Most candidates are only scored: what they hold besides match features is read
        # for the few a record changes (`_hydrate`), not for every one of them.
        self.persons = self.repo.load_persons(person_ids, candidates=True)
        self._partial = set(self.persons)
        for person in self.persons.values():
            for linked in person.records:
                self.records[(linked.source, linked.source_id)] = linked
                self._partial_records.add(linked.id)

    def lock_names(self, record: NormalisedRecord) -> set[str]:
        """The locks a unit takes for a record: the record itself and its exact keys, but
        for keys already known to be generic (they never link a record)."""
        names = {record_lock(record.source, record.source_id)}
        names.update(
            _lock_name(k) for k in exact_keys(record.features) if k not in self.known_generic
        )
        return names

    def contended(self, records: Sequence[NormalisedRecord]) -> set[int]:
        """Take the records' locks that are free, without waiting; the positions of the
        records to leave for a later unit: those with a lock a concurrent unit holds, and
        every later one sharing a lock with them, so that records sharing a key keep their
        order."""
        names = [self.lock_names(r) for r in records]
        busy = self.repo.held_elsewhere(set().union(*names))
        later: set[int] = set()
        for position, mine in enumerate(names):
            if not mine.isdisjoint(busy):
                later.add(position)
                busy |= mine
        return later

    def _hydrate(self, persons: Sequence[PersonState]) -> None:
        """Complete persons loaded as candidates before they change: their golden record
        (the events compare against it), stewards' choices, own key, and the attributes of
        their records (the golden record is built from them). A person changed by another
        writer since it was loaded makes the unit of work start again."""
        partial = [p for p in persons if p.id in self._partial]
        if not partial:
            return
        record_ids = [r.id for p in partial for r in p.records if r.id in self._partial_records]
        full, attributes = self.repo.hydrate([p.id for p in partial], record_ids)
        for person in partial:
            loaded = full.get(person.id)
            if loaded is None or loaded.version != person.version:
                raise ConcurrentUpdate("a person changed while it was loaded")
            person.golden = loaded.golden
            person.choices, person.raised = loaded.choices, loaded.raised
            self._golden_before[person.id] = loaded.golden
            self._partial.discard(person.id)
        for person in partial:
            for record in person.records:
                if record.id in self._partial_records:
                    if record.id not in attributes:
                        raise ConcurrentUpdate("a record changed while it was loaded")
                    record.attributes = attributes[record.id]
                    self._partial_records.discard(record.id)

    def load_persons(self, ids: Sequence[UUID]) -> None:
        """Load named persons (and those they were merged into) with their records: what a
        steward's decision touches."""
        self.persons = self.repo.load_persons(ids)
        for person in self.persons.values():
            self._golden_before[person.id] = person.golden
            for linked in person.records:
                self.records[(linked.source, linked.source_id)] = linked

    # -- looking up ------------------------------------------------------------------------
    def live(self, person_id: UUID) -> PersonState | None:
        """The live person an id resolves to, following merges."""
        person = self.persons.get(person_id)
        seen = set()
        while person is not None and person.status == PersonStatus.MERGED:
            if person.id in seen or person.merged_into is None:
                return None
            seen.add(person.id)
            person = self.persons.get(person.merged_into)
        if person is None or person.status != PersonStatus.ACTIVE:
            return None
        return person

    def score_against(self, features: MatchFeatures, person: PersonState) -> Score:
        """The record against a person: the best score over the person's records."""
        best: Score | None = None
        for record in person.records:
            score = self.scorer.score(features, record.features)
            if best is None or score.confidence > best.confidence:
                best = score
        assert best is not None, "a live person has at least one record"
        return best

    def _blocked(self, f: MatchFeatures) -> dict[UUID, set[str]]:
        """Persons sharing a blocking key with the record, and the kinds of key they share.

        Persons that share only a name key are dropped when they are a crowd: a common name
        held by many strangers is no evidence, and such a pair could never merge on its own.
        """
        shared: dict[UUID, set[str]] = defaultdict(set)
        for key in candidate_keys(f):
            if key not in self.generic:
                for pid in self.index.get(key, ()):
                    shared[pid].add(key[0])
        name_only = [pid for pid, kinds in shared.items() if kinds == {"nk"}]
        if len(name_only) > NAME_CROWD:
            for pid in name_only:
                del shared[pid]
        return shared

    def candidates(self, record: NormalisedRecord) -> list[Candidate]:
        """Scored candidates; a `person_id` hint that names no live person is an error."""
        hinted = None
        if record.incoming.person_id is not None:
            hinted = self.live(record.incoming.person_id)
            if hinted is None:
                raise InvalidRecord([FieldIssue("person_id", "no live person has this id")])
        f = record.features
        scored = without_generic(f, self.generic)
        shared: dict[UUID, set[str]] = defaultdict(set)
        for pid, kinds in self._blocked(f).items():
            person = self.live(pid)
            if person is not None:
                shared[person.id] |= kinds
        chosen, exact = _choose(shared, f)
        if hinted is not None:
            exact[hinted.id] = ["person_id", *exact.get(hinted.id, [])]
            chosen.add(hinted.id)
        return [
            Candidate(pid, self.score_against(scored, self.persons[pid]), tuple(exact.get(pid, ())))
            for pid in sorted(chosen)
        ]

    # -- changing --------------------------------------------------------------------------
    def new_person(self) -> PersonState:
        person = PersonState(
            id=new_id(),
            status=PersonStatus.ACTIVE,
            version=1,
            created_at=self.now,
            updated_at=self.now,
            golden={},
            lineage={},
            records=[],
        )
        self.persons[person.id] = person
        self._new_persons[person.id] = person
        self._golden_before[person.id] = {}
        return person

    def add_record(self, person: PersonState, record: LinkedRecord) -> None:
        before = self._keys_of(person)
        person.records.append(record)
        self.records[(record.source, record.source_id)] = record
        self._new_records[record.id] = record
        self._touch(person, before)

    def replace_record(self, person: PersonState, record: LinkedRecord) -> None:
        self._partial_records.discard(record.id)
        before = self._keys_of(person)
        person.records = [record if r.id == record.id else r for r in person.records]
        self.records[(record.source, record.source_id)] = record
        if record.id not in self._new_records:
            self._updated_records[record.id] = record
        else:
            self._new_records[record.id] = record
        self._touch(person, before)

    def merge(
        self,
        survivor: PersonState,
        other: PersonState,
        *,
        actor: str,
        correlation_id: str | None,
        cause: dict[str, Any],
    ) -> None:
        """`other` becomes one with `survivor`: its records move, its id redirects to the
        survivor for good, its open review items follow it, and the golden record is rebuilt
        from all the records at the flush."""
        self._hydrate([survivor, other])
        before_survivor, before_other = self._keys_of(survivor), self._keys_of(other)
        moved = other.records
        for record in moved:
            record.person_id = survivor.id
            if record.id not in self._new_records and record.id not in self._updated_records:
                self._moved_records[record.id] = survivor.id
        survivor.records.extend(moved)
        other.records = []
        if other.choices or other.raised:
            # The survivor's own decisions stand; the other's fill the fields it has none for.
            survivor.choices = {**other.choices, **survivor.choices}
            survivor.raised |= other.raised
            self._stewardship_changed.add(survivor.id)
        other.status = PersonStatus.MERGED
        other.merged_into = survivor.id
        self._touch(survivor, before_survivor)
        self._touch(other, before_other)
        for target, into in list(self._merged.items()):
            if into == other.id:
                self._merged[target] = survivor.id
        self._merged[other.id] = survivor.id
        self.reviews = [
            _repointed(item, other.id, survivor.id, actor=actor, at=self.now)
            for item in self.reviews
        ]
        after = {
            "into": str(survivor.id),
            "records": [f"{r.source}/{r.source_id}" for r in moved],
            **cause,
        }
        self.audit.append(
            AuditEvent(
                new_id(),
                self.now,
                actor,
                "person.merged",
                "person",
                str(other.id),
                correlation_id,
                None,
                after,
            )
        )
        payload = {"person_id": str(survivor.id), "merged_id": str(other.id), **cause}
        self.outbox.append(OutboxEvent(new_id(), "person.merged", survivor.id, payload, self.now))

    def reopen_distinct(
        self, person: PersonState, record: LinkedRecord, actor: str, correlation_id: str | None
    ) -> list[ReviewItem]:
        """A record whose identifying attributes changed puts its person's not-a-match pairs
        back before a steward, once each, as review items marked re-opened: the evidence
        the steward decided on is not the evidence there is now."""
        reopened = []
        for other_id in self.repo.not_a_match_to_reopen(person.id):
            if other_id not in self.persons:
                # Persons this unit holds already may have changed in it: keep those.
                for pid, loaded in self.repo.load_persons([other_id]).items():
                    self.persons.setdefault(pid, loaded)
            other = self.live(other_id)
            if other is None or other.id == person.id:
                continue
            score = self.score_against(record.features, other)
            item = ReviewItem(
                id=new_id(),
                kind="match",
                status="open",
                person_a=other.id,
                person_b=person.id,
                score=round(score.confidence, 6),
                explanation={
                    "rule": "reopened",
                    "reopened": True,
                    "record": f"{record.source}/{record.source_id}",
                    "model": score.model,
                    "comparisons": [c.as_json() for c in score.comparisons],
                },
                created_at=self.now,
                source=record.source,
            )
            self.reviews.append(item)
            self.review_event(actor, correlation_id, item)
            self.repo.mark_reopened(person.id, other_id, at=self.now)
            reopened.append(item)
        return reopened

    def relink(self, record: LinkedRecord, target: PersonState, *, rule: str) -> None:
        """Move one record to another person by a steward's decision: a manual link that
        no automatic decision overrides."""
        source = self.persons[record.person_id]
        before_source, before_target = self._keys_of(source), self._keys_of(target)
        source.records = [r for r in source.records if r.id != record.id]
        record.person_id = target.id
        record.link_source = LinkSource.MANUAL
        record.link_state = LinkState.MATCH
        record.link_score = 1.0
        record.link_rule = rule
        record.linked_at = self.now
        target.records.append(record)
        self._moved_records.pop(record.id, None)
        if record.id not in self._new_records:
            self._relinked[record.id] = record
        self._touch(source, before_source)
        self._touch(target, before_target)

    def person_event(
        self,
        actor: str,
        correlation_id: str | None,
        action: str,
        person_id: UUID,
        after: dict[str, Any],
    ) -> None:
        """An event about a person carrying its own payload (a split, a steward's note)."""
        self._event(actor, correlation_id, action, person_id, None, after, payload=after)

    def seniority(self, person: PersonState) -> tuple[bool, datetime, int, UUID]:
        """Sorts the person known longest first. Persons already written come before those
        this unit created (an existing record never moves to a person yet to be inserted),
        and those in the order this unit created them."""
        new = list(self._new_persons)
        order = new.index(person.id) if person.id in self._new_persons else -1
        return (order >= 0, person.created_at, order, person.id)

    def _new_in_reference_order(self) -> list[PersonState]:
        """New persons, each after the one it was merged into (the foreign key's order)."""

        def depth(person: PersonState) -> int:
            n = 0
            while person.merged_into is not None and person.merged_into in self._new_persons:
                person, n = self._new_persons[person.merged_into], n + 1
            return n

        return sorted(self._new_persons.values(), key=depth)

    def is_distinct(self, a: UUID, b: UUID) -> bool:
        """Whether a steward has said these two persons are not one. The pairs of persons
        merged in this unit are carried to their survivor only at the flush, so they are
        asked under every id merged into `a` or `b` here."""

        def ids(person_id: UUID) -> set[UUID]:
            return {person_id} | {old for old, new in self._merged.items() if new == person_id}

        return any(self.repo.marked_distinct(x, y) for x in ids(a) for y in ids(b))

    def _keys_of(self, person: PersonState) -> set[Key]:
        keys: set[Key] = set()
        for r in person.records:
            keys |= blocking_keys(r.features)
        return keys

    def _touch(self, person: PersonState, keys_before: set[Key]) -> None:
        keys_after = self._keys_of(person)
        for key in keys_after - keys_before:
            row = (*key, person.id)
            if row in self._keys_removed:
                self._keys_removed.discard(row)
            else:
                self._keys_added.add(row)
            if key not in self.generic:
                self.index[key].add(person.id)
        for key in keys_before - keys_after:
            row = (*key, person.id)
            if row in self._keys_added:
                self._keys_added.discard(row)
            else:
                self._keys_removed.add(row)
            self.index[key].discard(person.id)
        self._touched.add(person.id)

    # -- writing ---------------------------------------------------------------------------
    def flush(self, *, actor: str, correlation_id: str | None) -> None:
        """Recompute the golden records of touched persons and write every change."""
        self._hydrate([self.persons[pid] for pid in sorted(self._touched)])
        updated: list[PersonState] = []
        for pid in sorted(self._touched):
            person = self.persons[pid]
            if person.status == PersonStatus.MERGED:
                # A redirect holds no records, so no golden record: the survivor has both.
                # One created and merged away in this unit is written as a redirect only.
                person.golden, person.lineage = {}, {}
                if pid not in self._new_persons:
                    person.version += 1
                    person.updated_at = self.now
                    updated.append(person)
                continue
            golden, lineage = self.golden_of(person, actor, correlation_id)
            before = self._golden_before[pid]
            person.golden, person.lineage = golden, lineage
            if pid in self._new_persons:
                self._event(
                    actor, correlation_id, "person.created", pid, None, golden,
                    payload=published_changes(golden, lineage, sorted(golden)),
                )  # fmt: skip
                if golden.get("employee_id"):
                    assigned = published_changes(golden, lineage, ["employee_id"])
                    self._event(
                        actor, correlation_id, "person.employee_id_assigned", pid, None, None,
                        payload=assigned,
                    )  # fmt: skip
                continue
            changed = sorted(
                k for k in golden.keys() | before.keys() if golden.get(k) != before.get(k)
            )
            # Written even when no golden value changed: the lineage names record versions.
            person.version += 1
            person.updated_at = self.now
            updated.append(person)
            if changed:
                self._event(
                    actor,
                    correlation_id,
                    "person.updated",
                    pid,
                    {k: before.get(k) for k in changed},
                    {k: golden.get(k) for k in changed},
                    payload=published_changes(golden, lineage, changed),
                )
            if golden.get("employee_id") and golden.get("employee_id") != before.get("employee_id"):
                # The HRIS issued the id: the ATS and the CRM wait for it.
                assigned = published_changes(golden, lineage, ["employee_id"])
                self._event(actor, correlation_id, "person.employee_id_assigned", pid, None,
                            None, payload=assigned)  # fmt: skip
            if golden.get("status") == "hired" and before.get("status") != "hired":
                self._event(actor, correlation_id, "person.hired", pid, None, None)
        for pid in self._new_persons:
            if (
                self.persons[pid].status == PersonStatus.ACTIVE
                and self.persons[pid].golden.get("status") == "hired"
            ):
                self._event(actor, correlation_id, "person.hired", pid, None, None)

        # The person updates carry a version check that detects a concurrent writer; they
        # go out with the inserts, in one round trip where the database allows it.
        self.repo.update_records(list(self._updated_records.values()))
        self.repo.move_records(self._moved_records)
        self.repo.remove_keys(self._keys_removed)
        with self.repo.pipelined():
            self.repo.update_persons(updated)
            self.repo.insert_persons(self._new_in_reference_order())
            self.repo.insert_records(list(self._new_records.values()))
            self.repo.add_keys(self._keys_added)
            self.repo.insert_reviews(self.reviews)
            self.repo.insert_outbox(self.outbox)
        # After the inserts: a record may move to a person this unit created.
        self.repo.relink_records(list(self._relinked.values()))
        if self._merged:
            self.repo.repoint_reviews(self._merged, actor=actor, at=self.now)
            self.repo.carry_not_a_match(self._merged, actor=actor, at=self.now)
        self.repo.set_stewardship_of(
            {
                pid: (self.persons[pid].choices, self.persons[pid].raised)
                for pid in self._stewardship_changed
            }
        )
        # Last: appending to the audit chain takes the chain's lock until commit, which
        # every other writer waits for; everything else is written by then.
        self.repo.insert_audit(self.audit)

    def choose(self, person: PersonState, field: str, choice: Choice) -> None:
        """A steward's choice of a field's value; the golden record follows at the flush."""
        self._hydrate([person])
        person.choices = {**person.choices, field: choice.as_json()}
        self._stewardship_changed.add(person.id)
        self._touch(person, self._keys_of(person))

    def golden_of(
        self, person: PersonState, actor: str, correlation_id: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The person's golden record and lineage from its records; a value the rules will
        not apply silently opens a conflict review item, once."""
        result = build_golden(
            (
                RecordView(
                    r.source,
                    r.source_id,
                    r.version,
                    r.attributes,
                    r.effective_updated_at,
                    self.kinds.get(r.source),
                )
                for r in person.records
            ),
            self.rules,
            {name: Choice.from_json(raw) for name, raw in person.choices.items()},
        )
        if result.conflicts:
            self._open_conflicts(person, result.conflicts, actor, correlation_id)
        return result.attributes, result.lineage

    def _open_conflicts(
        self,
        person: PersonState,
        conflicts: list[Conflict],
        actor: str,
        correlation_id: str | None,
    ) -> None:
        for conflict in conflicts:
            if conflict.key in person.raised:
                continue
            person.raised.add(conflict.key)
            self._stewardship_changed.add(person.id)
            item = ReviewItem(
                id=new_id(),
                kind="conflict",
                status="open",
                person_a=person.id,
                person_b=person.id,
                score=0.0,
                explanation={
                    "rule": "conflict",
                    "key": conflict.key,
                    "field": conflict.field,
                    "kept": conflict.kept.described(),
                    "other": conflict.other.described(),
                },
                created_at=self.now,
                source=conflict.other.source,
            )
            self.reviews.append(item)
            self.review_event(actor, correlation_id, item)

    def record_event(
        self,
        actor: str,
        correlation_id: str | None,
        action: str,
        record: LinkedRecord,
        after: dict[str, Any],
    ) -> None:
        entity = f"{record.source}/{record.source_id}"
        self.audit.append(
            AuditEvent(
                new_id(), self.now, actor, action, "record", entity, correlation_id, None, after
            )
        )
        self.outbox.append(
            OutboxEvent(
                new_id(),
                action,
                record.person_id,
                {"source": record.source, "source_id": record.source_id, **after},
                self.now,
            )
        )

    def review_event(
        self,
        actor: str,
        correlation_id: str | None,
        item: ReviewItem,
        action: str = "review.opened",
    ) -> None:
        after: dict[str, Any] = {
            "review_id": str(item.id),
            "person_a": str(item.person_a),
            "person_b": str(item.person_b),
            "score": item.score,
        }
        if item.decision is not None:
            after |= {"decision": item.decision, "note": item.note}
        self.audit.append(
            AuditEvent(
                new_id(),
                self.now,
                actor,
                action,
                "review",
                str(item.id),
                correlation_id,
                None,
                after,
            )
        )
        self.outbox.append(OutboxEvent(new_id(), action, item.person_b, after, self.now))

    def _event(
        self,
        actor: str,
        correlation_id: str | None,
        action: str,
        person_id: UUID,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self.audit.append(
            AuditEvent(
                new_id(),
                self.now,
                actor,
                action,
                "person",
                str(person_id),
                correlation_id,
                before,
                after,
            )
        )
        published: dict[str, Any] = {"person_id": str(person_id), **(payload or {})}
        if after is not None and before is not None:
            published["changed_fields"] = sorted(after)
        self.outbox.append(OutboxEvent(new_id(), action, person_id, published, self.now))


def published_changes(
    golden: dict[str, Any], lineage: dict[str, Any], fields: list[str]
) -> dict[str, Any]:
    """The new values of changed fields and the sources they came from: a subscriber is
    never sent back what it sent (no echo). Each subscription gets them redacted by its
    scopes; the store keeps national ids sealed."""
    sources: dict[str, list[str]] = {}
    for name in fields:
        origin = lineage.get(name) or {}
        if "values" in origin:
            sources[name] = sorted({v["source"] for v in origin["values"]})
        elif "source" in origin:
            sources[name] = [origin["source"]]
        else:
            sources[name] = []
    return {"changes": {k: golden.get(k) for k in fields}, "sources": sources}


def _repointed(item: ReviewItem, old: UUID, new: UUID, *, actor: str, at: datetime) -> ReviewItem:
    if item.status != "open" or old not in (item.person_a, item.person_b):
        return item
    a = new if item.person_a == old else item.person_a
    b = new if item.person_b == old else item.person_b
    if a == b and item.kind == "match":
        return replace(
            item, person_a=a, person_b=b, status="merged", decision="auto_merge",
            resolved_at=at, resolved_by=actor, note=MERGED_NOTE,
        )  # fmt: skip
    return replace(item, person_a=a, person_b=b)
