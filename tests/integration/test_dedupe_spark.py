"""The Spark engine decides exactly as the in-process one: the same pairs scored, the same
auto-merge and review pairs, the same clusters, and the same registry once written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mdm.services.context import Registry
from mdm.services.dedupe import DedupeReport, dedupe
from mdm.services.ingest import load_unmatched
from mdm.services.spark_engine import SparkOptions
from tests.conftest import truncate
from tests.factories import partition
from tests.integration.test_dedupe import _generated

COUNTS = ("persons", "records", "blocks", "generic_blocks", "pairs_scored", "auto_merge_pairs",
          "review_pairs", "skipped_not_a_match", "clusters", "incoherent_clusters")  # fmt: skip


def _counts(report: DedupeReport) -> dict[str, int]:
    return {name: getattr(report, name) for name in COUNTS}


def test_spark_and_in_process_engines_make_the_same_decisions(
    pg_registry: Registry, tmp_path: Path
) -> None:
    records, _ = _generated(pg_registry, 1500, seed=11)
    load_unmatched(pg_registry, records[:1000], actor="legacy")
    later = datetime.now(UTC)
    load_unmatched(pg_registry, records[1000:], actor="legacy")
    spark = SparkOptions(master="local[2]", workdir=tmp_path)

    here: dict = {}
    there: dict = {}
    planned_here = dedupe(pg_registry, dry_run=True, decisions=here)
    planned_there = dedupe(pg_registry, dry_run=True, decisions=there, spark=spark)
    assert planned_here.auto_merge_pairs > 50 and planned_here.review_pairs > 5
    assert _counts(planned_there) == _counts(planned_here)
    assert there == here  # every person pair, with the same outcome
    assert [s.name for s in planned_there.stages][:4] == ["read", "export", "block", "score"]

    # `--since`: only pairs with a person changed since, on either engine.
    here_since: dict = {}
    there_since: dict = {}
    since_here = dedupe(pg_registry, dry_run=True, since=later, decisions=here_since)
    since_there = dedupe(pg_registry, dry_run=True, since=later, decisions=there_since, spark=spark)
    assert 0 < since_here.pairs_scored < planned_here.pairs_scored
    assert _counts(since_there) == _counts(since_here)
    assert there_since == here_since

    written = dedupe(pg_registry, spark=spark)
    by_spark = partition(pg_registry)
    truncate(pg_registry)
    load_unmatched(pg_registry, records[:1000], actor="legacy")
    load_unmatched(pg_registry, records[1000:], actor="legacy")
    in_process = dedupe(pg_registry)
    assert by_spark == partition(pg_registry)
    assert (written.merges, written.review_items) == (in_process.merges, in_process.review_items)
    assert written.merges > 50
