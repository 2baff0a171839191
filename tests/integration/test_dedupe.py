"""The nightly dedupe: precise merges of coherent clusters, the online path's decisions
for the same pair, nothing twice, stewards' decisions respected, and a run killed at any
point ends, once run again, where an uninterrupted run ends."""

from __future__ import annotations

import gc
import random
import threading
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from psycopg.errors import LockNotAvailable
from sqlalchemy import func, select

from fixtures.generator import generate
from mdm.flow.cluster import components
from mdm.model.errors import InvalidRecord
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.dedupe import _read, dedupe
from mdm.services.ingest import ingest_many, load_unmatched
from mdm.services.match import match_record
from mdm.services.sources import prepare
from mdm.store.audit import verify
from mdm.store.registry import epoch_microseconds
from mdm.store.tables import AuditEventRow, PersonRow, ReviewItemRow, SourceRecordRow
from tests.conftest import truncate
from tests.factories import dedupe_killed, incoming, partition, record_pairs


def _generated(registry: Registry, n: int, seed: int = 7) -> tuple[list[IncomingRecord], dict]:
    records, truth = [], {}
    for g in generate(n, seed=seed):
        record = IncomingRecord(g.source, g.source_id, g.data)
        try:
            prepare(registry, record)
        except InvalidRecord:
            continue
        records.append(record)
        truth[(g.source, g.source_id)] = g.truth
    return records, truth


def _count(registry: Registry, table: type) -> int:
    with registry.database.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def test_dedupe_merges_duplicates_precisely_and_once(registry: Registry) -> None:
    records, truth = _generated(registry, 900)
    load_unmatched(registry, records, actor="legacy")
    report = dedupe(registry)
    assert report.persons == len(records) and report.merges > 50

    found = record_pairs(partition(registry))
    humans: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for key, human in truth.items():
        humans[human].add(key)
    true = record_pairs({frozenset(m) for m in humans.values()})
    precision, recall = len(found & true) / len(found), len(found & true) / len(true)
    assert precision >= 0.99 and recall >= 0.6, (precision, recall)
    assert sum(len(g) for g in partition(registry)) == len(records)  # none lost or unlinked
    with registry.database.engine.connect() as conn:
        assert verify(conn).ok

    again = dedupe(registry)
    assert (again.merges, again.review_items) == (0, 0)
    assert again.skipped_open_reviews == report.review_items


def test_a_run_leaves_the_garbage_collector_as_it_found_it(registry: Registry) -> None:
    # The run pauses the collector and freezes its picture of the registry; a process that
    # goes on afterwards (a test run, a scheduler) must get its collector back as it was.
    records, _ = _generated(registry, 200)
    load_unmatched(registry, records, actor="legacy")
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()  # a server started earlier in this process froze its heap
    if frozen:
        gc.unfreeze()
    try:
        assert gc.isenabled() and gc.get_freeze_count() == 0
        report = dedupe(registry)
        assert report.merges > 0
        assert gc.isenabled() and gc.get_freeze_count() == 0
        assert gc.get_threshold() == thresholds
        gc.disable()
        try:
            dedupe(registry, dry_run=True)
            assert not gc.isenabled() and gc.get_freeze_count() == 0
        finally:
            gc.enable()
        # Objects the process froze itself stay frozen: the run adds none and thaws none.
        gc.freeze()
        before = gc.get_freeze_count()
        again = dedupe(registry)
        assert again.persons > 0
        assert gc.isenabled() and before > 0
        assert gc.get_freeze_count() <= before and gc.get_threshold() == thresholds
    finally:
        if frozen:
            gc.freeze()
        else:
            gc.unfreeze()


def test_a_dry_run_writes_nothing(registry: Registry) -> None:
    records, _ = _generated(registry, 300)
    load_unmatched(registry, records, actor="legacy")
    tables = (PersonRow, ReviewItemRow, AuditEventRow)
    before = [_count(registry, t) for t in tables]
    report = dedupe(registry, dry_run=True)
    assert report.auto_merge_pairs > 0 and report.merges == 0
    assert [s.name for s in report.stages] == ["read", "block", "score", "decide", "cluster"]
    assert [_count(registry, t) for t in tables] == before


