"""Order independence: the same records ingested in shuffled orders, each run followed by
the nightly dedupe, end in the same partition into persons; where two runs differ, the
records one run keeps apart are joined there by open review items (a steward decides),
never merged on one side by an automatic decision the other side did not even queue.

`make test` runs 1,000 records in 3 orders on SQLite; `make soak` runs 5,000 records in 10
orders on PostgreSQL (the bar)."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures.generator import generate
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.dedupe import dedupe
from mdm.services.ingest import ingest_many
from mdm.store.tables import ReviewItemRow, SourceRecordRow
from tests.conftest import settings_for, truncate
from tests.factories import Partition, partition, record_pairs

Pair = frozenset[tuple[str, str]]


def _records(count: int) -> list[IncomingRecord]:
    return [IncomingRecord(g.source, g.source_id, g.data) for g in generate(count, seed=11)]


def _resolve(
    registry: Registry, records: list[IncomingRecord]
) -> tuple[Partition, dict[tuple[str, str], object]]:
    """Ingest in this order, dedupe; the partition, and for each record the group of
    persons that open review items join it to (its own person when none does)."""
    for start in range(0, len(records), 500):
        ingest_many(registry, records[start : start + 500], actor="order")
    dedupe(registry)
    with registry.database.engine.connect() as conn:
        holder = {
            (source, source_id): person
            for source, source_id, person in conn.execute(
                select(SourceRecordRow.source, SourceRecordRow.source_id, SourceRecordRow.person_id)
            )
        }
        edges = conn.execute(
            select(ReviewItemRow.person_a, ReviewItemRow.person_b).where(
                ReviewItemRow.status == "open", ReviewItemRow.kind == "match"
            )
        ).all()
    parent: dict[object, object] = {}

    def root(x: object) -> object:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a, b in edges:
        parent[root(a)] = root(b)
    return partition(registry), {record: root(person) for record, person in holder.items()}


def _diverging(
    runs: list[tuple[Partition, dict[tuple[str, str], object]]],
) -> tuple[int, list[Pair]]:
    """How many runs end in the first run's partition; and the record pairs merged in one
    run and kept apart in another without open review items joining them there."""
    together = [record_pairs(p) for p, _ in runs]
    same = sum(p == runs[0][0] for p, _ in runs)
    divergent = []
    for i, (_, reviewed) in enumerate(runs):
        for j in range(len(runs)):
            if i == j:
                continue
            for pair in together[j] - together[i]:
                a, b = tuple(pair)
                if reviewed[a] != reviewed[b]:
                    divergent.append(pair)
    return same, divergent


def _run_orders(make: Iterator[Registry], records: list[IncomingRecord], orders: int) -> None:
    runs = []
    rng = random.Random(5)
    for n in range(orders):
        shuffled = list(records)
        if n:
            rng.shuffle(shuffled)
        registry = next(make)
        try:
            runs.append(_resolve(registry, shuffled))
        finally:
            registry.close()
    same, divergent = _diverging(runs)
    groups = sum(len(g) > 1 for g in runs[0][0])
    print(f"{same}/{orders} orders end in the first one's partition ({groups} merged persons)")
    assert groups > len(records) // 10, "the records hold duplicates to find"
    assert divergent == [], f"{same}/{orders} orders agree; {len(divergent)} divergent pairs"


def test_three_orders_of_1000_records_end_alike(tmp_path: Path, sqlite_template: Path) -> None:
    def registries() -> Iterator[Registry]:
        for n in range(3):
            path = tmp_path / f"order{n}.db"
            shutil.copy(sqlite_template, path)
            yield Registry.from_settings(settings_for(f"sqlite:///{path}"))

    _run_orders(registries(), _records(1_000), 3)


@pytest.mark.soak
def test_ten_orders_of_5000_records_end_alike(pg_url: str) -> None:
    def registries() -> Iterator[Registry]:
        while True:
            registry = Registry.from_settings(settings_for(pg_url))
            truncate(registry)
            yield registry

    _run_orders(registries(), _records(5_000), 10)
