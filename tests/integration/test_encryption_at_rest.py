"""National ids at rest: a dump of the database holds none of them in clear, the blind
index finds every one, and after a key rotation every value opens with the new key alone."""

from __future__ import annotations

import copy
import json
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from mdm.config import SettingsError, load_settings
from mdm.crypto import new_key
from mdm.flow.normalise import blind_index
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import ingest_many
from mdm.services.sources import sealed_locations
from mdm.store.rotation import rotate
from mdm.store.tables import PersonKeyRow, SourceRecordRow
from tests.conftest import settings_for
from tests.factories import audit_trail

SAMPLE = json.loads(Path("fixtures/samples/workday_worker.json").read_text())
N = 1000


def _ssn(i: int) -> str:
    return f"{200 + i // 100:03d}-{i % 99 + 1:02d}-{1000 + i:04d}"


def _records() -> list[IncomingRecord]:
    out = []
    for i in range(N):
        if i % 2:
            data: dict[str, Any] = {
                "given_name": f"Ines{i}", "family_name": "Varga", "email": f"ines{i}@x.io",
                "national_id": _ssn(i), "employee_id": f"H{i}",
            }  # fmt: skip
            out.append(IncomingRecord("hris", f"h-{i}", data))
        else:
            data = copy.deepcopy(SAMPLE["data"])
            data.update({"Worker_ID": str(i), "Employee_ID": f"E-{i}", "National_ID": _ssn(i)})
            data["Legal_Name"]["First_Name"] = f"Jose{i}"
            data["Email_-_Work"] = f"jose{i}@northwind.example"
            data["Email_-_Primary_Home"] = None
            data["Phone_-_Primary_Mobile"] = None
            out.append(IncomingRecord("workday", str(i), data))
    # Refused (no name), but kept: its national id too is sealed.
    bad = {"email": "rex@x.io", "national_id": "219-09-9999x"}
    out.append(IncomingRecord("hris", "bad", bad))
    return out


def _dump(registry: Registry) -> str:
    url = make_url(registry.settings.database_url)
    return subprocess.run(
        ["pg_dump", "--data-only", "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
         "-U", url.username or "postgres", url.database or ""],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip


def _ingest(registry: Registry) -> None:
    records = _records()
    for start in range(0, len(records), 500):
        ingest_many(registry, records[start : start + 500], actor="load")


def test_no_national_id_in_clear_and_the_blind_index_finds_every_one(
    pg_registry: Registry,
) -> None:
    _ingest(pg_registry)
    dump = _dump(pg_registry)
    assert "Varga" in dump and "enc:v1:" in dump  # the dump is the data, sealed values in it
    in_clear = [s for i in range(N) for s in (_ssn(i), _ssn(i).replace("-", "")) if s in dump] + [
        s for s in ("219-09-9999x", "219099999X") if s in dump
    ]
    assert in_clear == []

    key = pg_registry.settings.blind_index_key
    found = 0
    with pg_registry.database.uow() as uow:
        for i in range(N):
            index = blind_index(_ssn(i).replace("-", ""), key)
            (person_id,) = uow.registry.conn.scalars(
                select(PersonKeyRow.person_id).where(
                    PersonKeyRow.kind == "nid", PersonKeyRow.value == index
                )
            ).all()
            person = uow.registry.get_person(person_id)
            assert person is not None
            found += person.golden["national_id"] == _ssn(i).replace("-", "")
    assert found == N


def test_after_rotation_every_value_opens_with_the_new_key_alone(pg_registry: Registry) -> None:
    _ingest(pg_registry)
    old = pg_registry.settings.data_keys
    new = f"k2:{new_key()}"
    both = Registry.from_settings(
        settings_for(pg_registry.settings.database_url, data_keys=f"{new},{old}")
    )
    try:
        moved = rotate(both.database.engine, both.database.sealer, batch=300)
        assert moved["source_records"] >= 2 * N and moved["person keys"] == N
        assert rotate(both.database.engine, both.database.sealer) == {}  # nothing left to move
    finally:
        both.close()
    assert "enc:v1:test1:" not in _dump(pg_registry)

    alone = Registry.from_settings(settings_for(pg_registry.settings.database_url, data_keys=new))
    try:
        with alone.database.uow() as uow:
            for person_id in uow.registry.conn.scalars(
                select(PersonKeyRow.person_id).where(PersonKeyRow.kind == "nid")
            ):
                person = uow.registry.get_person(person_id)
                assert person is not None and person.golden["national_id"].isdigit()
                (record,) = uow.registry.records_of(person_id)
                assert record.attributes["national_id"] == person.golden["national_id"]
                raw = record.raw or {}
                sent = raw["data"].get("National_ID") or raw["data"].get("national_id")
                assert sent.replace("-", "") == person.golden["national_id"]
            (rejection,) = uow.rejections.page(limit=10)
            assert rejection.raw["data"]["national_id"] == "219-09-9999x"
        created = audit_trail(alone, "person.created")
        assert len(created) == N
        assert all(e["after"]["national_id"].isdigit() for e in created)
    finally:
        alone.close()


@pytest.mark.parametrize(
    "spec",
    [
        "k1",
        "k1:c2hvcnQ",
        "k1:!!!",
        "bad id:7w4TWGw0n1b7QmJz9gO3c1uUi7VnqzK0L5m2B1r6ZxY",
        ",",
        "k1:7w4TWGw0n1b7QmJz9gO3c1uUi7VnqzK0L5m2B1r6ZxY7w4TWGw0n1b7QmJz9gO3c1uUi7VnqzK0L5m2B1r6ZxY",
    ],
)
def test_a_bad_key_ring_is_refused_without_echoing_key_material(spec: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(database_url="sqlite://", data_keys=spec, admin_key="s3cr3t-admin")
    message = str(caught.value)
    assert "MDM_DATA_KEYS" in message
    assert "s3cr3t-admin" not in message
    if ":" in spec:
        assert spec.split(":", 1)[1] not in message


def test_rotate_data_seals_values_written_before_encryption(pg_registry: Registry) -> None:
    """A registry that kept national ids in clear: rotate-data seals them where they are."""
    ingest_many(pg_registry, _records()[:4], actor="load")
    clear = {"data": {"national_id": "201-02-1003"}}
    with pg_registry.database.engine.begin() as conn:
        conn.execute(
            update(SourceRecordRow)
            .where(SourceRecordRow.source == "hris")
            .values(raw=clear, attributes={"given_name": "Ines", "national_id": "201021003"})
        )
    assert "201-02-1003" in _dump(pg_registry)

    locate = partial(sealed_locations, pg_registry)
    moved = rotate(pg_registry.database.engine, pg_registry.database.sealer, locate=locate)
    assert moved["source_records"] == 4  # two records, a payload value and an attribute each
    dump = _dump(pg_registry)
    assert "201-02-1003" not in dump and "201021003" not in dump
    with pg_registry.database.uow() as uow:
        (record,) = [
            r
            for pid in uow.registry.conn.scalars(
                select(SourceRecordRow.person_id).where(SourceRecordRow.source_id == "h-1")
            )
            for r in uow.registry.records_of(pid)
        ]
    assert record.raw is not None and record.raw["data"]["national_id"] == "201-02-1003"
    assert record.attributes["national_id"] == "201021003"
