"""The golden record does not depend on the order in which the same record versions
arrived, through the whole ingest path (updates of known records, stale versions refused,
conflicts opened), and it always equals a recompute from scratch."""

from __future__ import annotations

import random
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestResult, ingest_many
from mdm.services.persons import get_person, golden_from_scratch
from tests.conftest import settings_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ATTRIBUTES = st.fixed_dictionaries(
    {"given_name": st.sampled_from(["Ana", "Anna"])},
    optional={
        "job_title": st.sampled_from(["Nurse", "Chef", "Head Chef"]),
        "hire_date": st.sampled_from(["2020-01-06", "2021-03-01"]),
        "compensation": st.sampled_from(
            [{"amount": a, "currency": "USD", "period": "annual"} for a in (100000, 101000, 125000)]
        ),
        "status": st.sampled_from(["candidate", "offer", "hired", "employee"]),
        "phone": st.sampled_from(["+34 612 345 678", "+34 699 111 222"]),
        "department": st.sampled_from(["Kitchen", "Ward 3"]),
    },
)
# (source, record number, day of this version, attributes)
VERSIONS = st.lists(
    st.tuples(st.sampled_from(["crm", "ats", "hris"]), st.integers(0, 2), st.integers(0, 30),
              ATTRIBUTES),
    min_size=1,
    max_size=10,
    unique_by=lambda v: (v[0], v[1], v[2]),
)  # fmt: skip


def _without_versions(value: Any) -> Any:
    """Lineage names record versions: a counter of the updates the registry applied, which
    does depend on arrival (a stale version is refused, not counted)."""
    if isinstance(value, dict):
        return {k: _without_versions(v) for k, v in value.items() if k != "version"}
    if isinstance(value, list):
        return [_without_versions(v) for v in value]
    return value


def _golden_after(template: Path, versions: list[tuple[str, int, int, dict[str, Any]]]) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mdm.db"
        shutil.copy(template, path)
        registry = Registry.from_settings(settings_for(f"sqlite:///{path}"))
        try:
            person_id = None
            for source, n, day, attributes in versions:
                data = {**attributes, "family_name": "Okafor", "email": "ana.okafor@example.com"}
                (outcome,) = ingest_many(
                    registry,
                    [IncomingRecord(source, f"{source}-{n}", data, T0 + timedelta(days=day))],
                    actor="t",
                )
                assert isinstance(outcome, IngestResult)
                person_id = outcome.person_id
            assert person_id is not None
            view = get_person(registry, person_id)
            fresh = golden_from_scratch(registry, view.id)
            assert (view.attributes, view.lineage) == (fresh.attributes, fresh.lineage)
            return view.attributes, _without_versions(view.lineage)
        finally:
            registry.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(versions=VERSIONS, seed=st.integers(0, 2**32 - 1))
def test_the_same_record_versions_in_any_order_give_the_same_golden_record(
    sqlite_template: Path, versions: list[tuple[str, int, int, dict[str, Any]]], seed: int
) -> None:
    shuffled = list(versions)
    random.Random(seed).shuffle(shuffled)
    assert _golden_after(sqlite_template, versions) == _golden_after(sqlite_template, shuffled)
