"""`make soak`: the API under a mixed load over loopback, against a preloaded registry.

Set-up (not measured): the nightly-dedupe bench's seed of generator records, each its own
person (1,000,000 by default, built once through the bulk path and kept), copied into a
fresh database; `mdm serve --workers 2` on it.

Measured: 50 concurrent users for 2 minutes after 15 s of the same load unmeasured (the
copied database is cold on disk), each picking a match (80%) or an ingest of a
new record (20%) and then waiting a think time (0.5-1.5 s, as a client service between two
calls; `--think-max 0` for users that never wait). Printed: per operation and overall
p50/p95/p99, throughput and error rate, against the stored baseline
(`tests/bench/load_baseline.json`, kept in the repository; `--update-baseline` replaces
it). Written: `reports/bench_load.json`.

Then the rate limit (`--burst-seconds`, 0 to skip): a calm client (its own key, one match
at a time) measured alone, then while another key floods the API from its own process
(16 connections, no think time) past a per-key limit set for the run
(`--burst-rate` requests per second per key and process): the calm client's p50/p99 in
both phases, and what share of the flood was answered 429 with Retry-After.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import platform
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from fixtures.generator import generate
from mdm.config import load_settings
from mdm.services.context import Registry
from mdm.services.keys import create_key
from tests.bench.bench_dedupe import _copy, seed
from tests.bench.bench_ingest import ADMIN_KEY, Server

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
                if elapsed > 0.1:
                    args.slow.append(round(started - args.started, 1))
                if r.status_code < 300:
                    if started - args.started >= args.warmup:
                        latencies[op].append(elapsed)
                    else:
                        latencies["warm-up"].append(elapsed)
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
    args.started = time.perf_counter()
    args.slow = []
    deadline = started + args.warmup + args.duration
    await asyncio.gather(
        *(_user(n, base, payloads, args, deadline, latencies, errors) for n in range(args.users))
    )
    return latencies, errors, time.monotonic() - started


async def _calm(
    base: str, key: str, payloads: list[dict[str, Any]], seconds: float, pace: float
) -> list[float]:
    latencies = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        i = 0
        while time.monotonic() < deadline:
            g = payloads[i % len(payloads)]
            i += 1
            started = time.perf_counter()
            r = await http.post("/v1/match", json={"source": g["source"], "data": g["data"]})
            if r.status_code != 200:
                raise SystemExit(f"the calm client was answered {r.status_code}")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(max(0.0, 1 / pace - (time.perf_counter() - started)))
    return latencies


def _flood(base: str, key: str, payload: dict[str, Any], seconds: float, out: Any) -> None:
    async def one(http: httpx.AsyncClient, deadline: float, seen: dict[str, int]) -> None:
        while time.monotonic() < deadline:
            r = await http.post("/v1/match", json=payload)
            kind = str(r.status_code)
            if r.status_code == 429 and not r.headers.get("retry-after"):
                kind = "429 without Retry-After"
            seen[kind] = seen.get(kind, 0) + 1

    async def run() -> dict[str, int]:
        seen: dict[str, int] = {}
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30, limits=limits
        ) as http:
            await asyncio.gather(*(one(http, deadline, seen) for _ in range(16)))
        return seen

    out.put(asyncio.run(run()))


def burst(url: str, payloads: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    registry = Registry.from_settings(load_settings(database_url=url))
    _, calm = create_key(registry, name="calm", scopes=["persons:read"], actor="bench")
    _, flood = create_key(registry, name="flood", scopes=["persons:read"], actor="bench")
    registry.close()
    server = Server(
        url, args.workers,
        MDM_RATE_LIMIT_PER_SECOND=str(args.burst_rate), MDM_RATE_LIMIT_BURST=str(args.burst_rate),
    )  # fmt: skip
    base = f"http://127.0.0.1:{server.port}"
    try:
        pace = args.burst_rate / 5  # well within its own limit
        idle = asyncio.run(_calm(base, calm, payloads, args.burst_seconds, pace))
        queue: Any = multiprocessing.Queue()
        flood_payload = {"source": payloads[0]["source"], "data": payloads[0]["data"]}
        flooder = multiprocessing.Process(
            target=_flood, args=(base, flood, flood_payload, args.burst_seconds, queue)
        )
        flooder.start()
        during = asyncio.run(_calm(base, calm, payloads, args.burst_seconds, pace))
        seen = queue.get()
        flooder.join()
    finally:
        server.stop()
    total = sum(seen.values())
    return {
        "rate_per_key": args.burst_rate,
        "calm_idle": {"p50_ms": round(_percentile(idle, 0.5) * 1000, 2),
                      "p99_ms": round(_percentile(idle, 0.99) * 1000, 2), "requests": len(idle)},
        "calm_during_flood": {"p50_ms": round(_percentile(during, 0.5) * 1000, 2),
                              "p99_ms": round(_percentile(during, 0.99) * 1000, 2),
                              "requests": len(during)},
        "flood": {"requests": total, "per_second": round(total / args.burst_seconds, 1),
                  "answers": seen},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--warmup", type=float, default=15, help="seconds of load before measuring")
    parser.add_argument("--match-share", type=float, default=0.8)
    parser.add_argument("--think-min", type=float, default=0.5)
    parser.add_argument("--think-max", type=float, default=1.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--baseline", type=Path, default=Path(__file__).with_name("load_baseline.json")
    )
    parser.add_argument("--update-baseline", action="store_true")
    parser.add_argument("--burst-seconds", type=float, default=20)
    parser.add_argument("--burst-rate", type=float, default=50)
    args = parser.parse_args(argv)

    # The load generator holds no more than it sends: a large heap would pause it for its
    # own garbage collections, and the pauses would count as the server's latency.
    template, _ = seed(args.persons, reuse=True, with_truth=False)
    url = _copy(template, "mdm_bench_load")
    payloads = [
        {"source": g.source, "source_id": f"load-{i}-{g.source_id}", "data": g.data}
        for i, g in enumerate(generate(20_000, seed=99))
    ]
    gc.freeze()
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
        "seconds": round(seconds - args.warmup, 1),
        "warmup_s": args.warmup,
        "warmup_p99_ms": round(_percentile(latencies.pop("warm-up", []), 0.99) * 1000, 2),
        "think_s": [args.think_min, args.think_max],
        "match_share": args.match_share,
        "server_rss_mib": round(memory["rss_kib"] / 1024),
        # When (seconds into the run) requests took over 100 ms: a warm-up, a stall, or
        # spread over the run.
        "slow_requests_at_s": args.slow[:200],
        "overall": _summary(
            [x for v in latencies.values() for x in v],
            sum(len(e) for e in errors.values()),
            seconds - args.warmup,
        ),
    }
    for op in ("match", "ingest"):
        report[op] = _summary(latencies[op], len(errors[op]), seconds - args.warmup)
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
        kept = {k: v for k, v in report.items() if k != "slow_requests_at_s"}
        args.baseline.write_text(json.dumps(kept, indent=2))
        print(f"baseline written to {args.baseline}")
    ok = report["overall"]["p99_ms"] <= 100 and report["overall"]["error_rate"] == 0
    print("bar (p99 <= 100 ms, 0 errors):", "met" if ok else "NOT met")
    if args.burst_seconds > 0:
        report["burst"] = b = burst(url, payloads, args)
        idle, during, flood = b["calm_idle"], b["calm_during_flood"], b["flood"]
        print(f"rate limit {b['rate_per_key']}/s per key: calm client alone p50 "
              f"{idle['p50_ms']} ms p99 {idle['p99_ms']} ms; while another key floods "
              f"({flood['per_second']}/s, answers {flood['answers']}) p50 "
              f"{during['p50_ms']} ms p99 {during['p99_ms']} ms")  # fmt: skip
        (REPORTS / "bench_load.json").write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
