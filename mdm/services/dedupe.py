"""The nightly batch dedupe: the whole registry against itself, with the online path's
blocking keys, scorer and decision policy (DESIGN: nightly -> `mdm dedupe`).

read (every live person's records' match features, streamed into columns) -> block (the
online candidate keys; a key shared by more persons than the block cap is generic, and
its emails and phones are not compared, as online; flow/block_many.py) -> score (each
record pair once, compared column by column, flow/compare_many.py; a pair worth a
decision is scored by the one formula; a person pair keeps its best record pair) ->
decide (`decide` on that pair, exactly as an ingest would for a candidate) -> cluster (the
auto-merge pairs' components, merged only when coherent; flow/cluster_many.py) -> write
(merges as a steward's or a bridging merge: golden records, audit and outbox; review
items for the review band; services/dedupe_write.py), a chunk of clusters per
transaction.

Killed at any point and run again, it finishes where an uninterrupted run would: a
cluster is merged whole in one transaction, the next run recomputes from what is there,
and a pair already before a steward is not put to one twice. Pairs a steward called
distinct are never proposed; decisions stewards made are never overridden.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from itertools import islice
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar, overload
from uuid import UUID

import numpy as np
import orjson

from mdm.flow.block import Key
from mdm.flow.block_many import Blocks, block, exact_kinds, record_keys, without_generic
from mdm.flow.cluster import components
from mdm.flow.cluster_many import PersonRecords, coherent_groups
from mdm.flow.columns import FeatureColumns, FeatureInterner, InternedFeatures, Packed, merged
from mdm.flow.compare_many import (
    compare_pairs,
    name_similarities,
)
from mdm.flow.decide import Candidate, Outcome, Thresholds, decide
from mdm.flow.score import FellegiSunterScorer, Score
from mdm.flow.score_many import (
    ComparisonWeights,
    PairScores,
    ScoreKey,
    score_keys,
)
from mdm.services.context import Registry
from mdm.services.dedupe_write import Proposal, write
from mdm.store.registry import epoch_microseconds

if TYPE_CHECKING:  # pragma: no cover
    from mdm.services.spark_engine import SparkEngine, SparkOptions
    from mdm.store.registry import FeaturePart, RegistryRepository

# (stage, done, total): progress for a bar or a log line.
Progress = Callable[[str, int, int], None]


@dataclass
class Stage:
    name: str
    seconds: float
    peak_rss_mib: float


@dataclass
class DedupeReport:
    dry_run: bool
    persons: int = 0
    records: int = 0
    blocks: int = 0
    generic_blocks: int = 0
    candidate_pairs: int = 0
    pairs_scored: int = 0
    auto_merge_pairs: int = 0
    review_pairs: int = 0
    skipped_not_a_match: int = 0
    skipped_open_reviews: int = 0
    clusters: int = 0
    incoherent_clusters: int = 0
    merges: int = 0
    review_items: int = 0
    # The scoring processes' largest peak resident memory, beside this process's in
    # `stages`; the pages they share with it are counted in both.
    workers_peak_rss_mib: float = 0.0
    stages: list[Stage] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class _Proposal:
    a: int
    b: int
    score: Score
    rule: str
    reasons: tuple[str, ...] = ()


class PersonIds(Sequence[UUID]):
    """Persons' ids as 16 bytes each (rows of a uint8 matrix), a UUID made when asked for:
    of a million persons, the decisions name a few."""

    def __init__(self, raw: np.ndarray) -> None:
        self._raw = raw

    def __len__(self) -> int:
        return len(self._raw)

    @overload
    def __getitem__(self, k: int) -> UUID: ...
    @overload
    def __getitem__(self, k: slice) -> list[UUID]: ...
    def __getitem__(self, k: int | slice) -> UUID | list[UUID]:
        if isinstance(k, slice):
            return [UUID(bytes=row.tobytes()) for row in self._raw[k]]
        return UUID(bytes=self._raw[k].tobytes())


class _Registry:
    """The registry as read: persons in id order, their records contiguous, the records'
    match features as columns (generic emails and phones blanked once blocked)."""

    def __init__(self) -> None:
        self.ids = PersonIds(np.zeros((0, 16), dtype=np.uint8))
        self.updated = np.zeros(0, dtype=np.int64)  # microseconds since the epoch
        self.start: list[int] = []  # first record of each person
        self.owner: list[int] = []  # person of each record
        self.columns: FeatureColumns | None = None
        self.documents: list[bytes] = []  # features as stored, for the Spark engine
        # Each record's place in (source, source_id) order: each pair is compared one way,
        # from the record first in that order, so that decisions depend on neither person
        # ids, which a merge changes, nor the engine.
        self.places = np.zeros(0, dtype=np.int64)


def dedupe(
    registry: Registry,
    *,
    dry_run: bool = False,
    since: datetime | None = None,
    chunk: int = 25,
    workers: int = 2,
    progress: Progress | None = None,
    decisions: dict[tuple[UUID, UUID], str] | None = None,
    spark: SparkOptions | None = None,
) -> DedupeReport:
    """Run the nightly dedupe; `since` limits it to pairs with a person changed since.
    `decisions` receives the policy's outcome (link, review, create) for every pair of
    persons it decided on, keyed by the two ids in order. `workers` processes score the
    blocks and as many write the merges (on PostgreSQL; golden records, events and sealing
    are Python, which threads could not spread over the cores). With `spark`, blocking,
    scoring and clustering run on Apache Spark (services/spark_engine.py); the decisions
    and the writes are the same code either way."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    engine = None
    if spark is not None:
        from mdm.services.spark_engine import SparkEngine

        engine = SparkEngine(spark)
    try:
        with _collector_for_batch():
            return _dedupe(registry, dry_run, since, chunk, workers, progress, decisions, engine)
    finally:
        if engine is not None:
            engine.close()


