"""Webhooks end to end: outbox -> fan-out -> signed deliveries to a local receiver that
fails, times out, throttles and goes away; ordering per person; no echo to the system a
change came from; SSRF refused; a change and its event commit together or not at all."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from mdm.model.errors import InvalidRecord
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.delivery import Worker
from mdm.services.ingest import ingest_one
from mdm.services.webhooks import create_subscription, list_deliveries, replay_delivery
from mdm.services.working_set import WorkingSet
from mdm.store.tables import OutboxRow, SourceRecordRow
from tests.conftest import settings_for, truncate
from tests.receiver import Answer, Receiver, receiving

SCHEDULE = [0.05, 0.1, 0.2, 0.3]


@pytest.fixture
def hooks_registry(database_url: str) -> Iterator[Registry]:
    registry = Registry.from_settings(
        settings_for(
            database_url,
            webhook_allow_private=True,
            webhook_retry_schedule=SCHEDULE,
            webhook_timeout=0.3,
            health_interval=0,
        )
    )
    if registry.database.dialect == "postgresql":
        truncate(registry)
    yield registry
    registry.close()


def ana(source: str, source_id: str, **data: Any) -> IncomingRecord:
    return IncomingRecord(
        source,
        source_id,
        {"given_name": "Ana", "family_name": "Okafor", "email": "ana@okafor.io", **data},
        updated_at=datetime.now(UTC),
    )


def drain(worker: Worker, done: Any, deadline: float = 20.0) -> None:
    """Run the worker until `done()` holds (retries wait for their time to come)."""
    stop = threading.Event()
    limit = time.monotonic() + deadline
    while not done():
        assert time.monotonic() < limit, "the worker did not finish in time"
        if not worker.run_once():
            stop.wait(0.02)


def events_of(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.delivered()]


def test_failures_timeouts_and_throttling_lose_nothing_and_sign_every_attempt(
    hooks_registry: Registry,
) -> None:
    with receiving() as receiver:
        sub = create_subscription(hooks_registry, url=receiver.url, events=["*"], actor="t")
        receiver.answer(
            Answer(500), Answer(503), Answer(hang=0.6), Answer(429, retry_after="1"), Answer(200)
        )
        first = ingest_one(hooks_registry, ana("crm", "c1"), actor="t")
        ingest_one(hooks_registry, ana("ats", "a1", job_title="Chef"), actor="t")
        with hooks_registry.database.engine.connect() as conn:
            sent = {r for (r,) in conn.execute(select(OutboxRow.id))}
        worker = Worker(hooks_registry, threads=4, seed=1)
        try:
            drain(worker, lambda: {UUID(r.headers["webhook-id"]) for r in receiver.delivered()}
                  >= sent)  # fmt: skip
        finally:
            worker.close()
        # Every event arrived (at least once: the receiver also handled the request the
        # sender gave up on, so that event arrived twice, under the same id to de-duplicate).
        delivered_ids = [r.headers["webhook-id"] for r in receiver.delivered()]
        assert set(delivered_ids) == {str(i) for i in sent}
        hung = {r.headers["webhook-id"] for r in receiver.received if r.at and r.status == 200}
        assert all(delivered_ids.count(i) == 1 or i in hung for i in set(delivered_ids))
        for r in receiver.received:
            Webhook(sub.secret).verify(r.body, r.headers)
        # The first event went through every failure with the same id, on schedule.
        first_event = receiver.received[0].headers["webhook-id"]
        tries = sorted(
            (r for r in receiver.received if r.headers["webhook-id"] == first_event),
            key=lambda r: r.at,
        )
        assert [t.status for t in tries][:2] == [500, 503]
        gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
        assert gaps[0] >= SCHEDULE[0] * 0.8
        throttled = next(i for i, r in enumerate(tries) if r.status == 429)
        assert gaps[throttled] >= 1.0  # Retry-After honoured over the shorter schedule
        # Per-person order: the person's events arrived in the order they were written.
        seqs = [
            d.event_seq
            for d in list_deliveries(hooks_registry, sub.id, status="delivered", limit=500)
            if d.person_id == first.person_id
        ]
        arrival = [e["data"].get("person_id") for e in events_of(receiver)]
        assert seqs == sorted(seqs) and arrival


def test_a_410_disables_the_subscription(hooks_registry: Registry) -> None:
    with receiving() as receiver:
        sub = create_subscription(hooks_registry, url=receiver.url, events=["*"], actor="t")
        receiver.answer(Answer(410))
        ingest_one(hooks_registry, ana("crm", "c1"), actor="t")
        ingest_one(hooks_registry, ana("crm", "c2", phone="+34 612 345 678"), actor="t")
        worker = Worker(hooks_registry, threads=2)
        try:
            drain(worker, lambda: len(receiver.received) >= 1)
            worker.run_once()
        finally:
            worker.close()
        with hooks_registry.database.uow() as uow:
            assert uow.webhooks.get_subscription(sub.id).status == "disabled"  # type: ignore[union-attr]
        statuses = {d.status for d in list_deliveries(hooks_registry, sub.id, limit=500)}
        assert statuses == {"disabled"}
        assert len(receiver.received) == 1


def test_the_last_failure_goes_to_the_dead_letter_and_a_replay_delivers_it(
    hooks_registry: Registry,
) -> None:
    with receiving() as receiver:
        sub = create_subscription(
            hooks_registry, url=receiver.url, events=["person.created"], actor="t"
        )
        receiver.answer(*[Answer(500)] * (len(SCHEDULE) + 1))
        ingest_one(hooks_registry, ana("crm", "c1"), actor="t")
        worker = Worker(hooks_registry, threads=2)
        try:
            drain(worker, lambda: list_deliveries(hooks_registry, sub.id, status="dead"))
            (dead,) = list_deliveries(hooks_registry, sub.id, status="dead")
            assert dead.attempts == len(SCHEDULE) + 1
            assert dead.last_status == 500
            replayed = replay_delivery(hooks_registry, sub.id, dead.id)
            assert replayed.status == "pending"
            drain(worker, lambda: receiver.delivered())
        finally:
            worker.close()
        (ok,) = receiver.delivered()
        assert ok.headers["webhook-id"] == str(dead.event_id)


def test_an_hris_change_reaches_the_ats_and_never_echoes_back_to_the_hris(
    hooks_registry: Registry,
) -> None:
    with receiving("/ats") as ats, receiving("/hris") as hris:
        to_ats = create_subscription(
            hooks_registry, url=ats.url, events=["person.updated", "person.created"],
            system="ats", actor="t",
        )  # fmt: skip
        create_subscription(
            hooks_registry, url=hris.url, events=["person.updated", "person.created"],
            system="hris", actor="t", scopes=["persons:read:sensitive"],
        )  # fmt: skip
        ingest_one(hooks_registry, ana("ats", "a1", job_title="Chef"), actor="t")
        ingest_one(
            hooks_registry,
            ana("hris", "h1", job_title="Head Chef", employee_id="E7", birth_date="1990-04-05"),
            actor="t",
        )
        worker = Worker(hooks_registry, threads=4)
        try:
            drain(worker, lambda: worker.run_once() == 0)
        finally:
            worker.close()
        ats_changes = [
            e["data"]["changes"] for e in events_of(ats) if e["type"] == "person.updated"
        ]
        assert any(c.get("job_title") == "Head Chef" for c in ats_changes)
        assert any(c.get("employee_id") == "E7" for c in ats_changes)
        # The ATS holds no sensitive scope: the birth date never reaches it.
        assert all("birth_date" not in c for c in ats_changes)
        # The HRIS owns names, titles, ids and dates: none of them is ever sent to it, and
        # the update it made itself is not echoed back.
        hris_owned = {
            "given_name", "family_name", "middle_name", "job_title", "employee_id",
            "birth_date", "hire_date", "department", "cost_center", "national_id",
        }  # fmt: skip
        for event in events_of(hris):
            assert not set(event["data"].get("changes", {})) & hris_owned, event
        assert not [e for e in events_of(hris) if e["type"] == "person.updated"]
        assert to_ats.system == "ats"


def test_internal_addresses_are_refused_unless_allowed(hooks_registry: Registry) -> None:
    strict = Registry.from_settings(
        settings_for(hooks_registry.settings.database_url, webhook_allow_private=False)
    )
    try:
        for url in (
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://10.0.0.7/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "ftp://example.com/hook",
            "https://user:pw@example.com/hook",
        ):
            with pytest.raises(InvalidRecord) as info:
                create_subscription(strict, url=url, events=["*"], actor="t")
            assert [e.field for e in info.value.errors] == ["url"], url
    finally:
        strict.close()


def test_a_change_and_its_events_commit_together_or_not_at_all(
    hooks_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    flush = WorkingSet.flush

    def flush_then_fail(self: WorkingSet, **kwargs: Any) -> None:
        flush(self, **kwargs)
        raise RuntimeError("the process dies before the commit")

    monkeypatch.setattr(WorkingSet, "flush", flush_then_fail)
    with pytest.raises(RuntimeError):
        ingest_one(hooks_registry, ana("crm", "c1"), actor="t")
    with hooks_registry.database.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(SourceRecordRow)) == 0
        assert conn.scalar(select(func.count()).select_from(OutboxRow)) == 0
    monkeypatch.undo()
    ingest_one(hooks_registry, ana("crm", "c1"), actor="t")
    with hooks_registry.database.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(SourceRecordRow)) == 1
        assert conn.scalar(select(func.count()).select_from(OutboxRow)) >= 1


def test_the_retry_schedule_spans_about_three_days() -> None:
    from mdm.config import Settings

    total = sum(Settings().webhook_retry_schedule)
    assert timedelta(days=2.5) < timedelta(seconds=total) < timedelta(days=3.5)


def test_a_worker_killed_mid_delivery_loses_nothing(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "hooks.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    registry = Registry.from_settings(settings_for(url, webhook_allow_private=True))
    env = {
        **os.environ,
        "MDM_DATABASE_URL": url,
        "MDM_WEBHOOK_ALLOW_PRIVATE": "true",
        "MDM_WEBHOOK_LEASE": "1",
        "MDM_WEBHOOK_TIMEOUT": "30",
        "MDM_WEBHOOK_RETRY_SCHEDULE": "[0.05, 0.1, 0.2]",
        "MDM_HEALTH_INTERVAL": "0",
    }
    mdm = [sys.executable, "-m", "mdm.cli", "worker"]
    try:
        with receiving() as receiver:
            create_subscription(registry, url=receiver.url, events=["*"], actor="t")
            # The first request hangs: the worker is killed while it waits for the answer.
            receiver.answer(Answer(500, hang=3.0))
            ingest_one(registry, ana("crm", "c1"), actor="t")
            with registry.database.engine.connect() as conn:
                sent = {str(r) for (r,) in conn.execute(select(OutboxRow.id))}
            first = subprocess.Popen(
                mdm, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            _wait(lambda: receiver.arrivals, "the first delivery never started")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            in_flight = receiver.arrivals[0]
            second = subprocess.Popen(
                mdm, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                _wait(lambda: {r.headers["webhook-id"] for r in receiver.delivered()} >= sent,
                      "not every event was delivered after the restart")  # fmt: skip
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(10)
        assert in_flight in {r.headers["webhook-id"] for r in receiver.delivered()}
    finally:
        registry.close()


def _wait(condition: Any, message: str, deadline: float = 30.0) -> None:
    stop = threading.Event()
    limit = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < limit, message
        stop.wait(0.05)
