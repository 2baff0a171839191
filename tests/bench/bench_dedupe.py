"""`make bench`: the nightly dedupe on PostgreSQL.

Set-up (not measured): generator records taken in without matching (`load_unmatched`,
each record its own person: a legacy load for the nightly job to resolve) into a seed
database, copied for each run (`CREATE DATABASE ... TEMPLATE`). Measured: `dedupe` end
to end (read, block, score, decide, cluster, write) with its time and peak memory per
stage; precision and recall of the resulting partition against the generator's truth;
runs SIGKILLed at random points of the write stage then run again, whose final
partition must equal the uninterrupted run's; an ingest's latency while a dedupe runs,
against its idle latency; with `--spark`, whether the Spark engine decides alike.

`--online N`: the same on the registry the nightly run meets in production, one built by
the online path (the ingest bench's seed of N persons, about 1.45 records each, every
record matched as it arrived), where the job finds what the online path could not see
when the records came in; first `mdm dedupe` in a process of its own, timed from its start
to its exit with the memory of its workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from itertools import islice
from uuid import UUID

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from fixtures.generator import generate
from mdm.config import load_settings
from mdm.model.errors import InvalidRecord
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.dedupe import dedupe
from mdm.services.ingest import ingest_many, load_unmatched
from mdm.services.sources import prepare
from mdm.store.tables import SourceRecordRow
from tests.bench.bench_ingest import RECORDS_PER_PERSON, build_seed, prewarm, seed_stream
from tests.bench.bench_webhooks import BENCH_URL, fresh_database
from tests.bench.eval_matching import open_match_items
from tests.databases import copy_database
from tests.factories import Partition, dedupe_killed, partition, record_pairs


def _admin():  # type: ignore[no-untyped-def]
    return create_engine(make_url(BENCH_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")


def _copy(template: str, name: str) -> str:
    return copy_database(BENCH_URL, template, name)


def seed(
    records: int, *, reuse: bool = False, with_truth: bool = True
) -> tuple[str, dict[tuple[str, str], str]]:
    """The seed database's name and the generator's truth (empty without `with_truth`)."""
    name = f"mdm_bench_dedupe_seed_{records}"
    if reuse:
        with _admin().connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}):
                known = generate(records, seed=42) if with_truth else ()
                truth = {(g.source, g.source_id): g.truth for g in known}
                print(f"set-up: the seed database {name} of an earlier run")
                return name, truth
    url = fresh_database(name)
    registry = Registry.from_settings(load_settings(database_url=url))
    truth: dict[tuple[str, str], str] = {}
    batch: list[IncomingRecord] = []
    started = time.perf_counter()
    for g in generate(records, seed=42):
        record = IncomingRecord(g.source, g.source_id, g.data)
        try:
            prepare(registry, record)
        except InvalidRecord:
            continue
        truth[(g.source, g.source_id)] = g.truth
        batch.append(record)
        if len(batch) == 2000:
            load_unmatched(registry, batch, actor="seed")
            batch = []
    if batch:
        load_unmatched(registry, batch, actor="seed")
    # Vacuumed and analysed as autovacuum would leave a registry loaded long before the
    # nightly run: the planner's estimates and the visibility map of a bulk load are empty.
    autocommit = registry.database.engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
    registry.close()
    print(f"set-up: {len(truth):,} records (one person each) in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    return make_url(url).database or "", truth


def _prewarm(registry: Registry) -> None:
    """Set-up, not measured: the registry in PostgreSQL's buffers, as on a server whose
    live API reads it all day, rather than a database copied a moment ago."""
    with registry.database.engine.connect() as conn:
        prewarm(conn)


def concurrent_ingest(
    template: str, idle_records: int = 600, nice: int = 10, chunk: int = 25, workers: int = 2
) -> None:
    """One client ingesting records one at a time, idle and then for as long as a dedupe
    (its own process) runs: p50/p99 over the run and within each of its stages, and every
    record stored."""
    url = _copy(template, "mdm_bench_dedupe")
    registry = Registry.from_settings(load_settings(database_url=url))

    def live() -> Iterator[IncomingRecord]:
        # Drawn as needed: a run of a million persons outlasts thousands of ingests.
        for g in generate(10_000_000, seed=777):
            record = IncomingRecord(g.source, "live-" + g.source_id, g.data)
            try:
                prepare(registry, record)
            except InvalidRecord:
                continue
            yield record

    records = live()

    def timed(record: IncomingRecord) -> float:
        started = time.perf_counter()
        ingest_many(registry, [record], actor="live")
        return (time.perf_counter() - started) * 1000

    idle = sorted(timed(record) for record in islice(records, idle_records))
    env = {**os.environ, "MDM_DATABASE_URL": url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdm.cli", "dedupe", "--nice", str(nice), "--chunk", str(chunk),
         "--workers", str(workers)],
        env=env, text=True,
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    stage = ["start"]  # the stage of the run's last progress line

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("dedupe "):
                stage[0] = line.split()[1]

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    by_stage: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if proc.poll() is not None:
            break
        now = stage[0]
        by_stage[now].append(timed(record))
    proc.wait()
    watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"mdm dedupe exited with {proc.returncode}")
    busy = sorted(ms for values in by_stage.values() for ms in values)
    with registry.database.engine.connect() as conn:
        stored = conn.scalar(select(func.count()).where(SourceRecordRow.source_id.like("live-%")))
    registry.close()

    def p(values: list[float], q: float) -> float:
        return values[max(int(q * len(values)) - 1, 0)]

    ratio = p(busy, 0.99) / p(idle, 0.99)
    print(f"ingest while the dedupe runs (dedupe at nice {nice}, {workers} workers): idle p50 "
          f"{p(idle, 0.5):.1f} / p99 {p(idle, 0.99):.1f} ms; busy ({len(busy):,} ingests) p50 "
          f"{p(busy, 0.5):.1f} / p99 {p(busy, 0.99):.1f} ms "
          f"({ratio:.1f}x, {'meets' if ratio <= 3 else 'MISSES'} the 3x bar); "
          f"{stored:,} of {len(idle) + len(busy):,} records stored")  # fmt: skip
    for name, values in by_stage.items():
        values.sort()
        print(f"  during {name:8s} {len(values):6,} ingests, p50 {p(values, 0.5):5.1f} / "
              f"p99 {p(values, 0.99):5.1f} ms")  # fmt: skip


class _TreeMemory:
    """The largest memory a process and its children held together, sampled in a thread:
    the sum of their proportional set sizes, in which a page they share counts once (their
    resident sizes would count a forked worker's shared pages in each process)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.peak_mib = 0.0
        self._pid = pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(every,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self, every: float) -> None:
        while not self._done.wait(every):
            total = sum(_pss_kib(pid) for pid in _tree(self._pid))
            self.peak_mib = max(self.peak_mib, total / 1024)


def _tree(pid: int) -> list[int]:
    pids, k = [pid], 0
    while k < len(pids):
        try:
            with open(f"/proc/{pids[k]}/task/{pids[k]}/children") as f:
                pids.extend(int(c) for c in f.read().split())
        except OSError:
            pass  # ended meanwhile
        k += 1
    return pids


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass  # ended meanwhile
    return 0


def online_seed(persons: int) -> tuple[str, dict[tuple[str, str], str]]:
    """The ingest bench's seed of `persons` persons, built by the online path when missing
    (set-up), and the generator's truth for its records."""
    seed_db = f"{make_url(BENCH_URL).database}_seed_{persons}"
    preload = int(persons * RECORDS_PER_PERSON)
    with _admin().connect() as conn:
        found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": seed_db})
    if not found:
        print(f"set-up: building {seed_db} through the online path", flush=True)
        build_seed(seed_db, persons, preload)
    truth = {(g.source, g.source_id): g.truth for g in islice(seed_stream(preload), preload)}
    return seed_db, truth


def online(
    template: str,
    *,
    chunk: int,
    workers: int,
    spark: str | None = None,
    memory: str = "6g",
    partitions: int = 16,
) -> None:
    """`mdm dedupe` on a copy of a registry built by the online path, in its own process
    as the nightly job runs: from its start to its exit, with the memory of the run and
    its workers; with `spark`, the Spark engine on that master."""
    url = _copy(template, "mdm_bench_dedupe")
    with create_engine(url).connect() as conn:
        prewarm(conn)
        conn.commit()
    report_file = os.path.join(tempfile.mkdtemp(), "dedupe.json")
    env = {**os.environ, "MDM_DATABASE_URL": url}
    started = time.perf_counter()
    engine = (
        ["--engine", "spark", "--master", spark, "--spark-conf", f"spark.driver.memory={memory}",
         "--spark-conf", f"spark.sql.shuffle.partitions={partitions}"]
        if spark else []
    )  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "mdm.cli", "dedupe", "--report", report_file,
         "--chunk", str(chunk), "--workers", str(workers), *engine],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    tree = _TreeMemory(process.pid) if not spark else None
    if process.wait() != 0:
        raise SystemExit(f"mdm dedupe exited with {process.returncode}")
    took = time.perf_counter() - started
    if tree is not None:
        tree.stop()
    with open(report_file) as f:
        report = json.load(f)
    os.unlink(report_file)
    print(f"dedupe{' on Spark (' + spark + ')' if spark else ''} of {report['persons']:,} "
          f"persons ({report['records']:,} records) built by the online path: {took:.1f} s, "
          "the process started to its exit")  # fmt: skip
    for stage in report["stages"]:
        print(f"  {stage['name']:8s} {stage['seconds']:7.2f} s  peak RSS "
              f"{stage['peak_rss_mib']:,.0f} MiB")  # fmt: skip
    print(
        f"  {sum(s['seconds'] for s in report['stages']):.1f} s over the stages; worker "
        f"processes: peak RSS {report['workers_peak_rss_mib']:,.0f} MiB each at most"
    )
    if tree is not None:
        print(f"  the process and its workers together: peak {tree.peak_mib:,.0f} MiB "
              "(proportional set sizes: shared pages counted once; every 0.1 s)")  # fmt: skip
    print(f"  {report['pairs_scored']:,} pairs scored, {report['clusters']:,} clusters "
          f"({report['incoherent_clusters']:,} incoherent), {report['merges']:,} merges, "
          f"{report['review_items']:,} review items ({report['skipped_open_reviews']:,} pairs "
          "already before a steward)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--online", type=int, default=None, metavar="PERSONS",
        help="Only the run on a registry of this many persons built by the online path",
    )  # fmt: skip
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--reuse-seed", action="store_true", help="Keep an earlier seed")
    parser.add_argument(
        "--no-concurrent", action="store_true", help="Skip the ingest latency measurement"
    )
    parser.add_argument("--nice", type=int, default=10, help="`mdm dedupe --nice` while ingesting")
    parser.add_argument("--chunk", type=int, default=25, help="`mdm dedupe --chunk`")
    parser.add_argument("--workers", type=int, default=2, help="`mdm dedupe --workers`")
    parser.add_argument(
        "--spark", default=None, metavar="MASTER",
        help="Also run the Spark engine on this master (local[2]) and compare its decisions",
    )  # fmt: skip
    parser.add_argument("--spark-only", action="store_true", help="Skip the in-process run")
    parser.add_argument(
        "--spark-memory", default="6g",
        help="Spark's driver memory: in local mode, the executor's as well",
    )  # fmt: skip
    parser.add_argument(
        "--spark-partitions", type=int, default=16, help="spark.sql.shuffle.partitions"
    )
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    if args.online:
        template, truth = online_seed(args.online)
        online(template, chunk=args.chunk, workers=args.workers, spark=args.spark,
               memory=args.spark_memory, partitions=args.spark_partitions)  # fmt: skip
    else:
        template, truth = seed(args.records, reuse=args.reuse_seed)

    if args.spark_only:
        compare_spark(template, args.spark or "local[2]", None, None, args.spark_memory,
                      args.spark_partitions)  # fmt: skip
        return
    url = _copy(template, "mdm_bench_dedupe")
    registry = Registry.from_settings(load_settings(database_url=url))
    _prewarm(registry)
    started = time.perf_counter()
    decided: dict[tuple[UUID, UUID], str] = {}
    report = dedupe(registry, decisions=decided, chunk=args.chunk, workers=args.workers)
    took = time.perf_counter() - started
    expected = partition(registry)
    registry.close()
    humans: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for key, human in truth.items():
        humans[human].add(key)
    found, true = record_pairs(expected), record_pairs({frozenset(m) for m in humans.values()})
    hits = len(found & true)
    print(f"dedupe of {report.persons:,} persons: {took:.1f} s end to end, in this process")
    for stage in report.stages:
        print(f"  {stage.name:8s} {stage.seconds:7.2f} s  peak RSS {stage.peak_rss_mib:,.0f} MiB")
    if report.workers_peak_rss_mib:
        print(f"  scoring processes: peak RSS {report.workers_peak_rss_mib:,.0f} MiB each "
              f"at most ({args.workers - 1} beside this one)")  # fmt: skip
    print(f"  {report.pairs_scored:,} pairs scored, {report.clusters:,} clusters "
          f"({report.incoherent_clusters:,} incoherent), {report.merges:,} merges, "
          f"{report.review_items:,} review items")  # fmt: skip
    print(f"  partition: precision {hits / max(len(found), 1):.4f}, "
          f"recall {hits / max(len(true), 1):.4f} over {len(true):,} true pairs; largest "
          f"person {max(map(len, expected))} records")  # fmt: skip
    items, sure = review_quality(url, truth)
    print(f"  match review items: {items:,} ({items / max(report.records, 1):.1%} of records), "
          f"{sure / max(items, 1):.1%} of them one human")  # fmt: skip

    rnd = random.Random(9)
    same = 0
    for n in range(args.kills):
        url = _copy(template, "mdm_bench_dedupe")
        points = max(report.clusters // args.chunk, 2)  # progress lines of the merges
        options = ("--chunk", str(args.chunk), "--workers", str(args.workers))
        killed = dedupe_killed(url, rnd.randrange(1, points), *options)
        registry = Registry.from_settings(load_settings(database_url=url))
        dedupe(registry, chunk=args.chunk, workers=args.workers)
        equal = partition(registry) == expected
        same += equal
        registry.close()
        print(f"  SIGKILL run {n + 1}: killed={killed}, rerun partition equal: {equal}")
    if args.kills:
        print(f"killed and rerun: {same} of {args.kills} end in the uninterrupted partition")
    if not args.no_concurrent:
        concurrent_ingest(template, nice=args.nice, chunk=args.chunk, workers=args.workers)
    if args.spark:
        compare_spark(template, args.spark, expected, decided, args.spark_memory,
                      args.spark_partitions)  # fmt: skip


def review_quality(url: str, truth: dict[tuple[str, str], str]) -> tuple[int, int]:
    """The open match review items, and how many of them put one human's records before
    the steward (by the generator's truth)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        owners = conn.execute(
            select(SourceRecordRow.person_id, SourceRecordRow.source, SourceRecordRow.source_id)
        ).all()
        items = open_match_items(conn)
    engine.dispose()
    humans: dict[UUID, set[str]] = defaultdict(set)
    for person, source, source_id in owners:
        humans[person].add(truth[(source, source_id)])
    return len(items), sum(1 for a, b in items if humans[a] & humans[b])


def compare_spark(
    template: str,
    master: str,
    expected: Partition | None,
    decided: dict[tuple[UUID, UUID], str] | None,
    memory: str = "6g",
    partitions: int = 16,
) -> None:
    """The Spark engine on a copy of the seed: its stages, and whether it decides exactly
    as the in-process run did (every person pair's outcome and the final partition)."""
    from mdm.services.spark_engine import SparkOptions

    url = _copy(template, "mdm_bench_dedupe")
    registry = Registry.from_settings(load_settings(database_url=url))
    _prewarm(registry)
    started = time.perf_counter()
    decisions: dict[tuple[UUID, UUID], str] = {}
    options = SparkOptions(
        master=master, conf={"spark.driver.memory": memory}, shuffle_partitions=partitions
    )
    report = dedupe(registry, decisions=decisions, spark=options)
    took = time.perf_counter() - started
    print(f"spark engine ({master}) on {report.persons:,} persons: {took:.1f} s end to end")
    for stage in report.stages:
        print(f"  {stage.name:8s} {stage.seconds:7.2f} s  peak RSS {stage.peak_rss_mib:,.0f} MiB "
              "(this process; Spark's JVM apart)")  # fmt: skip
    print(f"  {report.pairs_scored:,} pairs scored, {report.clusters:,} clusters, "
          f"{report.merges:,} merges, {report.review_items:,} review items")  # fmt: skip
    if expected is not None and decided is not None:
        same = decisions == decided
        links = sum(1 for v in decided.values() if v == "link")
        print(f"  parity: {len(decided):,} person pairs decided ({links:,} auto-merge), "
              f"identical outcomes: {same}; final partition identical: "
              f"{partition(registry) == expected}")  # fmt: skip
    registry.close()


if __name__ == "__main__":
    main()
