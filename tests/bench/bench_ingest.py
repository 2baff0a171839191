"""`make bench`: ingest latency and throughput over loopback HTTP against PostgreSQL.

Set-up (not measured): a seed database holding the preloaded persons is built once with
the batch path and copied for every run (CREATE DATABASE ... TEMPLATE). Then a uvicorn
server is started on the copy and measured:

1. single-record POST /v1/records, one client, sequential: p50 / p95 / p99;
2. single-record POST /v1/records from concurrent clients: records/s;
3. POST /v1/records:batch of 1,000 records: records/s;
4. the server's resident memory (every uvicorn process).
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from fixtures.generator import GeneratedRecord, generate
from mdm.config import Settings
from mdm.flow.normalise import parse_timestamp
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import UNIT_SIZE, ingest_many
from mdm.store.db import make_engine
from mdm.store.migrate import upgrade
from tests.databases import copy_database

BENCH_URL = os.environ.get(
    "MDM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mdm_bench"
)
ADMIN_KEY = "bench-admin-key"
SEED = 1
RECORDS_PER_PERSON = 1.45  # records per registry person after matching, measured
MEASURED_MAX = 200_000


def _admin_engine():  # type: ignore[no-untyped-def]
    url = make_url(BENCH_URL).set(database="postgres")
    return create_engine(url, isolation_level="AUTOCOMMIT")


def _database_exists(name: str) -> bool:
    engine = _admin_engine()
    with engine.connect() as conn:
        found = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
    engine.dispose()
    return bool(found)


def _url_for(name: str) -> str:
    return make_url(BENCH_URL).set(database=name).render_as_string(hide_password=False)


def _persons_in(name: str) -> int:
    engine = make_engine(_url_for(name), pool_size=1)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(text("SELECT count(*) FROM persons")) or 0)
    except Exception:
        return 0
    finally:
        engine.dispose()


def _incoming(g: GeneratedRecord) -> IncomingRecord:
    return IncomingRecord(g.source, g.source_id, g.data, parse_timestamp(g.updated_at))


def seed_stream(preload: int) -> Iterator[GeneratedRecord]:
    """One stream for set-up and measurement: the generator's output depends on its length,
    so the preloaded records and the measured ones must come from the same call."""
    return generate(preload + MEASURED_MAX, seed=SEED)


def build_seed(seed_db: str, persons: int, preload_records: int, *, resume: bool = False) -> None:
    """Preload the seed database through the batch path (set-up, not measured). With
    `resume`, an interrupted build goes on from the records already in the database (the
    stream is deterministic; a record posted twice is only updated in place)."""
    done = 0
    if resume and _database_exists(seed_db):
        engine = make_engine(_url_for(seed_db), pool_size=1)
        with engine.connect() as conn:
            kept = "(SELECT count(*) FROM source_records) + (SELECT count(*) FROM rejections)"
            done = int(conn.scalar(text(f"SELECT {kept}")) or 0)
        engine.dispose()
        done = max(done - UNIT_SIZE, 0)  # the unit of work the build was killed in
    else:
        engine = _admin_engine()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{seed_db}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{seed_db}"'))
        engine.dispose()
    registry = Registry.from_settings(Settings(database_url=_url_for(seed_db)))
    upgrade(registry.database.engine)
    started = time.perf_counter()
    stream = islice(seed_stream(preload_records), done, preload_records)
    first = done
    for n, chunk in enumerate(iter(lambda: list(islice(stream, 1000)), []), 1):
        ingest_many(registry, [_incoming(g) for g in chunk], actor="bench")
        done += len(chunk)
        if n % 20 == 0:
            # The generator keeps every human it may write again: a heap growing by
            # millions of objects, which each full collection walked (over a third of the
            # set-up's time at 200,000 records). What is alive now stays alive.
            gc.collect()
            gc.freeze()
            rate = (done - first) / (time.perf_counter() - started)
            print(f"  preloaded {done:,} records ({rate:,.0f}/s)", flush=True)
    # VACUUM as well as ANALYZE: a bulk-loaded table has no page marked all-visible until
    # vacuumed, so every key look-up (an index-only scan) would visit the heap as well;
    # autovacuum does this on a live server, but only some time after the load.
    autocommit = registry.database.engine.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
    registry.close()
    print(f"  seed database {seed_db}: {_persons_in(seed_db):,} persons", flush=True)


# What every record reads: the candidates' persons, records and keys.
_HOT_TABLES = ("persons", "source_records", "person_keys")


def prewarm(conn: Connection) -> None:
    """Set-up, not measured: the steady state of a server whose registry fits in memory,
    rather than the first touch of each page of a database copied a moment ago. The tables
    every record reads, and every index (each record's inserts update the audit trail's
    and the outbox's at random places), go into PostgreSQL's shared buffers (as far as
    they fit); the rest into the OS page cache: the append-only tables' heaps are written
    at their end only."""
    conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
    relations = (
        "SELECT c.oid, c.relname = ANY(:hot) OR c.relkind = 'i' "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i')"
    )
    rows = conn.execute(text(relations), {"hot": list(_HOT_TABLES)}).all()
    # The others first: what is read into shared buffers last stays there.
    for oid, hot in sorted(rows, key=lambda row: bool(row[1])):
        mode = "buffer" if hot else "read"
        conn.execute(
            text("SELECT pg_prewarm(CAST(:oid AS oid)::regclass, :mode)"),
            {"oid": oid, "mode": mode},
        )
    conn.commit()


def fresh_copy(seed_db: str, target: str) -> None:
    copy_database(BENCH_URL, seed_db, target)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, workers: int, **settings: str) -> None:
        self.port = _free_port()
        env = {**os.environ, "MDM_DATABASE_URL": url, "MDM_ADMIN_KEY": ADMIN_KEY, **settings}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mdm.cli", "serve", "--port", str(self.port),
             "--workers", str(workers)],
            env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise SystemExit("server did not start")

    def memory(self) -> dict[str, int]:
        """Resident and peak resident memory (KiB) of every process of the server."""
        pids = [self.proc.pid, *_children(self.proc.pid)]
        rss = peak = 0
        largest = 0
        for pid in pids:
            status = Path(f"/proc/{pid}/status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            r = int(fields["VmRSS"].split()[0])
            rss += r
            peak += int(fields["VmHWM"].split()[0])
            largest = max(largest, int(fields["VmHWM"].split()[0]))
        return {"processes": len(pids), "rss_kib": rss, "peak_kib": peak, "largest_kib": largest}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU time of each process still alive, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _postgres_pids() -> list[int]:
    """Every PostgreSQL process on this machine: the server under test is local."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().startswith("postgres"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class CpuMeter:
    """CPU time spent by the server's processes and by PostgreSQL's over a phase: per
    record, a figure that moves with the code and far less than records/s with the speed
    the machine happens to run at."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> CpuMeter:
        self.started = time.perf_counter()
        self.before = (self._server(), _cpu_seconds(_postgres_pids()))
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self.started
        self.after = (self._server(), _cpu_seconds(_postgres_pids()))

    def _server(self) -> dict[int, float]:
        return _cpu_seconds([self.server.proc.pid, *_children(self.server.proc.pid)])

    def report(self, records: int) -> dict[str, float]:
        server, database = (
            sum(t - before.get(pid, 0.0) for pid, t in after.items())
            for before, after in zip(self.before, self.after, strict=True)
        )
        return {
            "server_cpu_us_per_record": server / records * 1e6,
            "database_cpu_us_per_record": database / records * 1e6,
            "cores_busy": (server + database) / self.elapsed / (os.cpu_count() or 1),
        }


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {
            "Authorization": f"Bearer {ADMIN_KEY}",
            "Content-Type": "application/json",
        }

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        self.conn.request("POST", path, json.dumps(body).encode(), self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def _body(g: GeneratedRecord) -> dict[str, Any]:
    return {"source": g.source, "source_id": g.source_id, "data": g.data,
            "updated_at": g.updated_at}  # fmt: skip


def _percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure_sequential(port: int, records: list[GeneratedRecord]) -> dict[str, float]:
    client = Client(port)
    latencies = []
    for g in records:
        started = time.perf_counter()
        status, body = client.post("/v1/records", _body(g))
        latencies.append((time.perf_counter() - started) * 1000)
        if status >= 300 and status != 422:
            raise SystemExit(f"unexpected {status}: {body[:300]!r}")
    return {
        "requests": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p95_ms": _percentile(latencies, 95),
        "p99_ms": _percentile(latencies, 99),
        "rate": len(latencies) / (sum(latencies) / 1000),
    }


def measure_concurrent(port: int, records: list[GeneratedRecord], clients: int) -> dict[str, float]:
    chunks = [records[k::clients] for k in range(clients)]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def run(chunk: list[GeneratedRecord]) -> None:
        nonlocal errors
        client = Client(port)
        local = []
        bad = 0
        for g in chunk:
            started = time.perf_counter()
            status, _ = client.post("/v1/records", _body(g))
            local.append((time.perf_counter() - started) * 1000)
            bad += status >= 500
        with lock:
            latencies.extend(local)
            errors += bad

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, chunks))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "requests": len(latencies),
        "rate": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies),
        "p99_ms": _percentile(latencies, 99),
        "errors_5xx": errors,
    }


def measure_batches(
    port: int, records: list[GeneratedRecord], size: int, clients: int
) -> dict[str, float]:
    batches = [records[i : i + size] for i in range(0, len(records), size)]
    batch_ms: list[float] = []
    lock = threading.Lock()

    def run(mine: list[list[GeneratedRecord]]) -> None:
        for batch in mine:
            # A connection per batch, as bulk loaders do: the kernel spreads connections
            # over the workers' sockets, and one long-lived connection pins one worker.
            client = Client(port)
            t0 = time.perf_counter()
            status, body = client.post("/v1/records:batch", {"records": [_body(g) for g in batch]})
            elapsed = (time.perf_counter() - t0) * 1000
            client.conn.close()
            if status != 200:
                raise SystemExit(f"batch failed {status}: {body[:300]!r}")
            with lock:
                batch_ms.append(elapsed)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, [batches[k::clients] for k in range(clients)]))
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "batches": len(batch_ms),
        "batch_size": size,
        "rate": len(records) / elapsed,
        "p50_batch_ms": statistics.median(batch_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--sequential", type=int, default=2_000)
    parser.add_argument("--concurrent", type=int, default=4_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch-records", type=int, default=20_000)
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the seed database")
    parser.add_argument(
        "--resume", action="store_true", help="go on with an interrupted seed database"
    )
    parser.add_argument("--report", type=Path, default=Path("reports/bench_ingest.json"))
    args = parser.parse_args(argv)

    preload = int(args.persons * RECORDS_PER_PERSON)
    measured = args.sequential + args.concurrent + args.batch_records
    seed_db = f"{make_url(BENCH_URL).database}_seed_{args.persons}"
    if args.rebuild or not _database_exists(seed_db) or _persons_in(seed_db) < args.persons * 0.95:
        print(f"building {seed_db} with {preload:,} records (set-up, not measured)", flush=True)
        build_seed(seed_db, args.persons, preload, resume=args.resume and not args.rebuild)
    target = make_url(BENCH_URL).database
    assert target
    fresh_copy(seed_db, target)
    # A seed built by an older schema is brought to the latest migration (set-up).
    engine = make_engine(_url_for(target), pool_size=1)
    upgrade(engine)
    with engine.connect() as conn:
        prewarm(conn)
    engine.dispose()
    persons = _persons_in(target)

    # The records after the preloaded ones: new humans and more records of known ones.
    if measured > MEASURED_MAX:
        raise SystemExit(f"at most {MEASURED_MAX:,} measured records")
    tail = list(islice(seed_stream(preload), preload, preload + measured))
    sequential = tail[: args.sequential]
    concurrent = tail[args.sequential : args.sequential + args.concurrent]
    batch = tail[args.sequential + args.concurrent :]

    server = Server(BENCH_URL, args.workers)
    try:
        Client(server.port).post("/v1/match", {"data": {"given_name": "warm", "email": "w@x.io"}})
        results: dict[str, dict[str, Any]] = {
            "sequential": measure_sequential(server.port, sequential),
            "concurrent": measure_concurrent(server.port, concurrent, args.clients),
        }
        with CpuMeter(server) as meter:
            results["batch"] = measure_batches(server.port, batch, 1000, args.batch_clients)
        results["batch"] |= meter.report(len(batch))
        results["memory"] = server.memory()
    finally:
        server.stop()
    results["setup"] = {
        "persons_preloaded": persons,
        "workers": args.workers,
        "machine": (
            f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
        ),
    }
    seq, conc, bat, mem = (results[k] for k in ("sequential", "concurrent", "batch", "memory"))
    rows = [
        ("POST /v1/records, 1 client", f"p50 {seq['p50_ms']:.1f} ms  p95 {seq['p95_ms']:.1f} ms  "
         f"p99 {seq['p99_ms']:.1f} ms", "p50 <= 10 ms, p99 <= 50 ms"),
        (f"POST /v1/records, {conc['clients']} clients", f"{conc['rate']:,.0f} records/s  "
         f"(p99 {conc['p99_ms']:.0f} ms, {conc['errors_5xx']} 5xx)", ">= 200 records/s"),
        (f"POST /v1/records:batch (1,000), {bat['clients']} clients",
         f"{bat['rate']:,.0f} records/s  (p50 {bat['p50_batch_ms']:,.0f} ms a batch)",
         ">= 1,500 records/s"),
        ("  CPU a record in that phase", f"server {bat['server_cpu_us_per_record']:,.0f} us, "
         f"PostgreSQL {bat['database_cpu_us_per_record']:,.0f} us, cores busy "
         f"{bat['cores_busy']:.0%}", ""),
        (f"server RSS ({mem['processes']} processes)", f"{mem['rss_kib'] / 1024:,.0f} MiB now, "
         f"peak {mem['peak_kib'] / 1024:,.0f} MiB", "<= 500 MB"),
    ]  # fmt: skip
    print(f"\nmdm ingest bench: {persons:,} persons preloaded in PostgreSQL, "
          f"{args.workers} uvicorn workers, {results['setup']['machine']}")  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for name, value, bar in rows:
        print(f"  {name:<{width}}  {value:<58} {'bar: ' + bar if bar else ''}".rstrip())
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(results, indent=2))
    print(f"\nreport: {args.report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
