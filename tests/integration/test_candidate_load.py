"""Candidates as a unit of work loads them (what deciding a record needs) are the persons
and records the full load gives, less what the full load alone reads."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from mdm.model.person import LinkedRecord, PersonStatus
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import ingest_many
from mdm.services.stewardship import merge_persons
from tests.factories import data

_FULL_ONLY = {"attributes", "explanation", "raw"}


def _record_fields(r: LinkedRecord) -> dict[str, object]:
    return {f.name: getattr(r, f.name) for f in fields(r) if f.name not in _FULL_ONLY}


def test_candidate_load_matches_the_full_load(registry: Registry) -> None:
    at = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    results = ingest_many(
        registry,
        [
            IncomingRecord("crm", "c-1", data(given_name="Ada", family_name="Byron",
                                              email="ada@example.com"), at),
            IncomingRecord("ats", "a-1", data(given_name="Ada", family_name="Byron",
                                              email="ada@example.com")),  # no source time
            IncomingRecord("hris", "h-1", data(given_name="Alan", family_name="Turing",
                                               email="alan@example.org"), at),
        ],
        actor="test",
    )  # fmt: skip
    ada, _, alan = (r.person_id for r in results)  # type: ignore[union-attr]
    # Received again: its receipt time moves on, its link time stays.
    later = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    update = data(given_name="Ada", family_name="Byron", email="ada@example.com", job_title="CTO")
    ingest_many(registry, [IncomingRecord("crm", "c-1", update, later)], actor="test")
    merge_persons(registry, ada, alan, actor="steward")
    with registry.database.uow() as uow:
        partial = uow.registry.load_persons([alan], candidates=True)
        full = uow.registry.load_persons([alan])
    # The merged-away id brings the person it was merged into.
    assert set(partial) == set(full) == {ada, alan}
    assert partial[alan].status == PersonStatus.MERGED and partial[alan].merged_into == ada
    for pid, person in full.items():
        loaded = partial[pid]
        for name in ("id", "status", "version", "created_at", "updated_at", "merged_into"):
            assert getattr(loaded, name) == getattr(person, name), name
        assert loaded.golden == {} and loaded.choices == {} and loaded.raised == set()
        assert person.status != PersonStatus.ACTIVE or person.golden
        assert [_record_fields(r) for r in sorted(loaded.records, key=lambda r: r.source)] == [
            _record_fields(r) for r in sorted(person.records, key=lambda r: r.source)
        ]
        assert all(r.attributes == {} for r in loaded.records)
    records = {r.source: r for r in full[ada].records}
    assert set(records) == {"crm", "ats", "hris"}
    assert records["ats"].source_updated_at is None and records["crm"].source_updated_at == later
    assert records["crm"].received_at > records["crm"].linked_at
    assert all(r.received_at.tzinfo == UTC for r in partial[ada].records)
