"""A small demo data set for `make run`, loaded once."""

from __future__ import annotations

from fixtures.generator import generate
from mdm.flow.normalise import parse_timestamp
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestFailure, ingest_many

DEMO_RECORDS = 400
DEMO_SEED = 7


def load_demo(registry: Registry, *, records: int = DEMO_RECORDS) -> tuple[int, int]:
    """Ingest the demo records unless the registry already holds records.
    Returns (records ingested, records rejected)."""
    with registry.database.uow() as uow:
        if uow.registry.count("source_records"):
            return 0, 0
    batch = [
        IncomingRecord(
            source=g.source,
            source_id=g.source_id,
            data=g.data,
            updated_at=parse_timestamp(g.updated_at),
        )
        for g in generate(records, seed=DEMO_SEED)
    ]
    ingested = rejected = 0
    for start in range(0, len(batch), 200):
        for outcome in ingest_many(registry, batch[start : start + 200], actor="demo"):
            if isinstance(outcome, IngestFailure):
                rejected += 1
            else:
                ingested += 1
    return ingested, rejected
