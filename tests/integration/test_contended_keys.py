"""A batch whose record's key a concurrent transaction holds goes on with its other records
(PostgreSQL): the held record waits for a later unit, with every later record sharing a
key with it, and the results come back in the order posted."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import select, text

from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestFailure, IngestResult, ingest_many
from mdm.store.locks import lock_id
from mdm.store.tables import SourceRecordRow


def _stored(registry: Registry, source_id: str) -> dict[str, Any] | None:
    with registry.database.engine.connect() as conn:
        row = conn.execute(
            select(SourceRecordRow.attributes).where(SourceRecordRow.source_id == source_id)
        ).first()
    return None if row is None else dict(row.attributes)


def _until(condition: Any, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_held_key_holds_up_its_records_only_and_keeps_their_order(
    pg_registry: Registry,
) -> None:
    held = {"given_name": "Kofi", "family_name": "Mensah", "email": "kofi@example.com"}
    batch = [
        IncomingRecord("crm", "c-1", {**held, "job_title": "Analyst"}),
        IncomingRecord(
            "crm", "c-2", {"given_name": "Ama", "family_name": "Owusu", "email": "ama@example.com"}
        ),
        # The same record again, newer: it must be applied after the first version.
        IncomingRecord("crm", "c-1", {**held, "job_title": "Lead Analyst"}),
        IncomingRecord(
            "ats",
            "a-9",
            {"given_name": "Yaw", "family_name": "Boateng", "email": "yaw@example.com"},
        ),
    ]
    outcomes: list[IngestResult | IngestFailure] = []
    other = pg_registry.database.engine.connect()
    try:
        # A concurrent unit of work holding the first record's email.
        lock = {"k": lock_id("email:kofi@example.com")}
        other.execute(text("SELECT pg_advisory_xact_lock(:k)"), lock)
        worker = threading.Thread(
            target=lambda: outcomes.extend(ingest_many(pg_registry, batch, actor="test"))
        )
        worker.start()
        # The records sharing nothing with the held key are committed meanwhile.
        assert _until(lambda: _stored(pg_registry, "a-9") is not None)
        assert _stored(pg_registry, "c-2") is not None
        assert _stored(pg_registry, "c-1") is None
        assert worker.is_alive()
    finally:
        other.rollback()  # the concurrent unit ends: its lock is released
        other.close()
    worker.join(timeout=60)
    assert not worker.is_alive()

    assert [(o.source, o.source_id) for o in outcomes if isinstance(o, IngestResult)] == [
        ("crm", "c-1"), ("crm", "c-2"), ("crm", "c-1"), ("ats", "a-9"),
    ]  # fmt: skip
    decisions = [o.decision for o in outcomes if isinstance(o, IngestResult)]
    assert decisions == ["created", "created", "updated", "created"]
    stored = _stored(pg_registry, "c-1")
    assert stored is not None and stored["job_title"] == "Lead Analyst"


def test_a_batch_whose_every_record_is_held_finishes_once_the_lock_is_released(
    pg_registry: Registry,
) -> None:
    batch = [
        IncomingRecord("hris", f"h-{n}", {"given_name": "Esi", "family_name": "Asante",
                                          "email": "esi@example.com", "country": "GH"})
        for n in range(3)
    ]  # fmt: skip
    outcomes: list[IngestResult | IngestFailure] = []
    other = pg_registry.database.engine.connect()
    try:
        other.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id("email:esi@example.com")}
        )
        worker = threading.Thread(
            target=lambda: outcomes.extend(ingest_many(pg_registry, batch, actor="test"))
        )
        worker.start()
        # It waits for the lock rather than giving up: nothing is stored while it is held.
        assert _until(lambda: _waiting_on_a_lock(pg_registry))
        assert all(_stored(pg_registry, f"h-{n}") is None for n in range(3))
    finally:
        other.rollback()
        other.close()
    worker.join(timeout=60)
    assert not worker.is_alive()
    decisions = [o.decision for o in outcomes if isinstance(o, IngestResult)]
    assert decisions == ["created", "linked", "linked"]


def _waiting_on_a_lock(registry: Registry) -> bool:
    with registry.database.engine.connect() as conn:
        return bool(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND wait_event = 'advisory' AND datname = current_database()"
                )
            )
        )
