"""`make bench`: the Spark engine's blocking and scoring on generated features, straight
into Parquet (no database): how a registry of millions fares on `local[2]` with the skew
guards (generic keys dropped before the shuffle, blocks capped).

Set-up (not measured): N generator records normalised into match features and written to
Parquet, one person each. Measured: the block stage (keys derived on the executors,
persons counted per key, generic keys dropped) and the score stage (the pairs of the kept
blocks formed once each, compared column by column on the executors, those worth a
decision collected), with the time of each and the peak resident memory of Spark's JVM
(the driver and, in local mode, the executor) and of its Python workers.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from fixtures.generator import generate
from mdm.config import load_settings
from mdm.model.errors import InvalidRecord
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.sources import prepare
from mdm.services.spark_engine import SparkEngine, SparkOptions
from tests.bench.bench_ingest import _children


def features(registry: Registry, records: int, seed: int) -> Iterator[
    tuple[int, int, int, bytes, bool]
]:  # fmt: skip
    """(record, person, ref, features, changed): generated records, one person each, in
    (source, source_id) order as they come."""
    n = 0
    for g in generate(records, seed=seed):
        try:
            prepared = prepare(registry, IncomingRecord(g.source, g.source_id, g.data))
        except InvalidRecord:
            continue
        yield n, n, n, orjson.dumps(prepared.features.as_json()), True
        n += 1
        if n % 250_000 == 0:
            print(f"  set-up: {n:,} records' features written", flush=True)


class PeakMemory:
    """Peak resident memory (MiB) of this process's descendants: Spark's JVM and its Python
    workers, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.jvm = 0.0
        self.workers = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            jvm = workers = 0
            for pid in _descendants(os.getpid()):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    continue
                rss = int(status.split("VmRSS:")[1].split()[0]) if "VmRSS:" in status else 0
                if name == "java":
                    jvm += rss
                else:
                    workers += rss
            self.jvm = max(self.jvm, jvm / 1024)
            self.workers = max(self.workers, workers / 1024)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--executor-memory", default="8g", help="the driver's, in local mode")
    parser.add_argument("--workdir", type=Path, default=Path("reports/spark-bench"))
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; Spark {args.master}, "
          f"memory {args.executor_memory}")  # fmt: skip
    args.workdir.mkdir(parents=True, exist_ok=True)
    options = SparkOptions(
        master=args.master,
        workdir=args.workdir,
        conf={"spark.driver.memory": args.executor_memory,
              "spark.executor.memory": args.executor_memory},
        shuffle_partitions=64,
    )  # fmt: skip
    registry = Registry.from_settings(load_settings(database_url="sqlite://"))
    memory = PeakMemory()
    engine = SparkEngine(options)
    try:
        started = time.perf_counter()
        records = engine.export(features(registry, args.records, seed=42))
        print(f"set-up: {args.records:,} records' features in Parquet in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        scorer, cap = registry.scorer, registry.settings.max_block_size
        floor = registry.thresholds.review

        started = time.perf_counter()
        blocks, generic = engine.block(records, cap)
        block_s = time.perf_counter() - started
        started = time.perf_counter()
        pairs_scored, (worth, _, _) = engine.score(records, cap, generic, scorer, floor)
        score_s = time.perf_counter() - started
    finally:
        engine.close()
        memory.stop()
    print(f"block: {block_s:.1f} s ({blocks:,} blocks, {len(generic):,} generic keys dropped "
          f"before the shuffle)")  # fmt: skip
    print(f"score: {score_s:.1f} s ({pairs_scored:,} pairs scored, {len(worth):,} worth a "
          f"decision)")  # fmt: skip
    print(f"peak resident memory: Spark JVM {memory.jvm:,.0f} MiB, Python workers "
          f"{memory.workers:,.0f} MiB (all of them together)")  # fmt: skip


if __name__ == "__main__":
    main()