def _ana(source: str, source_id: str, **extra: str) -> IncomingRecord:
    return incoming(source, source_id, given_name="Anabela", family_name="Quaresma", **extra)


def test_pairs_a_steward_called_distinct_are_left_alone(registry: Registry) -> None:
    a, b = load_unmatched(
        registry,
        [
            _ana("crm", "c1", email="anabela@q.example"),
            _ana("ats", "a1", email="anabela@q.example"),
        ],
        actor="legacy",
    )
    with registry.database.uow() as uow:
        uow.registry.add_not_a_match(a, b, actor="steward", reason="review", at=datetime.now(UTC))
        uow.commit()
    report = dedupe(registry)
    assert (report.skipped_not_a_match, report.merges, report.review_items) == (1, 0, 0)


def test_a_cluster_with_conflicting_evidence_merges_only_its_coherent_part(
    registry: Registry,
) -> None:
    """A links to B by email, B to C by phone, but A and C were born on different days:
    B joins one of them by its stronger link, and the other link goes to a steward."""
    a, b, c = load_unmatched(
        registry,
        [
            _ana("crm", "c1", email="anabela@q.example", birth_date="1990-01-02"),
            _ana("ats", "a1", email="anabela@q.example", phone="+34 612 345 678"),
            _ana("hris", "h1", phone="+34 612 345 678", birth_date="1971-09-30"),
        ],
        actor="legacy",
    )
    report = dedupe(registry)
    assert (report.clusters, report.incoherent_clusters) == (1, 1)
    assert (report.auto_merge_pairs, report.merges, report.review_items) == (1, 1, 1)
    persons = partition(registry)
    assert len(persons) == 2
    assert not any({("crm", "c1"), ("hris", "h1")} <= members for members in persons)
    with registry.database.engine.connect() as conn:
        (explanation,) = conn.scalars(select(ReviewItemRow.explanation)).all()
    assert explanation["decision"] == "incoherent_cluster"
    assert "conflicting_birth_date" in explanation["guards"]
    # Run again: nothing left to merge, and the steward is not asked twice.
    again = dedupe(registry)
    assert (again.merges, again.review_items, again.skipped_open_reviews) == (0, 0, 1)
    with registry.database.engine.connect() as conn:
        live = set(conn.scalars(select(PersonRow.id).where(PersonRow.status == "active")))
    assert len(live) == 2 and live <= {a, b, c}


def test_a_rehire_s_two_employee_ids_do_not_keep_the_records_apart(registry: Registry) -> None:
    """Two HRIS records with two employee ids: one human when the national id is one."""
    hired = dict(email="anabela@q.example", birth_date="1990-01-02")
    load_unmatched(
        registry,
        [
            _ana("hris", "h1", employee_id="E1", national_id="219-09-9999", **hired),
            _ana("hris", "h2", employee_id="E2", national_id="219-09-9999", **hired),
            _ana("hris", "h3", employee_id="E3", **hired),
        ],
        actor="legacy",
    )
    report = dedupe(registry)
    persons = partition(registry)
    assert {("hris", "h1"), ("hris", "h2")} in persons
    assert frozenset({("hris", "h3")}) in persons
    assert report.review_items >= 1


def test_components_are_the_same_whatever_the_edge_order() -> None:
    edges = [(5, 6), (1, 2), (2, 3), (9, 8), (3, 1)]
    expected = [[1, 2, 3], [5, 6], [8, 9]]
    for seed in range(5):
        shuffled = edges[:]
        random.Random(seed).shuffle(shuffled)
        assert components(shuffled) == expected