@contextmanager
def _collector_for_batch() -> Iterator[None]:
    """The garbage collector off while the run builds its picture of the registry, and
    that picture frozen out of it while the run writes.

    The read, block and score stages create millions of objects that live to the end
    (features, keys, scores) and no reference cycles; every full collection walked all of
    them again, about a fifth of a 100,000-person run. The write stage makes cycles (ORM
    and driver objects) and keeps the collector, which then sees only what it makes.
    """
    enabled, frozen, thresholds = gc.isenabled(), gc.get_freeze_count(), gc.get_threshold()
    gc.disable()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if frozen == 0:
            gc.unfreeze()
        if enabled:
            gc.enable()


def _collect_for_writes() -> None:
    """Start the write stage's collections afresh: what is alive now stays alive. A process
    that froze objects of its own keeps them frozen, and the run freezes nothing (it could
    not unfreeze only its own); rare full collections then still walk the picture."""
    if not gc.isenabled():  # paused by _collector_for_batch
        gc.collect()
        if gc.get_freeze_count() == 0:
            gc.freeze()
        # Young cycles are still collected; a full pass waits for 1,000 middle ones, not
        # 10: what the writes leave behind is short-lived, so full passes found nothing.
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, 1000)
        gc.enable()


def _dedupe(
    registry: Registry,
    dry_run: bool,
    since: datetime | None,
    chunk: int,
    workers: int,
    progress: Progress | None,
    decisions: dict[tuple[UUID, UUID], str] | None,
    engine: SparkEngine | None,
) -> DedupeReport:
    report = DedupeReport(dry_run=dry_run)
    tick = progress or (lambda stage, done, total: None)
    scorer = registry.scorer
    if not isinstance(scorer, FellegiSunterScorer):
        raise TypeError("the batch path scores with the Fellegi-Sunter model")
    thresholds = registry.thresholds
    cap = registry.settings.max_block_size

    with _stage(report, "read"):
        data, distinct, open_pairs, peak = _read(
            registry, tick, scorer.known_given, documents=engine is not None, workers=workers
        )
        report.workers_peak_rss_mib = max(report.workers_peak_rss_mib, peak)
        _release_freed_memory()
        report.persons, report.records = len(data.ids), len(data.owner)

    changed = None
    if since is not None:
        changed = set(np.flatnonzero(data.updated >= epoch_microseconds(since)).tolist())
    if engine is None:
        with _stage(report, "block"):
            blocks, generic = _blocks(data, cap, changed)
            report.blocks, report.generic_blocks = blocks.blocks, len(generic)
            _strip_generic(data, generic)
        with _stage(report, "score"):
            # The scoring processes decide each pair they keep, as they go.
            pairs = (blocks.first, blocks.second, blocks.exact)
            decided, peak = _score(data, pairs, scorer, thresholds, tick, workers)
            report.candidate_pairs = report.pairs_scored = len(blocks.first)
            report.workers_peak_rss_mib = max(report.workers_peak_rss_mib, peak)
            del blocks, pairs
    else:
        decided = _score_on_spark(engine, data, cap, scorer, thresholds, report, tick, changed)

    persons = PersonRecords(data.start, len(data.owner))
    with _stage(report, "decide"):
        # Two persons are linked when any pair of their records is; in record pair order,
        # so that the first of equally ranked pairs speaks for the persons.
        outcomes: dict[tuple[int, int], tuple[Outcome, _Proposal]] = {}
        # A link's strength: its best record pair's confidence, then that pair's places in
        # (source, source_id) order; neither changes when persons merge.
        strength: dict[tuple[int, int], tuple[float, int, int]] = {}
        n = len(data.owner)
        places = data.places
        decided.sort(key=lambda d: d[0])
        for code, outcome, proposal in decided:
            pair = (proposal.a, proposal.b)
            held = outcomes.get(pair)
            if held is None or _rank(outcome, proposal.score) > _rank(held[0], held[1].score):
                outcomes[pair] = (outcome, proposal)
            if outcome == Outcome.LINK:
                i, j = sorted((int(places[code // n]), int(places[code % n])))
                key = (-proposal.score.confidence, i, j)
                if key < strength.get(pair, _WEAKEST):
                    strength[pair] = key
        del decided
        proposals: dict[tuple[int, int], _Proposal] = {}
        links: list[tuple[int, int]] = []
        for pair, (outcome, proposal) in sorted(outcomes.items()):
            a, b = pair
            if decisions is not None:
                decisions[(data.ids[a], data.ids[b])] = outcome.value
            if _key(data.ids[a], data.ids[b]) in distinct:
                report.skipped_not_a_match += 1
                continue
            proposals[pair] = proposal
            if outcome == Outcome.LINK:
                links.append(pair)
        del outcomes
        links.sort(key=strength.__getitem__)

    with _stage(report, "cluster"):
        columns = data.columns
        assert columns is not None

        def is_distinct(a: int, b: int) -> bool:
            return _key(data.ids[a], data.ids[b]) in distinct

        clusters = components(links) if engine is None else engine.components(links)
        report.clusters = len(clusters)
        built = coherent_groups(
            columns, persons, clusters, links, scorer, ComparisonWeights(scorer, columns),
            is_distinct,
        )  # fmt: skip
        merges = built.groups
        report.incoherent_clusters = built.incoherent
        report.auto_merge_pairs = len(links) - len(built.left_out)
        linked = set(links)
        reviews: list[_Proposal] = [p for pair, p in proposals.items() if pair not in linked]
        # The links left out go before a steward, with what left them out.
        reviews += [
            replace(proposals[pair], rule=rule, reasons=tuple(reasons))
            for pair, (rule, reasons) in built.left_out.items()
        ]
        fresh = []
        for p in sorted(reviews, key=lambda p: (p.a, p.b)):
            if _key(data.ids[p.a], data.ids[p.b]) in open_pairs:
                report.skipped_open_reviews += 1
            else:
                fresh.append(p)
        report.review_pairs = len(fresh)

    if engine is not None:
        engine.close()  # Spark's part is done: its memory and cores go to the writes
    if dry_run:
        return report
    _collect_for_writes()
    with _stage(report, "write"):
        report.merges, report.review_items = write(
            registry,
            [[data.ids[m] for m in members] for members in merges],
            [Proposal(data.ids[p.a], data.ids[p.b], p.score, p.rule, p.reasons) for p in fresh],
            chunk=chunk,
            workers=workers,
            tick=tick,
        )
    return report


def _score_on_spark(
    engine: SparkEngine,
    data: _Registry,
    cap: int,
    scorer: FellegiSunterScorer,
    thresholds: Thresholds,
    report: DedupeReport,
    tick: Progress,
    changed: set[int] | None,
) -> list[_Decided]:
    """Blocking, pair generation and the comparison of every pair on Spark; the pairs it
    finds worth a decision are scored and decided here, as the in-process engine does."""
    with _stage(report, "export"):
        rank = data.places
        records = engine.export(
            (i, data.owner[i], int(rank[i]), data.documents[i],
             changed is None or data.owner[i] in changed)
            for i in range(len(data.owner))
        )  # fmt: skip
        data.documents = []
    with _stage(report, "block"):
        report.blocks, generic = engine.block(records, cap)
        report.generic_blocks = len(generic)
        _strip_generic(data, set(generic))
    with _stage(report, "score"):
        report.pairs_scored, worth = engine.score(records, cap, generic, scorer, thresholds.review)
        report.candidate_pairs = report.pairs_scored
        decided, _ = _score(data, worth, scorer, thresholds, tick, worth_only=True)
    return decided


def _key(a: UUID, b: UUID) -> tuple[UUID, UUID]:
    return (a, b) if a < b else (b, a)


@contextmanager
def _stage(report: DedupeReport, name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    report.stages.append(Stage(name, round(time.perf_counter() - started, 3), round(peak, 1)))


def _read(
    registry: Registry,
    tick: Progress,
    known_given: frozenset[str],
    documents: bool = False,
    workers: int = 1,
) -> tuple[_Registry, set[tuple[UUID, UUID]], set[tuple[UUID, UUID]], float]:
    """The registry's live persons and their records' features, as columns; with
    `documents`, each record's features as stored too (JSON, for another engine). Also the
    largest peak memory of a process that read a part, in MiB.

    On PostgreSQL, `workers` processes read a part of the records each, all in one
    snapshot: parsing and interning a million documents is most of the read, and one
    process's work. The rows come unsorted, so that the database streams them while it
    reads and the processes parse them meanwhile; they are put in order here, by arrays:
    persons in id order, each one's records together in (source, source_id) order."""
    with registry.database.uow(consistent=True) as uow:
        repo = uow.registry
        snapshot = repo.export_snapshot() if workers > 1 else None
        # More ranges than processes, each taken by the next process free: the table's
        # later pages hold more live rows (updates append), and this process reads the
        # persons too.
        ranges = repo.feature_parts(workers * _RANGES_PER_WORKER if snapshot else 1)
        taken = multiprocessing.Value("i", 0)  # ranges handed out so far
        progress = multiprocessing.RawArray("q", workers)  # records read by each process

        def read(k: int) -> tuple[tuple[np.ndarray, np.ndarray] | None, _Part]:
            if k == 0:  # here, where the progress is shown
                persons = repo.live_person_ids()
                return persons, _read_part(repo, ranges, taken, documents, progress, 0, tick)
            database = registry.database.detached()
            try:
                with database.uow(snapshot=snapshot) as own:
                    return None, _read_part(own.registry, ranges, taken, documents, progress, k)
            finally:
                database.dispose()

        results, peak = forked(read, workers if snapshot else 1)
        persons, _ = results[0]
        assert persons is not None
        ids, updated = persons
        read_parts = [part for _, part in results]
        distinct = repo.not_a_match_pairs()
        open_pairs = {_key(a, b) for a, b in repo.open_review_pairs()}
    # Each record's person by its place among the live persons in id order; records of
    # persons merged or erased left out, and persons without records.
    record_person = np.concatenate([p.persons for p in read_parts]).view("S16").ravel()
    person_of, live = _places(ids.view("S16").ravel(), record_person)
    kept = np.flatnonzero(live)
    numbered, owner = np.unique(person_of[kept], return_inverse=True)
    by_place = _by_source_order(Packed.joined([p.places for p in read_parts]), kept)
    # Grouped by person, in (source, source_id) order within each: a stable sort of the
    # records taken in that order. A record's place is its rank in that order.
    grouped = np.argsort(owner[by_place], kind="stable")
    in_order = by_place[grouped]  # indexes into `kept`
    order = kept[in_order]
    data = _Registry()
    data.ids = PersonIds(ids[numbered])
    data.updated = updated[numbered]
    del ids, updated
    counts = np.bincount(owner, minlength=len(numbered))
    data.start = (np.cumsum(counts) - counts).tolist()
    data.owner = owner[in_order].tolist()
    data.places = grouped.astype(np.int64)
    features = merged([p.features for p in read_parts])
    data.columns = FeatureColumns.from_interned(features, known_given, order)
    if documents:
        docs = Packed.joined([p.documents for p in read_parts]).items()
        data.documents = [docs[i] for i in order.tolist()]
    return data, distinct, open_pairs, peak


def _places(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each key's place in `sorted_keys`, and whether it is there at all."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=bool)
    place = np.searchsorted(sorted_keys, keys)
    found = sorted_keys[np.minimum(place, len(sorted_keys) - 1)] == keys
    return place, found


@dataclass(frozen=True, slots=True)
class _Part:
    """One part of the registry's records as read, in the order read: each one's person
    (its id's 16 bytes, a row of a uint8 matrix), its place key (`_place_key`) and
    features, and its features document where asked for. Strings travel packed: pickled
    one by one, a million took seconds to send to another process."""

    persons: np.ndarray
    places: Packed
    features: InternedFeatures
    documents: Packed


def _read_part(
    repo: RegistryRepository,
    ranges: list[FeaturePart],
    taken: Any,
    documents: bool,
    progress: Any,
    k: int,
    tick: Progress | None = None,
) -> _Part:
    """The records of the ranges this process takes (the next not yet `taken`, until none
    is left), interned a batch at a time: what is kept is the distinct values and an id
    per value per record, not each record's documents."""
    interner = FeatureInterner()
    persons: list[np.ndarray] = []
    places: list[bytes] = []
    docs: list[bytes] = []
    while (r := _next(taken)) < len(ranges):
        for batch in _batches(repo.stream_match_features(ranges[r]), _READ_BATCH):
            person, source, source_id, features = zip(*batch, strict=True)
            persons.append(np.frombuffer(b"".join(person), dtype=np.uint8).reshape(-1, 16))
            places.extend(map(_place_key, source, source_id))
            interner.add_documents(list(map(orjson.loads, features)))
            if documents:
                docs.extend(map(str.encode, features))
            progress[k] += len(batch)
            if tick is not None:
                tick("read", sum(progress), 0)
    return _Part(
        persons=np.concatenate(persons) if persons else np.zeros((0, 16), dtype=np.uint8),
        places=Packed.of(places),
        features=interner.interned(),
        documents=Packed.of(docs),
    )


def _place_key(source: str, source_id: str) -> bytes:
    """A record's key in (source, source_id) order by code point, as Python orders the
    pair, whatever the database's collation: UTF-8 bytes sort in code point order, and
    NUL, the least code point, ends the source (a source name holds none)."""
    return f"{source}\0{source_id}".encode()


def _batches(rows: Iterator[T], size: int) -> Iterator[list[T]]:
    while batch := list(islice(rows, size)):
        yield batch


def _next(taken: Any) -> int:
    with taken.get_lock():
        taken.value += 1
        return int(taken.value) - 1


# Records parsed and interned at a time: large enough for the C loops to dominate, small
# enough that a batch's documents are a few tens of megabytes.
_READ_BATCH = 20_000
_RANGES_PER_WORKER = 8


def _release_freed_memory() -> None:
    """Give back to the system the heap the read's rows held (glibc keeps freed memory
    for the process): a quarter of a gigabyte at a million records, before blocking
    needs its arrays."""
    with suppress(OSError, AttributeError):  # not glibc: nothing to give back this way
        ctypes.CDLL(None).malloc_trim(0)


def _by_source_order(keys: Packed, kept: np.ndarray) -> np.ndarray:
    """The indexes into `kept` of its records (indexes into `keys`) in order of their
    place keys."""
    width = int(keys.lengths()[kept].max(initial=1))
    if len(kept) * width > _SORT_BYTES:  # an outlier's width for every row: sort in Python
        items = keys.items()
        return np.asarray(sorted(range(len(kept)), key=lambda k: items[kept[k]]), np.int64)
    return np.argsort(keys.fixed_width(width)[kept], kind="stable").astype(np.int64)


# Place keys sorted as fixed-width byte strings up to this size in all.
_SORT_BYTES = 256 * 1024 * 1024


def _blocks(data: _Registry, cap: int, changed: set[int] | None) -> tuple[Blocks, set[Key]]:
    """The candidate pairs of blocks of two to `cap` persons (with `changed`, the persons
    changed since the last run, only pairs holding one of them), and the generic keys."""
    assert data.columns is not None
    keys = record_keys(data.columns)
    owner = np.asarray(data.owner, dtype=np.int64)
    touched = None
    if changed is not None:
        touched = np.zeros(len(data.ids), dtype=bool)
        touched[list(changed)] = True
        touched = touched[owner]
    blocks = block(keys, owner, cap, touched)
    return blocks, {keys.named(int(k)) for k in blocks.generic}


def _strip_generic(data: _Registry, generic: set[Key]) -> None:
    if generic:
        assert data.columns is not None
        data.columns = without_generic(data.columns, generic)


# Pairs compared at once: bounds the arrays of one step.
_PAIRS_PER_STEP = 200_000


def _score(
    data: _Registry,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
    scorer: FellegiSunterScorer,
    thresholds: Thresholds,
    tick: Progress,
    workers: int = 1,
    *,
    worth_only: bool = False,
) -> tuple[list[_Decided], float]:
    """Candidate pairs (first, second, exact kinds' bits) compared column by column
    (flow/compare_many.py), and those worth a decision (at least the review threshold, or
    an exact key shared) scored by the one formula and decided; `workers` processes take a
    share of the pairs each. `worth_only`: the pairs were found worth a decision already
    (by another engine, with the same comparisons). Also the scoring processes' peak
    resident memory."""
    columns = data.columns
    assert columns is not None
    n = len(data.owner)
    first, second, exact = pairs
    rank = data.places
    flip = rank[first] > rank[second]
    left, right = np.where(flip, second, first), np.where(flip, first, second)
    weights = ComparisonWeights(scorer, columns)
    owner = data.owner
    floor = thresholds.review
    total = len(first)
    share = -(-total // workers) if total else 0

    def part(k: int) -> list[_Decided]:
        scores = PairScores(scorer, columns)
        verdicts: dict[tuple[ScoreKey, int], tuple[Outcome, str, tuple[str, ...]]] = {}
        out: list[_Decided] = []
        for start in range(k * share, min((k + 1) * share, total), _PAIRS_PER_STEP):
            end = min(start + _PAIRS_PER_STEP, (k + 1) * share, total)
            a, b = left[start:end], right[start:end]
            levels = compare_pairs(columns, a, b)
            if worth_only:
                chosen = np.arange(end - start)
            else:
                # A margin below the floor: the confidence taken is the one formula's.
                worth = (weights.confidences(levels) >= floor - 1e-9) | (exact[start:end] > 0)
                chosen = np.flatnonzero(worth)
            similarities = name_similarities(columns, a[chosen], b[chosen]).tolist()
            keys = score_keys(levels, chosen, weights)
            shared = exact[start:end][chosen].tolist()
            firsts = first[start:end][chosen].tolist()
            seconds = second[start:end][chosen].tolist()
            for at, key, similarity, bits, i, j in zip(
                chosen.tolist(), keys, similarities, shared, firsts, seconds, strict=True
            ):
                score = scores.score(key, levels, at, similarity)
                if score.confidence < floor and not bits:
                    continue
                verdict = verdicts.get((key, bits))
                if verdict is None:
                    # Decided as an ingest decides a record against a one-record person;
                    # per record pair, so that a merge made by an earlier (killed) run
                    # changes no decision of the next (records do not change, persons do).
                    kinds = tuple(sorted(exact_kinds(bits)))
                    decision = decide([Candidate(_NOBODY, score, kinds)], thresholds)
                    verdict = (decision.outcome, decision.rule.value, decision.guards)
                    verdicts[(key, bits)] = verdict
                outcome, rule, guards = verdict
                if outcome != Outcome.CREATE:
                    p, q = owner[i], owner[j]
                    proposal = _Proposal(min(p, q), max(p, q), score, rule, guards)
                    out.append((i * n + j, outcome, proposal))
            if k == 0:
                tick("score", min(end * workers, total), total)
        return out

    decided: list[_Decided] = []
    results, children_peak = forked(part, workers)
    for part_decided in results:
        decided += part_decided
    tick("score", total, total)
    return decided, children_peak


# A record pair worth a decision (its code `i * records + j`), the policy's outcome, and
# what it proposes for the two persons.
_Decided = tuple[int, Outcome, _Proposal]
# The person a candidate names does not change the policy's outcome, rule or guards.
_NOBODY = UUID(int=0)


T = TypeVar("T")


def forked(work: Callable[[int], T], workers: int) -> tuple[list[T], float]:
    """`work(0)` here and `work(1)` .. `work(workers - 1)` in forked processes, which
    share what this process has read without copying it; their results come back
    pickled. Where processes cannot be forked, everything runs here. Also the largest
    peak resident memory of a child, in MiB (the pages it shares with this process are
    counted in both)."""
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [work(k) for k in range(workers)], 0.0
    context = multiprocessing.get_context("fork")
    children = []
    for k in range(1, workers):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(work, k, sender), daemon=True)
        child.start()
        sender.close()
        children.append((child, receiver))
    peak = 0.0
    try:
        results = [work(0)]
        for child, receiver in children:
            try:
                status, value, child_peak = receiver.recv()
            except EOFError:
                raise RuntimeError(f"a worker process died (exit code {child.exitcode})") from None
            if status != "ok":
                raise RuntimeError(f"a worker process failed: {value}")
            results.append(value)
            peak = max(peak, child_peak)
    except BaseException:
        for child, _ in children:
            child.kill()  # its work is lost with the run's
        raise
    finally:
        for child, receiver in children:
            receiver.close()
            child.join()
    return results, round(peak, 1)


def _child(work: Callable[[int], T], k: int, sender: Connection) -> None:
    """Runs `work(k)` and sends back its result with this process's own peak resident
    memory (the parent's view of its children's would cover every child it ever had)."""
    result: tuple[str, Any]
    try:
        result = ("ok", work(k))
    except BaseException as exc:  # reported to the parent, which raises
        result = ("error", f"{type(exc).__name__}: {exc}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    sender.send((*result, peak))
    sender.close()


_WEAKEST = (1.0, 0, 0)


def _rank(outcome: Outcome, score: Score) -> tuple[int, float]:
    return (outcome == Outcome.LINK, score.confidence)
