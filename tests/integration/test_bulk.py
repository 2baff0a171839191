"""Bulk inserts keep every value as it was given, whatever the characters, on both stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from mdm.services.context import Registry
from mdm.store.bulk import write_tables
from mdm.store.registry import persons_t, records_t

AWKWARD = ["tab\there", "new\nline", "back\\slash", 'quote"s', "ünïcödé 名前", "\\N", "", "€\r"]


def _rows(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    at = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    persons, records = [], []
    for i in range(n):
        text = AWKWARD[i % len(AWKWARD)]
        pid = uuid.uuid4()
        persons.append(
            {"id": pid, "status": "active", "merged_into": None,
             "golden": {"given_name": text, "n": i, "nested": {"list": [text, None, 1.5]}},
             "lineage": {}, "version": 1, "created_at": at, "updated_at": at + timedelta(i),
             "stewardship": None, "data_key": None}
        )  # fmt: skip
        records.append(
            {"id": uuid.uuid4(), "source": "crm", "source_id": f"{text}-{i}", "person_id": pid,
             "raw": {"data": {"note": text, "big": 2**53}}, "attributes": {"x": text},
             "features": {}, "source_updated_at": None, "received_at": at, "version": 1,
             "link_source": "AUTO", "link_state": "NO_MATCH", "link_score": 0.123456789,
             "link_rule": "no_candidate", "explanation": {"why": [text]}, "linked_at": at}
        )  # fmt: skip
    return persons, records


@pytest.mark.parametrize("n", [1, 250])
def test_rows_written_in_bulk_read_back_unchanged(registry: Registry, n: int) -> None:
    persons, records = _rows(n)
    with registry.database.engine.begin() as conn:
        write_tables(conn, [(persons_t, persons), (records_t, records)])
    with registry.database.engine.connect() as conn:
        got_persons = {r.id: r for r in conn.execute(select(persons_t))}
        got_records = {r.id: r for r in conn.execute(select(records_t))}
    assert len(got_persons) == n and len(got_records) == n
    for want in persons:
        row = got_persons[want["id"]]
        assert row.golden == want["golden"]
        assert row.updated_at == want["updated_at"]
        assert row.stewardship is None and row.merged_into is None
    for want in records:
        row = got_records[want["id"]]
        assert (row.source_id, row.raw, row.attributes, row.explanation) == (
            want["source_id"], want["raw"], want["attributes"], want["explanation"]
        )  # fmt: skip
        assert row.link_score == want["link_score"] and row.source_updated_at is None
