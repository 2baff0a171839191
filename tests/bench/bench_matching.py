"""Online matching compute, in process: candidates from PostgreSQL + scoring + decision.

    python -m tests.bench.bench_matching [--database mdm_eval] [--records 2000]

Runs the dry-run match (`match_record`: normalise, blocking look-up, loading the
candidates, scoring, deciding; nothing written) for records the registry has not seen,
one at a time, and prints p50 / p95 / p99 per record. The database is any registry: by
default the `make bench` seed (100,000 persons); `make eval` leaves a larger one behind.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import time

from sqlalchemy import func, select

from fixtures.generator import generate
from mdm.config import Settings
from mdm.flow.normalise import parse_timestamp
from mdm.model.errors import InvalidRecord
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.match import match_record
from mdm.store.tables import PersonRow
from tests.bench.bench_ingest import _percentile, _url_for, prewarm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="mdm_bench_seed_100000")
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument(
        "--seed", type=int, default=977, help="a seed the registry was not built from"
    )
    parser.add_argument(
        "--prewarm",
        action="store_true",
        help="first read the registry's tables and indexes into memory (pg_prewarm)",
    )
    args = parser.parse_args(argv)
    registry = Registry.from_settings(Settings(database_url=_url_for(args.database)))
    with registry.database.engine.connect() as conn:
        persons = int(conn.scalar(select(func.count()).select_from(PersonRow)) or 0)
        if args.prewarm:
            prewarm(conn)
    records = [
        IncomingRecord(g.source, g.source_id, g.data, parse_timestamp(g.updated_at))
        for g in generate(args.records, seed=args.seed)
    ]
    for record in records[:50]:  # warm the connection pool and the caches
        with contextlib.suppress(InvalidRecord):
            match_record(registry, record)
    # As each server process does once started (api/app.py): what is loaded by now lives
    # as long as the process, and full collections do not walk it again.
    gc.collect()
    gc.freeze()
    timings: list[float] = []
    candidates: list[int] = []
    for record in records:
        started = time.perf_counter()
        try:
            result = match_record(registry, record)
        except InvalidRecord:
            continue
        timings.append((time.perf_counter() - started) * 1000)
        candidates.append(len(result.candidates))
    registry.close()
    print(
        f"online matching against {persons:,} persons ({args.database}"
        f"{', prewarmed' if args.prewarm else ''}), "
        f"{len(timings):,} records, one at a time, in process:\n"
        f"  p50 {statistics.median(timings):.2f} ms  p95 {_percentile(timings, 95):.2f} ms  "
        f"p99 {_percentile(timings, 99):.2f} ms  max {max(timings):.1f} ms; "
        f"candidates per record: mean {statistics.mean(candidates):.1f}, max {max(candidates)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
