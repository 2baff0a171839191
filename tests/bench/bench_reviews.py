"""`make bench`: the stewards' queue, GET /v1/reviews, with 20,000 open items in PostgreSQL.

    python -m tests.bench.bench_reviews [--items 20000] [--requests 400]

Set-up (not measured): a fresh database gets 40,000 persons and the open review items
pairing them, written with the bulk path (COPY). Then `mdm serve` is started and a client
walks the queue over loopback HTTP the way the web UI and stewards' tools do: first pages
in each sort order, filtered pages (source, score band, age), and deep pages through the
cursor. Prints p50 / p95 / p99 per request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import text

from mdm.config import Settings
from mdm.model.ids import new_id
from mdm.model.person import PersonState, PersonStatus, ReviewItem
from mdm.services.context import Registry
from mdm.store.migrate import upgrade
from tests.bench.bench_ingest import (
    ADMIN_KEY,
    BENCH_URL,
    Server,
    _admin_engine,
    _percentile,
    _url_for,
)

DATABASE = "mdm_bench_reviews"


def build(items: int) -> None:
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    registry = Registry.from_settings(Settings(database_url=_url_for(DATABASE)))
    upgrade(registry.database.engine)
    rnd = random.Random(5)
    now = datetime.now(UTC)
    persons = [
        PersonState(new_id(), PersonStatus.ACTIVE, 1, now, now, {"given_name": "P"}, {}, [])
        for _ in range(items * 2)
    ]
    reviews = [
        ReviewItem(
            id=new_id(),
            kind="match",
            status="open",
            person_a=persons[2 * i].id,
            person_b=persons[2 * i + 1].id,
            score=round(rnd.uniform(0.70, 0.99), 6),
            explanation={"rule": "probabilistic", "comparisons": []},
            created_at=now - timedelta(minutes=rnd.randrange(60 * 24 * 90)),
            source=rnd.choice(["crm", "ats", "hris"]),
        )
        for i in range(items)
    ]
    with registry.database.uow() as uow:
        with uow.registry.pipelined():
            uow.registry.insert_persons(persons)
            uow.registry.insert_reviews(reviews)
        uow.commit()
    with registry.database.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    registry.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    build(args.items)
    print(f"set-up: {args.items:,} open review items in {time.perf_counter() - started:.1f} s")

    url = BENCH_URL.rsplit("/", 1)[0] + f"/{DATABASE}"
    server = Server(url, workers=2)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def get(params: dict[str, Any]) -> dict[str, Any]:
        conn.request("GET", "/v1/reviews?" + urlencode(params), headers=headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET /v1/reviews {params}: {response.status} {body[:300]!r}")
        return dict(json.loads(body))

    queries: list[dict[str, Any]] = [
        {"sort": "age"}, {"sort": "-age"}, {"sort": "score"}, {"sort": "-score"},
        {"source": "ats", "sort": "-score"}, {"min_score": 0.9, "max_score": 0.95},
        {"min_age_hours": 24 * 30}, {"max_age_hours": 24, "sort": "-score"},
    ]  # fmt: skip
    samples: list[float] = []
    try:
        get({"limit": 1})  # warm-up
        rnd = random.Random(9)
        while len(samples) < args.requests:
            query = {**rnd.choice(queries), "limit": 50}
            # A steward pages on: a few pages deep through the cursor.
            for _ in range(rnd.randrange(1, 6)):
                t0 = time.perf_counter()
                page = get(query)
                samples.append((time.perf_counter() - t0) * 1000)
                if not page["next_cursor"]:
                    break
                query = {**query, "cursor": page["next_cursor"]}
        counts = get({"limit": 1})["counts"]
    finally:
        server.stop()
    print(
        f"GET /v1/reviews, {counts.get('open', 0):,} open items, {len(samples)} requests "
        f"(limit 50): p50 {_percentile(samples, 50):.1f} ms  p95 {_percentile(samples, 95):.1f} ms"
        f"  p99 {_percentile(samples, 99):.1f} ms   bar: p95 <= 50 ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