def test_online_and_batch_decide_the_same_for_the_same_pair(pg_registry: Registry) -> None:
    """Each pair alone: the online path matching A against a registry holding B, and the
    batch deciding on A and B. Pairs of one human and of two, covering every outcome."""
    records, truth = _generated(pg_registry, 400, seed=11)
    by_human: dict[str, list[IncomingRecord]] = defaultdict(list)
    for r in records:
        by_human[truth[(r.source, r.source_id)]].append(r)
    same = [(g[0], g[1]) for g in by_human.values() if len(g) > 1][:14]
    names = defaultdict(list)
    for r in records:
        names[str(r.data.get("family_name", "")).lower()].append(r)
    strangers = [
        (g[0], g[1])
        for g in names.values()
        if len(g) > 1
        and truth[(g[0].source, g[0].source_id)] != truth[(g[1].source, g[1].source_id)]
    ][:10]
    outcomes = defaultdict(int)
    for a, b in same + strangers:
        truncate(pg_registry)
        (b_id,) = load_unmatched(pg_registry, [b], actor="t")
        online = match_record(pg_registry, a)
        online_outcome = {"linked": "link", "review": "review", "created": "create"}[
            online.decision
        ]
        if online_outcome != "create" and online.person_id not in (None, b_id):
            pytest.fail("the online path named another person")
        (a_id,) = load_unmatched(pg_registry, [a], actor="t")
        decisions: dict = {}
        dedupe(pg_registry, dry_run=True, decisions=decisions)
        batch_outcome = decisions.get((min(a_id, b_id), max(a_id, b_id)), "create")
        assert (a.source_id, b.source_id, batch_outcome) == (
            a.source_id,
            b.source_id,
            online_outcome,
        )
        outcomes[batch_outcome] += 1
    assert outcomes["link"] >= 3 and outcomes["create"] >= 3


def test_a_killed_run_run_again_ends_as_an_uninterrupted_one(pg_registry: Registry) -> None:
    records, _ = _generated(pg_registry, 700, seed=3)
    load_unmatched(pg_registry, records, actor="legacy")
    dedupe(pg_registry)
    expected = partition(pg_registry)
    rnd = random.Random(2026)
    killed = 0
    for _ in range(5):
        truncate(pg_registry)
        load_unmatched(pg_registry, records, actor="legacy")
        killed += dedupe_killed(
            pg_registry.settings.database_url, rnd.randrange(1, 40), "--chunk", "3"
        )
        dedupe(pg_registry)
        assert partition(pg_registry) == expected
        assert sum(len(g) for g in expected) == len(records)
    assert killed == 5


def test_scoring_processes_and_writing_threads_change_nothing(pg_registry: Registry) -> None:
    """Blocks scored in forked processes and merges written by concurrent threads: the
    same pairs scored, the same decisions, the same persons and review items as one
    process writing alone."""
    records, _ = _generated(pg_registry, 900, seed=13)
    runs = []
    for workers in (1, 3):
        truncate(pg_registry)
        ids = load_unmatched(pg_registry, records, actor="legacy")
        # Person ids are new at each load; the records they were made for are not.
        record_of = {pid: (r.source, r.source_id) for pid, r in zip(ids, records, strict=True)}
        decisions: dict = {}
        report = dedupe(pg_registry, workers=workers, chunk=4, decisions=decisions)
        decided = {
            frozenset((record_of[a], record_of[b])): outcome
            for (a, b), outcome in decisions.items()
        }
        runs.append((report, decided, partition(pg_registry), _open_review_pairs(pg_registry)))
    (one, decided_one, persons_one, reviews_one) = runs[0]
    (three, decided_three, persons_three, reviews_three) = runs[1]
    assert one.merges > 50 and len(reviews_one) > 5
    assert three.workers_peak_rss_mib > 0  # the scoring ran in other processes
    counts = ("pairs_scored", "auto_merge_pairs", "clusters", "merges", "review_items")
    assert [getattr(three, c) for c in counts] == [getattr(one, c) for c in counts]
    assert decided_three == decided_one
    assert persons_three == persons_one
    assert reviews_three == reviews_one
    with pg_registry.database.engine.connect() as conn:
        assert verify(conn).ok


def _open_review_pairs(registry: Registry) -> set[frozenset[frozenset[tuple[str, str]]]]:
    """The open match items, each as the two persons' sets of records."""
    from mdm.store.tables import SourceRecordRow

    with registry.database.engine.connect() as conn:
        rows = conn.execute(select(SourceRecordRow.person_id, SourceRecordRow.source,
                                   SourceRecordRow.source_id)).all()  # fmt: skip
        items = conn.execute(
            select(ReviewItemRow.person_a, ReviewItemRow.person_b).where(
                ReviewItemRow.status == "open", ReviewItemRow.kind == "match"
            )
        ).all()
    held: dict[object, set[tuple[str, str]]] = defaultdict(set)
    for person, source, source_id in rows:
        held[person].add((source, source_id))
    return {frozenset((frozenset(held[a]), frozenset(held[b]))) for a, b in items}


