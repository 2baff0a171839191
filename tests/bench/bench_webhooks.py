"""`make bench`: webhook delivery throughput, and what the outbox costs an ingest.

1. Delivery: N outbox events (written in bulk: set-up) for one subscription, delivered by
   one worker process (16 concurrent deliveries, signed) to a receiver on 127.0.0.1 (its
   own uvicorn process) that answers 204 over keep-alive connections: events per second,
   fan-out included.
2. Outbox cost: the same records ingested twice into fresh registries, once as shipped
   and once with the outbox writes skipped: the difference per record.

PostgreSQL (MDM_BENCH_POSTGRES_URL's server), in process.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, text

from fixtures.generator import generate
from mdm.config import Settings
from mdm.flow.normalise import parse_timestamp
from mdm.model.ids import new_id
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.delivery import Worker
from mdm.services.ingest import ingest_many
from mdm.services.webhooks import create_subscription
from mdm.store.registry import RegistryRepository
from mdm.store.tables import OutboxRow
from tests import databases

BENCH_URL = os.environ.get(
    "MDM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mdm_bench"
)


def fresh_database(name: str) -> str:
    return databases.fresh_database(BENCH_URL, name)


async def _accept(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A receiver that takes every event: reads the body, answers 204."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def receive(port: int) -> None:
    """The receiver, in its own process (uvicorn): a receiver is another system, and in
    this one it would compete with the worker for the interpreter."""
    import uvicorn

    uvicorn.run(_accept, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _work(url: str, stop_after: float) -> None:
    """One more worker process, sharing the deliveries (FOR UPDATE SKIP LOCKED)."""
    registry = Registry.from_settings(Settings(database_url=url, webhook_allow_private=True))
    worker = Worker(registry, batch=500, threads=16)
    stop = threading.Event()
    threading.Timer(stop_after, stop.set).start()
    worker.run(stop, idle=0.01)
    worker.close()
    registry.close()


def delivery(events: int, processes: int = 1) -> float:
    url = fresh_database("mdm_bench_webhooks")
    registry = Registry.from_settings(Settings(database_url=url, webhook_allow_private=True))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = subprocess.Popen([sys.executable, "-m", "tests.bench.bench_webhooks",
                                 "--receive", str(port)])  # fmt: skip
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        threading.Event().wait(0.05)
    try:
        create_subscription(registry, url=f"http://127.0.0.1:{port}/hook", events=["*"], actor="b")
        now = datetime.now(UTC)
        rows = [
            {"id": new_id(), "type": "person.updated", "person_id": new_id(), "created_at": now,
             "payload": {"person_id": "x", "changes": {"job_title": f"Chef {i}"},
                         "sources": {"job_title": ["hris"]}, "changed_fields": ["job_title"]}}
            for i in range(events)
        ]  # fmt: skip
        with registry.database.engine.begin() as conn:
            conn.execute(insert(OutboxRow.__table__), rows)  # type: ignore[arg-type]
        worker = Worker(registry, batch=500, threads=16)
        stop = threading.Event()
        start = time.perf_counter()
        helpers = [
            subprocess.Popen([sys.executable, "-m", "tests.bench.bench_webhooks", "--work", url])
            for _ in range(processes - 1)
        ]
        running = threading.Thread(target=worker.run, args=(stop,), kwargs={"idle": 0.01})
        running.start()
        with registry.database.engine.connect() as conn:
            while (
                conn.scalar(
                    text("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")
                )
                < events
            ):
                conn.rollback()
                stop.wait(0.05)
        elapsed = time.perf_counter() - start
        stop.set()
        running.join()
        worker.close()
        for helper in helpers:
            helper.terminate()
            helper.wait(10)
        return events / elapsed
    finally:
        receiver.terminate()
        receiver.wait(10)
        registry.close()


def outbox_cost(records: int) -> tuple[float, float]:
    generated = [
        IncomingRecord(g.source, g.source_id, g.data, parse_timestamp(g.updated_at))
        for g in generate(records, seed=3)
    ]
    timings = {}
    original = RegistryRepository.insert_outbox
    for label in ("with outbox", "without outbox"):
        url = fresh_database("mdm_bench_outbox")
        registry = Registry.from_settings(Settings(database_url=url))
        if label == "without outbox":
            RegistryRepository.insert_outbox = lambda self, events: None  # type: ignore[method-assign]
        try:
            runs = []
            for k in range(0, len(generated), 100):
                start = time.perf_counter()
                ingest_many(registry, generated[k : k + 100], actor="b")
                runs.append((time.perf_counter() - start) / len(generated[k : k + 100]))
            timings[label] = statistics.median(runs) * 1000
        finally:
            RegistryRepository.insert_outbox = original  # type: ignore[method-assign]
            registry.close()
    return timings["with outbox"], timings["without outbox"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--records", type=int, default=6_000)
    parser.add_argument("--receive", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        receive(args.receive)
        return
    if args.work:
        _work(args.work, stop_after=600)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    for processes in (1, 2):
        rate = delivery(args.events, processes)
        verdict = "meets" if rate >= 500 else "MISSES"
        print(f"delivery: {args.events} events, {processes} worker process(es): "
              f"{rate:,.0f} events/s ({verdict} the 500/s bar)")  # fmt: skip
    with_outbox, without = outbox_cost(args.records)
    extra = with_outbox - without
    print(f"ingest, batches of 100, median per record: {with_outbox:.3f} ms with the outbox, "
          f"{without:.3f} ms without: the outbox adds {extra:.3f} ms "
          f"({'meets' if extra <= 0.5 else 'MISSES'} the 0.5 ms bar)")  # fmt: skip


if __name__ == "__main__":
    main()
