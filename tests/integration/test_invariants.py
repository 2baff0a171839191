"""Invariants of the registry (DESIGN section 4) over arbitrary sequences of ingests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestResult, ingest_many
from mdm.services.persons import get_person, golden_from_scratch
from mdm.store.tables import PersonRow, SourceRecordRow
from tests.conftest import settings_for

GIVEN = ["Ana", "Anna", "John", "Jon", "Mary", "Bill", "William", "Zoë"]
FAMILY = ["García", "Garcia", "Smith", "Smyth", "Lee"]
EMAILS = ["a@x.io", "b@x.io", "home@family.org", None]
PHONES = ["+34 612 345 678", "+44 20 7946 0958", None]
DATES = ["1980-01-02", "1980-02-01", "1991-07-07", None]

record_data = st.fixed_dictionaries(
    {
        "given_name": st.sampled_from(GIVEN),
        "family_name": st.sampled_from(FAMILY),
        "email": st.sampled_from(EMAILS),
        "phone": st.sampled_from(PHONES),
        "birth_date": st.sampled_from(DATES),
        "job_title": st.sampled_from(["Engineer", "Nurse", None]),
        # Values that open conflicts: a second hire date, pay more than 2% off the offer.
        "hire_date": st.sampled_from(["2020-01-06", "2021-03-01", None, None]),
        "compensation": st.sampled_from(
            [{"amount": a, "currency": "USD", "period": "annual"} for a in (100000, 101000, 120000)]
            + [None, None]
        ),
    }
).filter(lambda d: d["email"] or d["phone"] or d["birth_date"])
records = st.lists(
    st.tuples(st.sampled_from(["crm", "ats", "hris"]), st.integers(0, 6), record_data),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(records, min_size=1, max_size=3))
def test_every_record_has_one_live_person_whose_golden_record_is_derived(
    sqlite_template: Path, batches: list[list[tuple[str, int, dict]]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mdm.db"
        shutil.copy(sqlite_template, path)
        registry = Registry.from_settings(settings_for(f"sqlite:///{path}"))
        try:
            sent: set[tuple[str, str]] = set()
            issued: dict[tuple[str, str], UUID] = {}
            for batch in batches:
                incoming = [
                    IncomingRecord(source, f"{source}-{n}", {k: v for k, v in d.items() if v})
                    for source, n, d in batch
                ]
                outcomes = ingest_many(registry, incoming, actor="property")
                for record, outcome in zip(incoming, outcomes, strict=True):
                    assert isinstance(outcome, IngestResult)
                    issued[(record.source, record.source_id)] = outcome.person_id
                sent.update((r.source, r.source_id) for r in incoming)
            check_invariants(registry, sent)
            # Every person id ever issued resolves, through merges, to the record's person.
            with registry.database.engine.connect() as conn:
                holder = {
                    (s, i): p
                    for s, i, p in conn.execute(
                        select(
                            SourceRecordRow.source,
                            SourceRecordRow.source_id,
                            SourceRecordRow.person_id,
                        )
                    )
                }
            for key, person_id in issued.items():
                assert get_person(registry, person_id).id == holder[key]
        finally:
            registry.close()


def check_invariants(registry: Registry, sent: set[tuple[str, str]]) -> None:
    with registry.database.engine.connect() as conn:
        stored = {
            (s, i): p
            for s, i, p in conn.execute(
                select(SourceRecordRow.source, SourceRecordRow.source_id, SourceRecordRow.person_id)
            )
        }
        persons = {p.id: p for p in conn.execute(select(PersonRow))}
        assert conn.scalar(select(func.count()).select_from(SourceRecordRow)) == len(sent)
    # Nothing sent is lost, and every record belongs to exactly one live person.
    assert set(stored) == sent
    assert all(persons[p].status == "active" for p in stored.values())
    # A person without records is a redirect, and every redirect ends at a live person.
    for person_id, row in persons.items():
        if person_id not in stored.values():
            assert row.status == "merged"
            seen = {person_id}
            while row.status == "merged":
                assert row.merged_into not in seen
                seen.add(row.merged_into)
                row = persons[row.merged_into]
            assert row.status == "active"
    # Each golden record is the pure function of the person's records.
    for person_id, row in persons.items():
        fresh = golden_from_scratch(registry, person_id)
        assert row.golden == fresh.attributes
        assert row.lineage == fresh.lineage