def test_ingests_during_a_run_are_neither_lost_nor_merged_twice(pg_registry: Registry) -> None:
    records, _ = _generated(pg_registry, 900, seed=5)
    legacy, live = records[:600], records[600:]
    load_unmatched(pg_registry, legacy, actor="legacy")
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            for start in range(0, len(live), 10):
                ingest_many(pg_registry, live[start : start + 10], actor="online")
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=ingest)
    writer.start()
    dedupe(pg_registry, chunk=5)
    writer.join()
    assert errors == []
    groups = partition(pg_registry)
    held = [key for g in groups for key in g]
    assert len(held) == len(set(held)) == len(records)  # each record once, on a live person
    with pg_registry.database.engine.connect() as conn:
        assert verify(conn).ok


def test_since_looks_only_at_pairs_with_a_person_changed_since(registry: Registry) -> None:
    load_unmatched(
        registry,
        [_ana("crm", "c1", email="anabela@q.example"), _ana("ats", "a1", email="anabela@q.example"),
         incoming("crm", "c2", given_name="Bo", family_name="Chen", email="bo@chen.example")],
        actor="legacy",
    )  # fmt: skip
    cutoff = datetime.now(UTC)
    load_unmatched(
        registry,
        [incoming("hris", "h2", given_name="Bo", family_name="Chen", email="bo@chen.example")],
        actor="legacy",
    )
    report = dedupe(registry, since=cutoff)
    assert report.merges == 1  # Bo's two records; Anabela's pair predates the cutoff
    assert len(partition(registry)) == 3


@pytest.mark.parametrize("workers", [1, 3])
def test_the_read_puts_persons_in_id_order_with_their_records_together(
    registry: Registry, workers: int
) -> None:
    records, _ = _generated(registry, 600, seed=11)
    ingest_many(registry, records, actor="online")  # matched: persons of several records
    with registry.database.engine.connect() as conn:
        owners = conn.execute(
            select(SourceRecordRow.person_id, SourceRecordRow.source, SourceRecordRow.source_id)
        ).all()
    data, _, _, _ = _read(registry, lambda *_: None, frozenset(), workers=workers)
    assert data.columns is not None and len(data.columns) == len(owners)
    assert list(data.ids) == sorted({person for person, _, _ in owners})
    with registry.database.engine.connect() as conn:
        updated = dict(conn.execute(select(PersonRow.id, PersonRow.updated_at)).all())
    assert data.updated.tolist() == [epoch_microseconds(updated[p]) for p in data.ids]
    by_place = sorted((source, source_id) for _, source, source_id in owners)
    person_of = {(s, i): p for p, s, i in owners}
    ends = [*data.start[1:], len(data.owner)]
    assert max(b - a for a, b in zip(data.start, ends, strict=True)) > 1
    for k, (first, end) in enumerate(zip(data.start, ends, strict=True)):
        assert data.owner[first:end] == [k] * (end - first)
        places = [int(p) for p in data.places[first:end]]
        assert places == sorted(places)  # in (source, source_id) order within the person
        assert {person_of[by_place[p]] for p in places} == {data.ids[k]}


def test_a_read_in_parts_reads_what_one_process_reads(registry: Registry) -> None:
    # On PostgreSQL three processes read a range of pages each, in one snapshot; their
    # parts, merged, are the registry one process reads, value for value.
    records, _ = _generated(registry, 400, seed=5)
    ingest_many(registry, records, actor="online")
    one, *_ = _read(registry, lambda *_: None, frozenset({"ana"}), documents=True)
    three, *_ = _read(registry, lambda *_: None, frozenset({"ana"}), documents=True, workers=3)
    assert one.columns is not None and three.columns is not None
    assert (list(one.ids), one.start, one.owner) == (list(three.ids), three.start, three.owner)
    assert one.updated.tolist() == three.updated.tolist()
    assert one.places.tolist() == three.places.tolist() and one.documents == three.documents
    assert len(one.documents) == len(records)
    assert (one.columns.names, one.columns.values) == (three.columns.names, three.columns.values)
    assert [one.columns.record(r) for r in range(len(one.owner))] == [
        three.columns.record(r) for r in range(len(three.owner))
    ]


