"""The batch dedupe's block, score and cluster stages on Apache Spark (`mdm dedupe
--engine spark`), for registries past one machine.

The registry stays in PostgreSQL. The run's records (their match features) are written to
Parquet where Spark and this process both reach it; Spark derives the blocking keys,
counts the persons behind each key and leaves out the generic ones (more persons than the
block cap) before any record is shuffled to its blocks, so a household address or a
placeholder cannot stall a stage; each block is scored by `score_block_pairs`, the pure
function the in-process engine calls; the auto-merge graph's connected components are
found by label propagation in DataFrames. Decisions, coherence checks and writes stay with
the caller, through the same merge service as the in-process engine.

pyspark is an optional extra (`pip install .[spark]`); Java 17 or later must be on the
PATH (or JAVA_HOME).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mdm.flow.block import Key, candidate_keys, without_generic
from mdm.flow.pairs import BlockMember, ScoredPair, score_block_pairs
from mdm.flow.score import FellegiSunterScorer, Score, ScoredComparison
from mdm.model.record import MatchFeatures

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

# Rows per Parquet row group when the records are exported.
EXPORT_CHUNK = 100_000
_PAIRS_SCHEMA = "first long, second long, keep boolean, exact string, score string"


@dataclass
class SparkOptions:
    master: str = "local[2]"
    # Where the exported records and the scored pairs are written: a path the driver and
    # every executor reach (a shared file system or object store on a cluster).
    workdir: Path | None = None
    conf: dict[str, str] = field(default_factory=dict)
    shuffle_partitions: int = 8


def score_json(score: Score) -> str:
    """A score as text that reads back to the same floats (JSON keeps a float's repr)."""
    return json.dumps(
        [score.confidence, score.name_similarity, score.model,
         [[c.attribute, c.level, c.similarity, c.weight] for c in score.comparisons]]
    )  # fmt: skip


def score_from_json(text: str) -> Score:
    confidence, name_similarity, model, comparisons = json.loads(text)
    return Score(
        confidence,
        name_similarity,
        tuple(ScoredComparison(a, level, sim, weight) for a, level, sim, weight in comparisons),
        model,
    )


def _block_scorer(scorer: FellegiSunterScorer, generic: frozenset[Key], floor: float) -> Any:
    """The function executors run over batches of blocks (a block: its key and its members'
    rows): scored pairs out. Many blocks per batch, so a small block costs no more than its
    pairs; a record's features are read once per batch however many blocks hold it."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        for blocks in batches:
            read: dict[int, tuple[frozenset[Key], MatchFeatures]] = {}
            first: list[int] = []
            second: list[int] = []
            keep: list[bool] = []
            exact: list[str] = []
            scores: list[str] = []
            for kind, value, rows in zip(blocks["kind"], blocks["value"], blocks["members"],
                                         strict=True):  # fmt: skip
                members = []
                for row in sorted(rows, key=lambda r: r["record"]):
                    record = int(row["record"])
                    if record not in read:
                        features = MatchFeatures.from_json(json.loads(row["features"]))
                        read[record] = (
                            candidate_keys(features),
                            without_generic(features, generic),
                        )
                    keys, features = read[record]
                    members.append(
                        BlockMember(record, int(row["person"]), (row["source"], row["source_id"]),
                                    keys, features, bool(row["changed"]))
                    )  # fmt: skip
                for pair in score_block_pairs((kind, value), members, scorer, generic):
                    first.append(pair.first)
                    second.append(pair.second)
                    worth = pair.worth_deciding(floor)
                    keep.append(worth)
                    exact.append(",".join(sorted(pair.exact)))
                    # Only a pair the policy decides needs its comparisons back.
                    scores.append(score_json(pair.score) if worth else "")
            # Typed columns: a batch without pairs must still give Arrow its types.
            yield pd.DataFrame(
                {
                    "first": pd.Series(first, dtype="int64"),
                    "second": pd.Series(second, dtype="int64"),
                    "keep": pd.Series(keep, dtype="bool"),
                    "exact": pd.Series(exact, dtype="object"),
                    "score": pd.Series(scores, dtype="object"),
                }
            )

    return score


def _keys_of(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """(record, person, kind, value, changed) for every candidate key of every record."""
    import pandas as pd

    for rows in batches:
        out: dict[str, list[Any]] = {
            "record": [], "person": [], "kind": [], "value": [], "changed": []
        }  # fmt: skip
        for record, person, text, changed in zip(
            rows["record"], rows["person"], rows["features"], rows["changed"], strict=True
        ):
            for kind, value in candidate_keys(MatchFeatures.from_json(json.loads(text))):
                out["record"].append(record)
                out["person"].append(person)
                out["kind"].append(kind)
                out["value"].append(value)
                out["changed"].append(bool(changed))
        yield pd.DataFrame(
            {
                "record": pd.Series(out["record"], dtype="int64"),
                "person": pd.Series(out["person"], dtype="int64"),
                "kind": pd.Series(out["kind"], dtype="object"),
                "value": pd.Series(out["value"], dtype="object"),
                "changed": pd.Series(out["changed"], dtype="bool"),
            }
        )


class SparkEngine:
    """One Spark session for one run; `close` stops it and removes a temporary workdir."""

    def __init__(self, options: SparkOptions) -> None:
        from pyspark.sql import SparkSession

        # Executors run this interpreter (it has mdm and the scorer's libraries).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        self.options = options
        self._own_workdir = options.workdir is None
        self.workdir = options.workdir or Path(tempfile.mkdtemp(prefix="mdm-spark-"))
        builder = (
            SparkSession.builder.master(options.master)
            .appName("mdm-dedupe")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(options.shuffle_partitions))
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        )
        for name, value in options.conf.items():
            builder = builder.config(name, value)
        self.spark: SparkSession = builder.getOrCreate()
        self.spark.sparkContext.setLogLevel("ERROR")

    def close(self) -> None:
        self.spark.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- export -----------------------------------------------------------------------------
    def export(
        self,
        rows: Iterable[tuple[int, int, str, str, dict[str, Any], bool]],
    ) -> Path:
        """Write (record, person, source, source_id, features, changed) rows to Parquet, a
        row group at a time."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.workdir / "records.parquet"
        schema = pa.schema(
            [("record", pa.int64()), ("person", pa.int64()), ("source", pa.string()),
             ("source_id", pa.string()), ("features", pa.string()), ("changed", pa.bool_())]
        )  # fmt: skip
        with pq.ParquetWriter(path, schema) as writer:
            chunk: list[tuple[int, int, str, str, str, bool]] = []
            for record, person, source, source_id, features, changed in rows:
                chunk.append((record, person, source, source_id, json.dumps(features), changed))
                if len(chunk) == EXPORT_CHUNK:
                    writer.write_table(_table(chunk, schema))
                    chunk = []
            if chunk:
                writer.write_table(_table(chunk, schema))
        return path

    # -- block and score -------------------------------------------------------------------
    def block(self, records: Path, cap: int) -> tuple[int, frozenset[Key]]:
        """Count the persons behind every key: the blocks to score (two persons up to
        `cap`) and the generic keys (more than `cap`)."""
        from pyspark.sql import functions as F

        frame = self.spark.read.parquet(str(records))
        keys = frame.select("record", "person", "features", "changed").mapInPandas(
            _keys_of,  # type: ignore[arg-type]
            "record long, person long, kind string, value string, changed boolean",
        )
        keys.write.mode("overwrite").parquet(str(self.workdir / "keys.parquet"))
        keys = self.spark.read.parquet(str(self.workdir / "keys.parquet"))
        # A block none of whose persons changed since the last run (`--since`) is not scored.
        counts = keys.groupBy("kind", "value").agg(
            F.countDistinct("person").alias("persons"), F.max("changed").alias("changed")
        )
        counts.write.mode("overwrite").parquet(str(self.workdir / "key_counts.parquet"))
        counts = self.spark.read.parquet(str(self.workdir / "key_counts.parquet"))
        generic = frozenset(
            (r["kind"], r["value"]) for r in counts.where(F.col("persons") > cap).collect()
        )
        return _kept(counts, cap).count(), generic

    def score(
        self,
        records: Path,
        cap: int,
        generic: frozenset[Key],
        scorer: FellegiSunterScorer,
        floor: float,
    ) -> tuple[int, list[ScoredPair]]:
        """Score every block; the number of pairs scored and those worth a decision."""
        from pyspark.sql import functions as F

        counts = self.spark.read.parquet(str(self.workdir / "key_counts.parquet"))
        kept = _kept(counts, cap).select("kind", "value")
        # Generic keys are gone before the shuffle: only kept blocks' members move.
        member = F.struct("record", "person", "source", "source_id", "features", "changed")
        blocks = (
            self.spark.read.parquet(str(self.workdir / "keys.parquet"))
            .join(kept, ["kind", "value"])
            .select("kind", "value", "record")
            .join(self.spark.read.parquet(str(records)), "record")
            .groupBy("kind", "value")
            .agg(F.collect_list(member).alias("members"))
        )
        scored = blocks.mapInPandas(
            _block_scorer(scorer, generic, floor),
            _PAIRS_SCHEMA,
        )
        out = str(self.workdir / "pairs.parquet")
        scored.write.mode("overwrite").parquet(out)
        pairs = self.spark.read.parquet(out)
        total = pairs.count()
        worth = [
            ScoredPair(
                int(r["first"]),
                int(r["second"]),
                score_from_json(r["score"]),
                frozenset(r["exact"].split(",")) if r["exact"] else frozenset(),
            )
            for r in pairs.where("keep").toLocalIterator()
        ]
        return total, worth

    # -- cluster ----------------------------------------------------------------------------
    def components(self, edges: Sequence[tuple[int, int]]) -> list[list[int]]:
        """Connected components of the auto-merge graph by label propagation: every node
        takes the least label among itself and its neighbours until none changes. Each
        component sorted, in order of its least member, as `flow.cluster.components`."""
        from pyspark.sql import functions as F

        if not edges:
            return []
        both = [(a, b) for a, b in edges] + [(b, a) for a, b in edges]
        links = self.spark.createDataFrame(both, "src long, dst long").cache()
        labels = links.select(F.col("src").alias("node"), F.col("src").alias("label")).distinct()
        labels = labels.localCheckpoint()
        while True:
            proposed = (
                links.join(labels, links.src == labels.node)
                .select(F.col("dst").alias("node"), F.col("label"))
                .union(labels)
                .groupBy("node")
                .agg(F.min("label").alias("label"))
                .localCheckpoint()
            )
            moved = (
                proposed.alias("n")
                .join(labels.alias("o"), "node")
                .where(F.col("n.label") != F.col("o.label"))
                .count()
            )
            labels = proposed
            if moved == 0:
                break
        groups: dict[int, list[int]] = {}
        for row in labels.toLocalIterator():
            groups.setdefault(int(row["label"]), []).append(int(row["node"]))
        links.unpersist()
        return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def _kept(counts: DataFrame, cap: int) -> DataFrame:
    """The blocks to score: two persons up to `cap`, one of them changed."""
    from pyspark.sql import functions as F

    return counts.where((F.col("persons") >= 2) & (F.col("persons") <= cap) & F.col("changed"))


def _table(chunk: list[tuple[Any, ...]], schema: Any) -> Any:
    import pyarrow as pa

    columns = list(zip(*chunk, strict=True))
    return pa.Table.from_arrays(
        [pa.array(col, type=schema.field(k).type) for k, col in enumerate(columns)], schema=schema
    )
