"""Matching quality on generated records with ground truth, through the real ingest flow.

    python -m tests.bench.eval_matching --records 10000

Ingests the records in batches into a fresh PostgreSQL database, then compares the
persons with the generator's truth: pairwise precision, recall and F1 of the links, the
review queue's size and its share of true matches, and the largest person.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import combinations, islice
from pathlib import Path
from uuid import UUID

from sqlalchemy import Connection, func, select, text

from fixtures.generator import generate
from mdm.config import Settings
from mdm.flow.block import candidate_keys
from mdm.flow.normalise import normalise, parse_timestamp
from mdm.flow.score import FellegiSunterScorer, Scorer
from mdm.model.errors import InvalidRecord
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.evaluation import LABEL_COLUMNS, evaluate, read_labels
from mdm.services.ingest import ingest_many
from mdm.services.training import train_model
from mdm.store.migrate import upgrade
from mdm.store.tables import ReviewItemRow, SourceRecordRow
from tests.bench.bench_ingest import _admin_engine, _url_for


def pairs_of(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for members in groups.values():
        found.update(combinations(sorted(members), 2))
    return found


def open_match_items(conn: Connection) -> list[tuple[UUID, UUID]]:
    """The match queue a steward faces: items a later merge answered are closed. Conflict
    items (a sensitive golden value changed) ask about one person, not a pair."""
    rows = conn.execute(
        select(ReviewItemRow.person_a, ReviewItemRow.person_b).where(
            ReviewItemRow.status == "open", ReviewItemRow.kind == "match"
        )
    )
    return [(a, b) for a, b in rows]


def blocking_recall(records: int, seed: int, cap: int) -> float:
    """Share of true pairs that share at least one blocking key held by at most `cap`
    records: the pairs the online path can ever compare directly."""
    keys_of: dict[str, frozenset[tuple[str, str]]] = {}
    humans: dict[str, list[str]] = defaultdict(list)
    holders: Counter[tuple[str, str]] = Counter()
    for g in generate(records, seed=seed):
        try:
            normalised = normalise(
                IncomingRecord(g.source, g.source_id, g.data), blind_index_key="eval"
            )
        except InvalidRecord:
            continue
        key = f"{g.source}/{g.source_id}"
        keys_of[key] = candidate_keys(normalised.features)
        holders.update(keys_of[key])
        humans[g.truth].append(key)
    shared = total = 0
    for members in humans.values():
        for a, b in combinations(members, 2):
            total += 1
            shared += any(holders[k] <= cap for k in keys_of[a] & keys_of[b])
    return shared / total if total else 1.0


def _fresh_registry(name: str, scorer: Scorer | None) -> Registry:
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    registry = Registry.from_settings(Settings(database_url=_url_for(name)))
    if scorer is not None:
        registry.scorer = scorer
    upgrade(registry.database.engine)
    return registry


def run(records: int, seed: int, scorer: Scorer | None, name: str = "mdm_eval") -> Registry:
    """Ingest the generated records through the batch flow and print the figures."""
    registry = _fresh_registry(name, scorer)
    truth: dict[str, str] = {}
    started = time.perf_counter()
    stream = generate(records, seed=seed)
    while chunk := list(islice(stream, 1000)):
        for g in chunk:
            truth[f"{g.source}/{g.source_id}"] = g.truth
        ingest_many(
            registry,
            [IncomingRecord(g.source, g.source_id, g.data, parse_timestamp(g.updated_at))
             for g in chunk],
            actor="eval",
        )  # fmt: skip
    elapsed = time.perf_counter() - started

    with registry.database.engine.connect() as conn:
        linked = conn.execute(
            select(SourceRecordRow.source, SourceRecordRow.source_id, SourceRecordRow.person_id)
        ).all()
        reviews = open_match_items(conn)
        conflicts = conn.scalar(
            select(func.count()).where(
                ReviewItemRow.status == "open", ReviewItemRow.kind == "conflict"
            )
        )

    by_person: dict[str, list[str]] = defaultdict(list)
    truth_of_person: dict[str, set[str]] = defaultdict(set)
    for source, source_id, person_id in linked:
        key = f"{source}/{source_id}"
        by_person[str(person_id)].append(key)
        truth_of_person[str(person_id)].add(truth[key])
    by_truth: dict[str, list[str]] = defaultdict(list)
    stored = set(truth_key for person in by_person.values() for truth_key in person)
    for key, human in truth.items():
        if key in stored:  # a record refused by validation is in neither set
            by_truth[human].append(key)
    predicted, actual = pairs_of(by_person), pairs_of(by_truth)
    true_positive = len(predicted & actual)
    precision = true_positive / len(predicted) if predicted else 1.0
    recall = true_positive / len(actual) if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    true_reviews = sum(1 for a, b in reviews if truth_of_person[str(a)] & truth_of_person[str(b)])
    sizes = Counter(len(m) for m in by_person.values())
    print(f"model {registry.scorer.version}: records {len(linked):,}  humans {len(by_truth):,}  "
          f"persons {len(by_person):,}  time {elapsed:.1f} s "
          f"({len(linked) / elapsed:,.0f} records/s)")  # fmt: skip
    print(f"  pairwise precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}  "
          f"(predicted {len(predicted):,}, true {len(actual):,})")  # fmt: skip
    share = true_reviews / len(reviews) if reviews else 0.0
    print(f"  review items {len(reviews):,} ({len(reviews) / len(linked):.1%} of records), "
          f"{share:.1%} true matches; conflict items {conflicts:,}")  # fmt: skip
    print(f"  largest person {max(sizes)} records", flush=True)
    check_with_evaluate(registry, records, truth, predicted | actual, by_person, reviews)
    return registry


def check_with_evaluate(
    registry: Registry,
    records: int,
    truth: dict[str, str],
    pairs: set[tuple[str, str]],
    by_person: dict[str, list[str]],
    reviews: Sequence[tuple[object, object]],
) -> None:
    """The same figures through `mdm evaluate`: the generator's truth as a labelled file
    (every true pair, every merged pair, one record pair per review item)."""
    labelled = set(pairs)
    for a, b in reviews:
        members_a, members_b = by_person.get(str(a)), by_person.get(str(b))
        if members_a and members_b:
            # A true pair if the two persons share a human: the item's verdict.
            x, y = min(
                ((x, y) for x in members_a for y in members_b),
                key=lambda p: truth[p[0]] != truth[p[1]],
            )
            labelled.add((min(x, y), max(x, y)))
    path = Path("reports") / f"labels-{records}.csv"
    path.parent.mkdir(exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(LABEL_COLUMNS)
        for a, b in sorted(labelled):
            out.writerow([*a.split("/", 1), *b.split("/", 1), int(truth[a] == truth[b])])
    figures = evaluate(registry, read_labels(path)).pairs
    assert figures is not None
    print(f"  mdm evaluate --labels {path}: precision {figures.precision:.4f}  "
          f"recall {figures.recall:.4f}  review true share "
          f"{figures.review_true_share or 0:.1%}", flush=True)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--database", default="mdm_eval", help="dropped and created afresh")
    parser.add_argument(
        "--train",
        action="store_true",
        help="then train on the registry so built and ingest again with the trained model",
    )
    args = parser.parse_args(argv)
    cap = Settings().max_block_size
    print(f"blocking recall {blocking_recall(args.records, args.seed, cap):.4f} "
          f"(true pairs sharing a key held by at most {cap} records)", flush=True)  # fmt: skip
    registry = run(args.records, args.seed, None, name=args.database)
    if args.train:
        started = time.perf_counter()
        parameters, report = train_model(registry, version=f"eval-{args.records}")
        print(f"trained in {time.perf_counter() - started:.1f} s: {report}", flush=True)
        registry.close()
        registry = run(args.records, args.seed, FellegiSunterScorer(parameters), name=args.database)
    registry.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