def test_the_parts_read_the_snapshot_the_read_began_with(registry: Registry) -> None:
    if registry.database.dialect != "postgresql":
        pytest.skip("only PostgreSQL reads the registry in parts")
    records, _ = _generated(registry, 60, seed=3)
    load_unmatched(registry, records[:40], actor="legacy")
    with registry.database.uow(consistent=True) as uow:
        snapshot = uow.registry.export_snapshot()
        assert snapshot is not None
        parts = uow.registry.feature_parts(2)
        load_unmatched(registry, records[40:], actor="legacy")  # committed meanwhile
        seen = [len(list(uow.registry.stream_match_features(parts[0])))]
        with registry.database.detached().uow(snapshot=snapshot) as other:
            seen.append(len(list(other.registry.stream_match_features(parts[1]))))
            assert len(other.registry.live_person_ids()[0]) == 40
        assert len(uow.registry.live_person_ids()[0]) == 40
    assert sum(seen) == 40 and min(seen) > 0
    with pytest.raises(ValueError, match="snapshot id"):
        registry.database.uow(snapshot="1'; DROP TABLE persons; --")


def test_a_part_fails_rather_than_wait_behind_a_lock_that_waits_for_the_read(
    registry: Registry,
) -> None:
    # An ALTER TABLE queued behind the read's lock would block a part's reader, and wait
    # for the read in turn: the part gives up instead of hanging the run.
    if registry.database.dialect != "postgresql":
        pytest.skip("only PostgreSQL reads the registry in parts")
    records, _ = _generated(registry, 20, seed=3)
    load_unmatched(registry, records, actor="legacy")
    locker = registry.database.engine.connect()
    with registry.database.uow(consistent=True) as uow:
        snapshot = uow.registry.export_snapshot()
        assert snapshot is not None
        parts = uow.registry.feature_parts(2)
        list(uow.registry.stream_match_features(parts[0]))  # the read holds its locks
        waiting = threading.Thread(
            target=lambda: locker.exec_driver_sql(
                "LOCK TABLE source_records IN ACCESS EXCLUSIVE MODE"
            )
        )
        waiting.start()
        with registry.database.engine.connect() as conn:
            for _ in range(500):  # until the lock request is queued
                queued = conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted "
                    "AND relation = 'source_records'::regclass"
                ).scalar()
                if queued:
                    break
                conn.rollback()
                threading.Event().wait(0.01)
        assert queued
        other = registry.database.detached()
        with (
            pytest.raises(LockNotAvailable),
            other.uow(snapshot=snapshot) as part,
        ):
            list(part.registry.stream_match_features(parts[1]))
    waiting.join()  # granted once the read ended
    locker.rollback()
    locker.close()


def test_the_read_places_records_in_python_string_order(registry: Registry) -> None:
    # Each pair is compared from the record first in (source, source_id) order: the
    # database must order as Python does (by code point), whatever its collation.
    ids = ["b", "B", "a-2", "a_2", "A2", "é", "e", "Z", "z", "ß", "10", "9", "ａ"]
    records = [incoming("crm", i, given_name="Ana", family_name=f"N{k}") for k, i in
               enumerate(ids)]  # fmt: skip
    load_unmatched(registry, records, actor="legacy")
    data, _, _, _ = _read(registry, lambda *_: None, frozenset())
    assert data.columns is not None
    # Each record's family name says which it is.
    places = {
        ("crm", ids[int((data.columns.record(r).family or "")[1:])]): int(data.places[r])
        for r in range(len(ids))
    }
    expected = sorted(places)
    assert [places[key] for key in expected] == list(range(len(expected)))
    # The records of each person are together, in that order, from its first record on.
    assert data.start == list(range(len(ids))) and data.owner == list(range(len(ids)))
