"""Concurrent ingests over real HTTP against a uvicorn server on PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from mdm.services.context import Registry
from mdm.store.tables import PersonRow, ReviewItemRow, SourceRecordRow
from tests.conftest import ADMIN_KEY
from tests.serving import served

CLIENTS = 16
IDENTITIES = 100
RECORDS_EACH = 10


@pytest.fixture
def server(pg_registry: Registry) -> Iterator[str]:
    with served(pg_registry.settings.database_url, workers=4, MDM_DB_POOL_SIZE="8") as base:
        yield base


def test_concurrent_ingests_sharing_an_email_never_create_two_persons(
    server: str, pg_registry: Registry
) -> None:
    families = ["Okafor", "Lindqvist", "Tanaka", "Moreau", "Kowalski"]
    records = [
        {
            "source": ("crm", "ats", "hris")[n % 3],
            "source_id": f"id-{i}-{n}",
            "data": {
                "given_name": f"Pat{i}",
                "family_name": families[i % len(families)],
                "email": f"person{i}@example.com",
            },
        }
        for i in range(IDENTITIES)
        for n in range(RECORDS_EACH)
    ]
    random.Random(7).shuffle(records)
    chunks = [records[k::CLIENTS] for k in range(CLIENTS)]

    def send(chunk: list[dict]) -> list[int]:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        with httpx.Client(base_url=server, headers=headers, timeout=60) as http:
            return [http.post("/v1/records", json=r).status_code for r in chunk]

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for result in pool.map(send, chunks) for s in result]

    assert statuses.count(201) == len(records)
    with pg_registry.database.engine.connect() as conn:
        persons = conn.scalar(select(func.count()).select_from(PersonRow))
        linked = conn.scalar(
            select(func.count(func.distinct(SourceRecordRow.person_id))).select_from(
                SourceRecordRow
            )
        )
        per_person = set(
            conn.scalars(
                select(func.count())
                .select_from(SourceRecordRow)
                .group_by(SourceRecordRow.person_id)
            )
        )
        reviews = conn.scalar(select(func.count()).select_from(ReviewItemRow))
    assert persons == IDENTITIES
    assert linked == IDENTITIES
    assert per_person == {RECORDS_EACH}
    assert reviews == 0
