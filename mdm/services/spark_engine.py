"""The batch dedupe's block, score and cluster stages on Apache Spark (`mdm dedupe
--engine spark`), for registries past one machine.

The registry stays in PostgreSQL. The run's records (their match features) are written to
Parquet where Spark and this process both reach it. On the executors, each batch of records
is made columns (flow/compare_many.py) and filed under its blocking keys by the in-process
engine's own code (flow/block_many.py); Spark counts the persons behind each key and leaves
out the generic ones (more persons than the block cap) before any record is shuffled to its
blocks, so a household address or a placeholder cannot stall a stage. The pairs of each
block are formed by a join, each pair once however many blocks it shares; each batch of
pairs is compared column by column by the in-process engine's comparison code, and only
the pairs worth a decision come back. The auto-merge graph's connected components are found
by label propagation in DataFrames. Decisions, coherence checks and writes stay with the
caller, through the same merge service as the in-process engine.

pyspark is an optional extra (`pip install .[spark]`); Java 17 or later must be on the
PATH (or JAVA_HOME).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import orjson

from mdm.flow.block import Key
from mdm.flow.block_many import EXACT_BITS, record_keys, without_generic
from mdm.flow.columns import (
    columns_of,
)
from mdm.flow.compare_many import (
    compare_pairs,
)
from mdm.flow.score import FellegiSunterScorer
from mdm.flow.score_many import (
    ComparisonWeights,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

# Rows per Parquet row group when the records are exported.
EXPORT_CHUNK = 100_000
# Pairs (or records) per batch handed to the executors' Python: larger batches spread the
# cost of building columns over more pairs.
ARROW_BATCH = 50_000
_WORTH_SCHEMA = "first long, second long, exact int"


@dataclass
class SparkOptions:
    master: str = "local[2]"
    # Where the exported records and the scored pairs are written: a path the driver and
    # every executor reach (a shared file system or object store on a cluster).
    workdir: Path | None = None
    conf: dict[str, str] = field(default_factory=dict)
    shuffle_partitions: int = 8


def _keys_of(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """(record, person, kind, value, changed) for every candidate key of every record."""
    import pandas as pd

    for rows in batches:
        columns = columns_of((orjson.loads(t) for t in rows["features"]), frozenset())
        keys = record_keys(columns)
        named = [keys.named(k) for k in range(len(keys.codes))]
        kinds = np.array([kind for kind, _ in named] or [""], dtype=object)
        values = np.array([value for _, value in named] or [""], dtype=object)
        # Typed columns: a batch without keys must still give Arrow its types.
        yield pd.DataFrame(
            {
                "record": pd.Series(rows["record"].to_numpy()[keys.record], dtype="int64"),
                "person": pd.Series(rows["person"].to_numpy()[keys.record], dtype="int64"),
                "kind": pd.Series(kinds[keys.key] if len(keys.key) else [], dtype="object"),
                "value": pd.Series(values[keys.key] if len(keys.key) else [], dtype="object"),
                "changed": pd.Series(rows["changed"].to_numpy()[keys.record], dtype="bool"),
            }
        )


def _block_comparer(scorer: FellegiSunterScorer, generic: frozenset[Key], floor: float) -> Any:
    """The function executors run over their share of block members, sorted by block (a
    block: its key, the exact kinds' bit of the key, its members with their features):
    every pair of records of two persons in a block, one of them changed, compared as the
    in-process engine compares them; the pairs worth a decision out (at least the review
    threshold less a margin, or an exact key shared). A pair in several blocks comes out
    once from each block it is worth a decision in; the caller keeps it once.

    Arrow batches end anywhere, so the rows of a batch's last block are held back and
    go with the next batch; a record's features are parsed once a batch however many of
    its blocks the batch holds."""

    def compare(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        held: pa.Table | None = None
        for batch in batches:
            table = pa.Table.from_batches([batch])
            if held is not None:
                table = pa.concat_tables([held, table])
            starts = _block_starts(table)
            last = int(starts[-1])
            held = table.slice(last)
            if last:
                yield _compare_blocks(table.slice(0, last), starts[:-1], scorer, generic, floor)
        if held is not None and held.num_rows:
            yield _compare_blocks(held, _block_starts(held), scorer, generic, floor)

    return compare


def _block_starts(table: pa.Table) -> np.ndarray:
    """The first row of each block in rows sorted by block key (kind, value)."""
    kind = table.column("kind").to_numpy(zero_copy_only=False)
    value = table.column("value").to_numpy(zero_copy_only=False)
    changes = (kind[1:] != kind[:-1]) | (value[1:] != value[:-1])
    return np.r_[0, np.flatnonzero(changes) + 1].astype(np.int64)


def _compare_blocks(
    table: pa.Table,
    starts: np.ndarray,
    scorer: FellegiSunterScorer,
    generic: frozenset[Key],
    floor: float,
) -> pa.RecordBatch:
    import pyarrow as pa

    record = table.column("record").to_numpy()
    # Each distinct record once, by sorting (numpy's hashing `unique` is slower here).
    order = np.argsort(record, kind="stable")
    ordered = record[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]]
    first_rows = order[new]
    local = np.empty(len(record), dtype=np.int64)
    local[order] = np.cumsum(new) - 1
    texts = table.column("features").take(first_rows).to_pylist()
    documents = [orjson.loads(text) for text in texts]
    person = table.column("person").to_numpy()[first_rows]
    changed = table.column("changed").to_numpy(zero_copy_only=False)[first_rows]
    places = table.column("ref").to_numpy()[first_rows]
    sizes = np.diff(np.r_[starts, len(record)])
    bits = table.column("bit").to_numpy()[starts]
    first, second, kinds = _block_pairs(local, sizes, bits, person, changed)
    columns = without_generic(columns_of(documents, scorer.known_given), generic)
    # Each pair one way round, from the record first in (source, source_id) order.
    flip = places[first] > places[second]
    a, b = np.where(flip, second, first), np.where(flip, first, second)
    confidences = ComparisonWeights(scorer, columns).confidences(compare_pairs(columns, a, b))
    worth = (confidences >= floor - 1e-9) | (kinds > 0)
    records = ordered[new]
    x, y = records[first[worth]], records[second[worth]]
    return pa.RecordBatch.from_arrays(
        [pa.array(np.minimum(x, y), pa.int64()), pa.array(np.maximum(x, y), pa.int64()),
         pa.array(kinds[worth].astype(np.int32), pa.int32())],
        names=["first", "second", "exact"],
    )  # fmt: skip


def _block_pairs(
    flat: np.ndarray, sizes: np.ndarray, bits: np.ndarray, person: np.ndarray, changed: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of each block's members (`flat`: local record indices, block after
    block, `sizes` long) of two persons, one of them changed, with the block's exact-kind
    bit."""
    starts = np.cumsum(sizes) - sizes
    firsts, seconds, kinds = [], [], []
    for size in np.unique(sizes[sizes > 1]):
        at = sizes == size
        left, right = np.triu_indices(int(size), 1)
        base = starts[at][:, None]
        x, y = flat[(base + left).ravel()], flat[(base + right).ravel()]
        keep = (person[x] != person[y]) & (changed[x] | changed[y])
        firsts.append(x[keep])
        seconds.append(y[keep])
        kinds.append(np.repeat(bits[at], len(left))[keep])
    if not firsts:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.int32)
    return np.concatenate(firsts), np.concatenate(seconds), np.concatenate(kinds)


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
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH))
        )
        for name, value in options.conf.items():
            builder = builder.config(name, value)
        self.spark: SparkSession = builder.getOrCreate()
        self._closed = False
        self.spark.sparkContext.setLogLevel("ERROR")

    def close(self) -> None:
        """Stop Spark (its JVM holds gigabytes the write stage can use) and remove a
        temporary workdir; once is enough."""
        if self._closed:
            return
        self._closed = True
        self.spark.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- export -----------------------------------------------------------------------------
    def export(self, rows: Iterable[tuple[int, int, int, bytes, bool]]) -> Path:
        """Write (record, person, ref, features, changed) rows to Parquet, a row group at
        a time: `ref` is the record's place in (source, source_id) order, `features` its
        match features as stored (JSON)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.workdir / "records.parquet"
        schema = pa.schema(
            [("record", pa.int64()), ("person", pa.int64()), ("ref", pa.int64()),
             ("features", pa.string()), ("changed", pa.bool_())]
        )  # fmt: skip
        with pq.ParquetWriter(path, schema) as writer:
            chunk: list[tuple[int, int, int, str, bool]] = []
            for record, person, ref, features, changed in rows:
                chunk.append((record, person, ref, features.decode(), changed))
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
    ) -> tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every candidate pair compared: how many, and those worth a decision (first,
        second, the bits of the exact kinds they share)."""
        from pyspark.sql import functions as F

        counts = self.spark.read.parquet(str(self.workdir / "key_counts.parquet"))
        # Generic keys are gone before the shuffle: only kept blocks' members move.
        kept = _kept(counts, cap).select("kind", "value")
        exact = F.lit(0)
        for kind, bit in EXACT_BITS.items():
            exact = F.when(F.col("kind") == kind, F.lit(bit)).otherwise(exact)
        members = (
            self.spark.read.parquet(str(self.workdir / "keys.parquet"))
            .join(kept, ["kind", "value"])
            .select("kind", "value", "record", "person", "changed", exact.alias("bit"))
        )
        members.write.mode("overwrite").parquet(str(self.workdir / "members.parquet"))
        members = self.spark.read.parquet(str(self.workdir / "members.parquet"))
        # How many distinct pairs there are: a pair in several blocks is one candidate.
        x, y = members.alias("x"), members.alias("y")
        total = (
            x.join(y, ["kind", "value"])
            .where(
                (F.col("x.record") < F.col("y.record"))
                & (F.col("x.person") != F.col("y.person"))
                & (F.col("x.changed") | F.col("y.changed"))
            )
            .select(F.col("x.record"), F.col("y.record"))
            .distinct()
            .count()
        )
        frame = self.spark.read.parquet(str(records)).select("record", "ref", "features")
        # Each block's members together, in a partition sorted by block: no per-block
        # lists to build, and the executors' Python reads flat Arrow columns.
        rows = (
            members.join(frame, "record")
            .repartition("kind", "value")
            .sortWithinPartitions("kind", "value")
            .select("kind", "value", "record", "person", "changed", "ref", "bit", "features")
        )
        worth = (
            rows.mapInArrow(_block_comparer(scorer, generic, floor), _WORTH_SCHEMA)
            .groupBy("first", "second")
            .agg(F.bit_or("exact").alias("exact"))
        )
        out = str(self.workdir / "worth.parquet")
        worth.write.mode("overwrite").parquet(out)
        found = cast("pd.DataFrame", self.spark.read.parquet(out).toPandas())
        order = np.lexsort((found["second"].to_numpy(), found["first"].to_numpy()))
        return total, (
            found["first"].to_numpy(dtype=np.int64)[order],
            found["second"].to_numpy(dtype=np.int64)[order],
            found["exact"].to_numpy(dtype=np.uint8)[order],
        )

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
