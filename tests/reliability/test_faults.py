"""Database faults under load, through real HTTP (`mdm serve`, 2 workers, PostgreSQL).

Clients post records while the registry's database connections are terminated
(`pg_terminate_backend`, in `make test`) or PostgreSQL itself is restarted (three times,
in `make soak`). Every answer must be a success or a 503 problem+json, never a 500;
`/readyz` must say 503 while the database is away and 200 once it is back; and every
record the API acknowledged must be in the database afterwards, linked to a person.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from mdm.store.db import make_engine
from mdm.store.tables import SourceRecordRow
from tests.conftest import ADMIN_KEY, PG_URL
from tests.databases import fresh_database
from tests.factories import body
from tests.serving import served

FAULTS_DB = "mdm_faults_test"
HEADERS = {"Authorization": f"Bearer {ADMIN_KEY}"}


@dataclass
class Load:
    """Clients posting new records until told to stop; what each answer was."""

    base: str
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    progress: threading.Condition = field(default_factory=threading.Condition)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def client(self) -> None:
        with httpx.Client(base_url=self.base, headers=HEADERS, timeout=30) as http:
            while not self.stop.is_set():
                with self.lock:
                    source_id = f"fault-{next(self._ids)}"
                try:
                    r = http.post("/v1/records", json=body(source_id=source_id))
                except httpx.TransportError as exc:
                    with self.lock:
                        self.unexpected.append(f"{source_id}: {type(exc).__name__}")
                    continue
                with self.lock:
                    self.statuses[r.status_code] += 1
                    if r.status_code in (200, 201):
                        self.acknowledged.add(source_id)
                    elif r.status_code != 503 or not r.headers.get("content-type", "").startswith(
                        "application/problem+json"
                    ):
                        self.unexpected.append(f"{source_id}: {r.status_code} {r.text[:200]}")
                with self.progress:
                    self.progress.notify_all()

    def wait_for(self, acknowledged: int) -> None:
        with self.progress:
            assert self.progress.wait_for(
                lambda: len(self.acknowledged) >= acknowledged or self.stop.is_set(), timeout=120
            ), f"the load stalled at {len(self.acknowledged)} acknowledged records"


@dataclass
class Readiness:
    base: str
    seen: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        with httpx.Client(base_url=self.base, timeout=5) as http:
            while not self.stop.wait(0.05):
                try:
                    status = http.get("/readyz").status_code
                except httpx.TransportError:
                    status = -1
                if not self.seen or self.seen[-1] != status:
                    self.seen.append(status)


def _terminate_connections() -> int:
    admin = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        killed = conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": FAULTS_DB},
        )
    admin.dispose()
    return int(killed or 0)


def _restart_postgresql() -> None:
    version = sorted(os.listdir("/etc/postgresql"), key=float)[-1]
    for action in ("stop", "start"):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True
        )


def _under_load(url: str, faults: int, fault: Callable[[], object]) -> tuple[Load, list[int]]:
    with served(url, workers=2) as base:
        load = Load(base)
        ready = Readiness(base)
        threads = [threading.Thread(target=load.client) for _ in range(4)]
        threads.append(threading.Thread(target=ready.watch))
        for t in threads:
            t.start()
        try:
            for n in range(1, faults + 1):
                load.wait_for(100 * n)
                fault()
            load.wait_for(100 * (faults + 1))
        finally:
            load.stop.set()
            ready.stop.set()
            for t in threads:
                t.join()
    return load, ready.seen


def _assert_kept(url: str, load: Load) -> None:
    print(f"answers {dict(load.statuses)}, {len(load.acknowledged)} acknowledged")
    assert load.unexpected == [], load.unexpected[:10]
    assert set(load.statuses) <= {200, 201, 503}, load.statuses
    engine = make_engine(url, pool_size=1)
    with engine.connect() as conn:
        rows = conn.execute(select(SourceRecordRow.source_id, SourceRecordRow.person_id))
        stored = {source_id: person for source_id, person in rows}
    engine.dispose()
    missing = load.acknowledged - stored.keys()
    assert not missing, f"{len(missing)} acknowledged records lost: {sorted(missing)[:10]}"
    assert all(stored[s] is not None for s in load.acknowledged)


@pytest.mark.usefixtures("pg_url")
def test_terminated_connections_lose_no_acknowledged_write_and_answer_no_500() -> None:
    url = fresh_database(PG_URL, FAULTS_DB)
    terminated: list[int] = []
    load, _ = _under_load(url, 2, lambda: terminated.append(_terminate_connections()))
    assert all(terminated), terminated  # the app's connections were there to cut
    _assert_kept(url, load)


@pytest.mark.soak
@pytest.mark.usefixtures("pg_url")
def test_three_postgresql_restarts_lose_no_acknowledged_write() -> None:
    url = fresh_database(PG_URL, FAULTS_DB)
    load, readiness = _under_load(url, 3, _restart_postgresql)
    print(f"/readyz answered, in turn: {readiness}")
    _assert_kept(url, load)
    # Ready, then not while the database was down, then ready again, three times over.
    assert readiness[0] == 200 and readiness[-1] == 200, readiness
    assert readiness.count(503) >= 3, readiness
    assert 500 not in readiness and 500 not in load.statuses
