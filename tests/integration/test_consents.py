"""The consent register: the latest statement holds per purpose, whatever order statements
arrive in; merged persons' consents follow the survivor; every statement is audited and a
change of what holds is published, in the same transaction as the statement."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from mdm.model.errors import InvalidRecord, PersonErased, PersonNotFound
from mdm.model.person import OutboxEvent
from mdm.services import consents as consents_service
from mdm.services.consents import ConsentRecorded, consents_of, record_consent
from mdm.services.context import Registry
from mdm.services.ingest import ingest_one
from mdm.services.persons import get_person, person_history
from mdm.services.stewardship import merge_persons
from mdm.store.registry import RegistryRepository
from mdm.store.tables import AuditEventRow, ConsentRow, OutboxRow, PersonRow
from tests.factories import incoming

T0 = datetime(2026, 1, 1, 9, tzinfo=UTC)


def person(registry: Registry, **fields: Any) -> UUID:
    return ingest_one(registry, incoming("crm", **fields), actor="t").person_id


def state(
    registry: Registry, person_id: UUID, purpose: str, granted: bool, day: int, **kw: Any
) -> ConsentRecorded:
    return record_consent(
        registry, person_id, purpose=purpose, granted=granted, source=kw.pop("source", "crm"),
        at=T0 + timedelta(days=day), evidence=kw.pop("evidence", None), actor="t", **kw,
    )  # fmt: skip


def outbox(registry: Registry) -> list[dict[str, Any]]:
    with registry.database.engine.connect() as conn:
        rows = conn.execute(
            select(OutboxRow.payload).where(OutboxRow.type == "person.consent_changed")
        )
        return [r.payload for r in rows]


def count(registry: Registry, table: Any) -> int:
    with registry.database.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def test_the_latest_statement_holds_even_when_an_older_one_arrives_later(
    registry: Registry,
) -> None:
    pid = person(registry)
    first = state(registry, pid, "marketing.email", True, 1, evidence="form:8812")
    assert (first.changed, first.current.granted) == (True, True)
    withdrawn = state(registry, pid, "marketing.email", False, 5)
    assert (withdrawn.changed, withdrawn.current.granted) == (True, False)
    # Captured on day 3 by another system, sent after day 5's withdrawal: kept, not holding.
    late = state(registry, pid, "marketing.email", True, 3, source="ats")
    assert late.changed is False
    assert (late.current.granted, late.current.at) == (False, T0 + timedelta(days=5))
    assert late.statement.source == "ats"

    found = consents_of(registry, pid)
    assert {p: c.granted for p, c in found.current.items()} == {"marketing.email": False}
    assert [c.at.day for c in found.history] == [6, 4, 2]  # newest first by `at`
    assert found.history[-1].evidence == "form:8812"
    assert get_person(registry, pid).consents["marketing.email"].granted is False
    # Two statements changed what holds; the late one was only audited.
    assert [(p["granted"], p["at"]) for p in outbox(registry)] == [
        (True, (T0 + timedelta(days=1)).isoformat()),
        (False, (T0 + timedelta(days=5)).isoformat()),
    ]
    entries, _ = person_history(registry, pid)
    recorded = [e for e in entries if e.action == "person.consent_recorded"]
    assert [e.after["granted"] for e in recorded if e.after] == [True, False, True]
    assert recorded[0].after == {
        "purpose": "marketing.email", "granted": True, "source": "crm",
        "at": (T0 + timedelta(days=1)).isoformat(), "evidence": "form:8812",
    }  # fmt: skip
    assert {e.entity_id for e in recorded} == {str(pid)}


def test_the_same_at_is_won_by_the_later_recorded_and_a_repeat_changes_nothing(
    registry: Registry,
) -> None:
    pid = person(registry)
    state(registry, pid, "analytics", True, 2)
    correction = state(registry, pid, "analytics", False, 2)
    assert (correction.changed, correction.current.granted) == (True, False)
    repeat = state(registry, pid, "analytics", False, 2)
    assert (repeat.changed, repeat.current.id) == (False, repeat.statement.id)
    assert len(outbox(registry)) == 2
    assert len(consents_of(registry, pid).history) == 3


def test_arrival_orders_ties_when_the_clock_stands_still_and_ids_run_backwards(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = person(registry)
    now = datetime.now(UTC)

    class StoppedClock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> StoppedClock:
            return cls.fromtimestamp(now.timestamp(), tz)

    backwards = (UUID(int=2**127 - n) for n in itertools.count())
    monkeypatch.setattr(consents_service, "datetime", StoppedClock)
    monkeypatch.setattr(consents_service, "new_id", lambda: next(backwards))
    for granted in (True, False, True, False):
        last = state(registry, pid, "analytics", granted, 2)
        assert last.current.id == last.statement.id
    history = consents_of(registry, pid).history
    assert [c.granted for c in history] == [False, True, False, True]
    assert len({c.recorded_at for c in history}) == 4


def test_a_survivor_holds_the_consents_of_the_persons_merged_into_it(registry: Registry) -> None:
    ana = person(registry)
    bea = person(registry, given_name="Bea", family_name="Stone", email="bea@stone.io")
    state(registry, ana, "marketing.email", True, 1)
    state(registry, bea, "marketing.email", False, 4)
    state(registry, bea, "profiling", True, 2)
    merge_persons(registry, ana, bea, actor="steward")

    found = consents_of(registry, ana)
    assert {p: c.granted for p, c in found.current.items()} == {
        "marketing.email": False,  # bea's, the latest
        "profiling": True,
    }
    assert found.current["marketing.email"].person_id == bea  # the row did not move
    assert consents_of(registry, bea).person_id == ana  # the merged-away id redirects
    assert set(get_person(registry, ana).consents) == {"marketing.email", "profiling"}

    # Recorded through the old id: lands on the survivor, and holds there.
    through_alias = state(registry, bea, "marketing.email", True, 6)
    assert through_alias.person_id == ana
    assert through_alias.statement.person_id == ana
    assert consents_of(registry, ana).current["marketing.email"].granted is True
    entries, _ = person_history(registry, bea)
    assert sum(e.action == "person.consent_recorded" for e in entries) == 4


def test_unknown_erased_and_invalid_are_refused_and_write_nothing(registry: Registry) -> None:
    pid = person(registry)
    with pytest.raises(PersonNotFound):
        state(registry, UUID("01a22619-2219-7c04-8e21-1a925a769deb"), "analytics", True, 1)
    with pytest.raises(InvalidRecord) as bad:
        record_consent(
            registry, pid, purpose="Marketing", granted=True, source="nowhere",
            at=datetime.now(UTC) + timedelta(minutes=6), evidence=None, actor="t",
        )  # fmt: skip
    assert [e.field for e in bad.value.errors] == ["purpose", "source", "at"]
    with pytest.raises(InvalidRecord):
        record_consent(
            registry, pid, purpose="analytics", granted=True, source="crm",
            at=datetime(2026, 1, 1), evidence=None, actor="t",
        )  # fmt: skip
    with registry.database.engine.begin() as conn:
        conn.execute(update(PersonRow).where(PersonRow.id == pid).values(status="erased"))
    with pytest.raises(PersonErased):
        state(registry, pid, "analytics", True, 1)
    with pytest.raises(PersonErased):
        consents_of(registry, pid)
    assert count(registry, ConsentRow) == 0


def test_the_statement_its_audit_entry_and_its_event_commit_together(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = person(registry)
    audits, events = count(registry, AuditEventRow), count(registry, OutboxRow)
    insert_outbox = RegistryRepository.insert_outbox

    def write_then_die(self: RegistryRepository, rows: list[OutboxEvent]) -> None:
        insert_outbox(self, rows)
        raise RuntimeError("the process dies before the commit")

    monkeypatch.setattr(RegistryRepository, "insert_outbox", write_then_die)
    with pytest.raises(RuntimeError):
        state(registry, pid, "analytics", True, 1)
    assert (count(registry, ConsentRow), count(registry, AuditEventRow)) == (0, audits)
    assert count(registry, OutboxRow) == events
    monkeypatch.undo()
    state(registry, pid, "analytics", True, 1)
    assert count(registry, ConsentRow) == 1
    assert (count(registry, AuditEventRow), count(registry, OutboxRow)) == (audits + 1, events + 1)


_runs = itertools.count()
# (purpose, granted, day): few values, so ties of `at` and re-statements are common.
STATEMENTS = st.lists(
    st.tuples(st.sampled_from(["analytics", "marketing.email"]), st.booleans(), st.integers(0, 3)),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(statements=STATEMENTS)
def test_what_holds_is_the_latest_statement_by_at_then_by_arrival(
    registry: Registry, statements: list[tuple[str, bool, int]]
) -> None:
    # The database outlives the examples: each example states its own purposes.
    run = f"run{next(_runs)}."
    pid = person(registry)
    published_before = len(outbox(registry))
    changes = 0
    for purpose, granted, day in statements:
        changes += state(registry, pid, run + purpose, granted, day).changed
    # The oracle: per purpose, the statement with the highest (day, arrival).
    expected: dict[str, tuple[bool, int]] = {}
    for _, (purpose, granted, day) in sorted(enumerate(statements), key=lambda s: (s[1][2], s[0])):
        expected[run + purpose] = (granted, day)
    found = consents_of(registry, pid)
    current = {p: (c.granted, (c.at - T0).days) for p, c in found.current.items() if run in p}
    assert current == expected
    assert len([c for c in found.history if run in c.purpose]) == len(statements)
    assert len(outbox(registry)) - published_before == changes
