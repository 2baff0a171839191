"""`make bench`: webhook delivery throughput, and what the outbox costs an ingest.

1. Delivery: N outbox events (written in bulk: set-up) for one subscription, delivered by
   one worker process (16 concurrent deliveries, signed) to a receiver on 127.0.0.1 that
   answers 204 over keep-alive connections: events per second, fan-out included.
2. Outbox cost: the same records ingested twice into fresh registries, once as shipped
   and once with the outbox writes skipped: the difference per record.

PostgreSQL (MDM_BENCH_POSTGRES_URL's server), in process.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from fixtures.generator import generate
from mdm.config import Settings
from mdm.flow.normalise import parse_timestamp
from mdm.model.ids import new_id
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.delivery import Worker
from mdm.services.ingest import ingest_many
from mdm.services.webhooks import create_subscription
from mdm.store.migrate import upgrade
from mdm.store.registry import RegistryRepository
from mdm.store.tables import OutboxRow

BENCH_URL = os.environ.get(
    "MDM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mdm_bench"
)


def fresh_database(name: str) -> str:
    url = make_url(BENCH_URL)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    target = url.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(target)
    upgrade(engine)
    engine.dispose()
    return target


class _Fast(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver behind a proxy

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def delivery(events: int) -> float:
    url = fresh_database("mdm_bench_webhooks")
    registry = Registry.from_settings(Settings(database_url=url, webhook_allow_private=True))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fast)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        create_subscription(
            registry, url=f"http://127.0.0.1:{server.server_port}/hook", events=["*"], actor="b"
        )
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
        start = time.perf_counter()
        with registry.database.engine.connect() as conn:
            pending = lambda: conn.scalar(  # noqa: E731
                text("SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered'")
            )
            while worker.run_once() or pending():
                conn.rollback()
        elapsed = time.perf_counter() - start
        worker.close()
        return events / elapsed
    finally:
        server.shutdown()
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
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    rate = delivery(args.events)
    print(f"delivery: {args.events} events in one worker: {rate:,.0f} events/s "
          f"({'meets' if rate >= 500 else 'MISSES'} the 500/s bar)")  # fmt: skip
    with_outbox, without = outbox_cost(args.records)
    extra = with_outbox - without
    print(f"ingest, batches of 100, median per record: {with_outbox:.3f} ms with the outbox, "
          f"{without:.3f} ms without: the outbox adds {extra:.3f} ms "
          f"({'meets' if extra <= 0.5 else 'MISSES'} the 0.5 ms bar)")  # fmt: skip


if __name__ == "__main__":
    main()
