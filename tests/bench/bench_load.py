"""`make soak`: the API under a mixed load over loopback, against a preloaded registry.

Set-up (not measured): the nightly-dedupe bench's seed of generator records, each its own
person (1,000,000 by default, built once through the bulk path and kept), copied into a
fresh database; `mdm serve --workers 2` on it.

Measured: 50 concurrent users for 2 minutes, each picking a match (80%) or an ingest of a
new record (20%) and then waiting a think time (0.5-1.5 s, as a client service between two
calls; `--think-max 0` for users that never wait). Printed: per operation and overall
p50/p95/p99, throughput and error rate, against the stored baseline
(`reports/load_baseline.json`; `--update-baseline` replaces it). Written:
`reports/bench_load.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from fixtures.generator import generate
from tests.bench.bench_dedupe import _copy, seed
from tests.bench.bench_ingest import Server
from tests.conftest import ADMIN_KEY

REPORTS = Path("reports")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _summary(samples: list[float], errors: int, seconds: float) -> dict[str, float]:
    total = len(samples) + errors
    return {
        "requests": total,
        "per_second": round(total / seconds, 1),
        "p50_ms": round(_percentile(samples, 0.50) * 1000, 2),
        "p95_ms": round(_percentile(samples, 0.95) * 1000, 2),
        "p99_ms": round(_percentile(samples, 0.99) * 1000, 2),
        "error_rate": round(errors / total, 5) if total else 0.0,
    }


async def _user(
    n: int,
    base: str,
    payloads: list[dict[str, Any]],
    args: argparse.Namespace,
    deadline: float,
    latencies: dict[str, list[float]],
    errors: dict[str, list[str]],
) -> None:
    rng = random.Random(n)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        i = n
        while time.monotonic() < deadline:
            g = payloads[i % len(payloads)]
            i += args.users
            if rng.random() < args.match_share:
                op, path, body = "match", "/v1/match", {"source": g["source"], "data": g["data"]}
            else:
                op, path, body = "ingest", "/v1/records", g
            started = time.perf_counter()
            try:
                r = await http.post(path, json=body)
                elapsed = time.perf_counter() - started
                if r.status_code < 300:
                    latencies[op].append(elapsed)
                else:
                    errors[op].append(f"{r.status_code}")
            except httpx.HTTPError as exc:
                errors[op].append(type(exc).__name__)
            if args.think_max > 0:
                await asyncio.sleep(rng.uniform(args.think_min, args.think_max))


async def _run(base: str, payloads: list[dict[str, Any]], args: argparse.Namespace) -> Any:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    started = time.monotonic()
    deadline = started + args.duration
    await asyncio.gather(
        *(_user(n, base, payloads, args, deadline, latencies, errors) for n in range(args.users))
    )
    return latencies, errors, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--match-share", type=float, default=0.8)
    parser.add_argument("--think-min", type=float, default=0.5)
    parser.add_argument("--think-max", type=float, default=1.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", type=Path, default=REPORTS / "load_baseline.json")
    parser.add_argument("--update-baseline", action="store_true")
    args = parser.parse_args(argv)

    template, _ = seed(args.persons, reuse=True)
    url = _copy(template, "mdm_bench_load")
    payloads = [
        {"source": g.source, "source_id": f"load-{i}-{g.source_id}", "data": g.data}
        for i, g in enumerate(generate(20_000, seed=99))
    ]
    server = Server(url, args.workers)
    try:
        latencies, errors, seconds = asyncio.run(
            _run(f"http://127.0.0.1:{server.port}", payloads, args)
        )
        memory = server.memory()
    finally:
        server.stop()

    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
        "persons": args.persons,
        "users": args.users,
        "seconds": round(seconds, 1),
        "think_s": [args.think_min, args.think_max],
        "match_share": args.match_share,
        "server_rss_mib": round(memory["rss_kib"] / 1024),
        "overall": _summary(
            [x for v in latencies.values() for x in v],
            sum(len(e) for e in errors.values()),
            seconds,
        ),
    }
    for op in ("match", "ingest"):
        report[op] = _summary(latencies[op], len(errors[op]), seconds)
        report[op]["errors"] = sorted(set(errors[op]))[:10]

    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else None
    print(
        f"{'':8} {'requests':>9} {'/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>8}"
    )
    for op in ("overall", "match", "ingest"):
        s = report[op]
        line = (f"{op:8} {s['requests']:>9} {s['per_second']:>7} {s['p50_ms']:>8} "
                f"{s['p95_ms']:>8} {s['p99_ms']:>8} {s['error_rate']:>8.2%}")  # fmt: skip
        if baseline and op in baseline:
            before = baseline[op]["p99_ms"]
            change = (s["p99_ms"] - before) / before if before else 0.0
            line += f"   baseline p99 {before} ms ({change:+.0%})"
        print(line)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "bench_load.json").write_text(json.dumps(report, indent=2))
    if args.update_baseline or baseline is None:
        args.baseline.write_text(json.dumps(report, indent=2))
        print(f"baseline written to {args.baseline}")
    ok = report["overall"]["p99_ms"] <= 100 and report["overall"]["error_rate"] == 0
    print("bar (p99 <= 100 ms, 0 errors):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
