"""Concurrent units of work sharing an exact key serialise on it (PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestResult, ingest_many
from mdm.store.tables import PersonRow, SourceRecordRow


@pytest.mark.parametrize(
    ("shared", "value"),
    [("employee_id", "E-1001"), ("national_id", "123-45-6789")],
)
def test_concurrent_records_sharing_an_identifier_make_one_person(
    pg_registry: Registry, shared: str, value: str
) -> None:
    def send(worker: int) -> list[str]:
        records = [
            IncomingRecord(
                "hris",
                f"w{worker}-{n}",
                {"given_name": "Kofi", "family_name": "Mensah", "country": "US", shared: value},
            )
            for n in range(5)
        ]
        outcomes = ingest_many(pg_registry, records, actor=f"worker-{worker}")
        return [o.decision for o in outcomes if isinstance(o, IngestResult)]

    with ThreadPoolExecutor(8) as pool:
        decisions = [d for batch in pool.map(send, range(8)) for d in batch]

    assert len(decisions) == 40
    assert decisions.count("created") == 1
    with pg_registry.database.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(PersonRow)) == 1
        assert conn.scalar(select(func.count()).select_from(SourceRecordRow)) == 40
