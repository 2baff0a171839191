"""The ingest use case on SQLite and PostgreSQL: decisions, golden records, events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from mdm.model.errors import BatchTooLarge, InvalidRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestFailure, IngestResult, ingest_many, ingest_one
from mdm.services.match import match_record
from mdm.services.persons import get_person, golden_from_scratch
from mdm.store.tables import (
    AuditEventRow,
    OutboxRow,
    PersonKeyRow,
    PersonRow,
    RejectionRow,
    ReviewItemRow,
    SourceRecordRow,
)
from tests.factories import incoming


def count(registry: Registry, table: type) -> int:
    with registry.database.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def test_first_record_creates_a_person(registry: Registry) -> None:
    result = ingest_one(registry, incoming("ats", "a-1"), actor="test")
    assert result.decision == "created"
    person = get_person(registry, result.person_id)
    assert person.attributes["family_name"] == "García"
    assert person.attributes["emails"] == ["ana.garcia@example.com"]
    assert [(r.source, r.source_id, r.link_state) for r in person.records] == [
        ("ats", "a-1", "NO_MATCH")
    ]


def test_same_email_links_to_the_same_person(registry: Registry) -> None:
    first = ingest_one(registry, incoming("ats", given_name="Ana"), actor="test")
    second = ingest_one(
        registry,
        incoming("hris", given_name="Anna", email=" ANA.GARCIA@example.com"),
        actor="test",
    )
    assert second.decision == "linked"
    assert second.person_id == first.person_id
    assert second.matched_on == ("email",)
    assert second.score == 1.0


def test_known_record_is_updated_in_place(registry: Registry) -> None:
    first = ingest_one(registry, incoming("crm", "c-1", job_title="Engineer"), actor="test")
    again = ingest_one(registry, incoming("crm", "c-1", job_title="Manager"), actor="test")
    assert (again.decision, again.person_id, again.created) == ("updated", first.person_id, False)
    person = get_person(registry, first.person_id)
    assert person.attributes["job_title"] == "Manager"
    assert person.records[0].version == 2
    assert person.version == 2
    assert count(registry, SourceRecordRow) == 1


def test_a_stale_update_is_not_applied(registry: Registry) -> None:
    now = datetime.now(UTC)
    rec = incoming("crm", "c-1", job_title="Manager")
    ingest_one(registry, rec.__class__(rec.source, rec.source_id, rec.data, now), actor="t")
    older = incoming("crm", "c-1", job_title="Intern")
    result = ingest_one(
        registry,
        older.__class__(older.source, older.source_id, older.data, now - timedelta(days=1)),
        actor="t",
    )
    assert [w.field for w in result.warnings] == ["updated_at"]
    assert get_person(registry, result.person_id).attributes["job_title"] == "Manager"


def test_household_email_with_different_names_opens_a_review(registry: Registry) -> None:
    john = ingest_one(
        registry,
        incoming(given_name="John", family_name="Smith", email="smiths@gmail.com"),
        actor="t",
    )
    mary = ingest_one(
        registry,
        incoming(given_name="Mary", family_name="Smith", email="smiths@gmail.com"),
        actor="t",
    )
    assert mary.decision == "review"
    assert mary.person_id != john.person_id
    assert mary.review_id is not None
    with registry.database.engine.connect() as conn:
        item = conn.execute(select(ReviewItemRow)).one()
    assert {item.person_a, item.person_b} == {john.person_id, mary.person_id}
    assert item.status == "open"
    assert "names_disagree" in item.explanation["guards"]


def test_golden_record_is_the_pure_function_of_the_linked_records(registry: Registry) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    records = [
        incoming("crm", "c", phone="+34 612 345 678", job_title="Sales"),
        incoming("ats", "a", job_title="Engineer", birth_date="1990-04-05"),
        incoming("hris", "h", job_title="Staff Engineer", employee_id="E1"),
    ]
    for i, rec in enumerate(records):
        ingest_one(
            registry,
            rec.__class__(rec.source, rec.source_id, rec.data, t0 + timedelta(days=i)),
            actor="t",
        )
    with registry.database.uow() as uow:
        known, _, _ = uow.registry.lookup([("crm", "c")], [], 1)
        person_id = known[("crm", "c")]
        stored = uow.registry.get_person(person_id)
        linked = uow.registry.records_of(person_id)
    assert stored is not None
    assert len(linked) == len(records)
    fresh = golden_from_scratch(registry, person_id)
    assert (stored.golden, stored.lineage) == (fresh.attributes, fresh.lineage)
    assert stored.golden["job_title"] == "Staff Engineer"
    assert stored.lineage["job_title"]["source"] == "hris"
    assert stored.golden["phones"] == ["+34612345678"]


def test_every_change_writes_audit_and_outbox_in_the_same_transaction(registry: Registry) -> None:
    ingest_one(registry, incoming("ats", "a-1"), actor="test")
    ingest_one(registry, incoming("hris", "h-1", job_title="Engineer"), actor="test")
    with registry.database.engine.connect() as conn:
        actions = sorted(conn.scalars(select(AuditEventRow.action)))
        events = sorted(conn.scalars(select(OutboxRow.type)))
    assert actions == ["person.created", "person.updated", "record.linked", "record.linked"]
    assert events == actions


def test_batch_keeps_order_and_a_bad_record_fails_alone(registry: Registry) -> None:
    outcomes = ingest_many(
        registry,
        [
            incoming("ats", "a-1"),
            incoming("ats", "a-2", given_name=None, family_name=None),
            incoming("hris", "h-1", given_name="Anna"),
        ],
        actor="t",
    )
    assert isinstance(outcomes[0], IngestResult) and outcomes[0].decision == "created"
    assert isinstance(outcomes[1], IngestFailure)
    assert isinstance(outcomes[2], IngestResult) and outcomes[2].decision == "linked"
    assert count(registry, RejectionRow) == 1
    assert count(registry, SourceRecordRow) == 2


def test_records_in_one_batch_see_each_other(registry: Registry) -> None:
    outcomes = ingest_many(
        registry,
        [incoming("ats", f"a-{i}", given_name="Ana") for i in range(5)],
        actor="t",
    )
    ids = {o.person_id for o in outcomes if isinstance(o, IngestResult)}
    assert len(ids) == 1


def test_an_oversize_batch_is_refused_whole(registry: Registry) -> None:
    limit = registry.settings.max_batch_records
    with pytest.raises(BatchTooLarge):
        ingest_many(registry, [incoming() for _ in range(limit + 1)], actor="t")
    assert count(registry, SourceRecordRow) == 0


def test_an_invalid_record_is_kept_verbatim_as_a_rejection(registry: Registry) -> None:
    with pytest.raises(InvalidRecord):
        ingest_one(registry, incoming("crm", "bad", email="x@@y", given_name=7), actor="t")
    with registry.database.engine.connect() as conn:
        row = conn.execute(select(RejectionRow)).one()
    assert row.raw["data"]["given_name"] == 7
    assert {e["field"] for e in row.errors} == {"data.given_name"}
    assert count(registry, PersonRow) == 0


def test_person_id_hint_links_to_that_person(registry: Registry) -> None:
    first = ingest_one(registry, incoming("ats", email="one@example.com"), actor="t")
    hinted = ingest_one(
        registry,
        incoming("hris", email="two@example.com", person_id=first.person_id),
        actor="t",
    )
    assert (hinted.decision, hinted.person_id) == ("linked", first.person_id)
    assert hinted.matched_on == ("person_id",)


def test_unknown_person_id_hint_is_an_error_naming_the_field(registry: Registry) -> None:
    import uuid

    with pytest.raises(InvalidRecord) as info:
        ingest_one(registry, incoming(person_id=uuid.uuid4()), actor="t")
    assert info.value.errors[0].field == "person_id"
    assert count(registry, SourceRecordRow) == 0


def test_match_writes_nothing(registry: Registry) -> None:
    ingest_one(registry, incoming("ats"), actor="t")
    before = [count(registry, t) for t in (PersonRow, SourceRecordRow, AuditEventRow, OutboxRow)]
    result = match_record(registry, incoming("hris", given_name="Anna"))
    assert result.decision == "linked"
    assert result.candidates[0].explanation["exact_keys"] == ["email"]
    after = [count(registry, t) for t in (PersonRow, SourceRecordRow, AuditEventRow, OutboxRow)]
    assert before == after


def test_a_read_only_unit_holds_no_transaction_on_postgresql(pg_registry: Registry) -> None:
    # What a match reads goes statement by statement, each its own transaction: nothing
    # is left open to roll back, and there is nothing to commit.
    assigned = text("SELECT pg_current_xact_id_if_assigned()")
    with pg_registry.database.uow(read_only=True) as uow:
        uow.registry.conn.execute(text("SELECT pg_current_xact_id()"))
        assert uow.registry.conn.scalar(assigned) is None
        with pytest.raises(AssertionError):
            uow.commit()
    with pg_registry.database.uow() as uow:
        uow.registry.conn.execute(text("SELECT pg_current_xact_id()"))
        assert uow.registry.conn.scalar(assigned) is not None


def test_generic_values_bring_no_candidates(registry: Registry) -> None:
    given = [
        "Liam",
        "Olivia",
        "Noah",
        "Emma",
        "Oscar",
        "Ava",
        "Elijah",
        "Mia",
        "Lucas",
        "Zoe",
        "Hugo",
        "Ines",
        "Pablo",
        "Yara",
        "Ravi",
        "Keiko",
        "Tomasz",
        "Freya",
        "Idris",
        "Nadia",
        "Bruno",
        "Clara",
        "Dmitri",
        "Farah",
        "Goran",
        "Hana",
    ]
    families = ["Okafor", "Lindqvist", "Tanaka"]
    assert len(given) * len(families) > registry.settings.max_block_size
    ingest_many(
        registry,
        [
            incoming("crm", f"c-{g}-{f}", given_name=g, family_name=f, email="test@test.com")
            for g in given
            for f in families
        ],
        actor="t",
    )
    result = match_record(
        registry, incoming(given_name="Zed", family_name="Q", email="test@test.com")
    )
    assert result.candidates == ()
    assert result.decision == "created"


def test_every_record_is_linked_to_exactly_one_live_person(registry: Registry) -> None:
    from fixtures.generator import generate
    from mdm.flow.normalise import parse_timestamp
    from mdm.model.record import IncomingRecord

    generated = [
        IncomingRecord(g.source, g.source_id, g.data, parse_timestamp(g.updated_at))
        for g in generate(600, seed=3)
    ]
    for start in range(0, len(generated), 150):
        ingest_many(registry, generated[start : start + 150], actor="t")
    with registry.database.engine.connect() as conn:
        orphans = conn.scalar(
            select(func.count())
            .select_from(SourceRecordRow)
            .join(PersonRow, PersonRow.id == SourceRecordRow.person_id)
            .where(PersonRow.status != "active")
        )
        # A person without records is a redirect left by a merge, never a live one.
        empty = conn.scalar(
            select(func.count())
            .select_from(PersonRow)
            .where(~PersonRow.id.in_(select(SourceRecordRow.person_id)))
            .where(PersonRow.status != "merged")
        )
        keys_of_dead = conn.scalar(
            select(func.count())
            .select_from(PersonKeyRow)
            .where(~PersonKeyRow.person_id.in_(select(SourceRecordRow.person_id)))
        )
    assert count(registry, SourceRecordRow) + count(registry, RejectionRow) >= len(generated) - 5
    assert (orphans, empty, keys_of_dead) == (0, 0, 0)


def test_a_record_with_many_keys_is_written_in_foreign_key_order(registry: Registry) -> None:
    # Enough phones and emails for the keys to go by COPY while the person is a small insert.
    record = incoming(
        "crm",
        emails=[f"ana{i}@example.com" for i in range(20)],
        phones=[f"+34 612 345 {i:03d}" for i in range(20)],
    )
    result = ingest_one(registry, record, actor="t")
    assert result.decision == "created"
    assert count(registry, PersonKeyRow) >= 40


def test_bulk_writes_keep_every_character(registry: Registry) -> None:
    tricky = "tab\there, new\nline, back\\slash, quote \" and 'ü 中文 😀"
    records = [
        incoming(
            "ats",
            f"a-{i}",
            given_name=f"Zoë{i}",
            family_name="O'Brien\\Smith",
            email=f"z{i}@example.com",
            interview_feedback=tricky,
            job_title="C\\O\tO",
        )
        for i in range(40)  # enough rows for the bulk path
    ]
    ingest_many(registry, records, actor="t")
    with registry.database.engine.connect() as conn:
        rows = conn.execute(select(SourceRecordRow.raw, SourceRecordRow.attributes)).all()
    assert len(rows) == 40
    for raw, attributes in rows:
        assert raw["data"]["interview_feedback"] == tricky
        assert attributes["interview_feedback"] == tricky
        assert attributes["family_name"] == "O'Brien\\Smith"
        assert attributes["job_title"] == "C\\O\tO"


def test_a_stale_person_version_is_refused(registry: Registry) -> None:
    from mdm.model.errors import ConcurrentUpdate

    first = ingest_one(registry, incoming("ats", "a-1"), actor="t")
    with registry.database.uow() as uow:
        person = uow.registry.load_persons([first.person_id])[first.person_id]
        # As if another writer had bumped the version since this one loaded it.
        person.version += 5
        with pytest.raises(ConcurrentUpdate), uow.registry.pipelined():
            uow.registry.update_persons([person])
    assert get_person(registry, first.person_id).version == 1


def test_a_candidate_changed_before_the_write_makes_the_unit_start_again(
    pg_registry: Registry,
) -> None:
    """Candidates are loaded without their golden record and attributes, which are read
    only for the persons a record changes. A person another writer changed in between
    must not be written from the older load: the unit of work starts again, and the
    person ends with every record."""
    from mdm.model.errors import ConcurrentUpdate
    from mdm.model.record import IncomingRecord
    from mdm.services.ingest import _resolve
    from mdm.services.sources import prepare

    name = {"given_name": "Perpetua", "family_name": "Halvorsen", "birth_date": "1979-03-02"}
    first = ingest_one(
        pg_registry,
        IncomingRecord("hris", "h-1", {**name, "email": "p.h@example.org", "phone": "+4790012345",
                                       "national_id": "123-45-6789", "department": "Finance"}),
        actor="t",
    )  # fmt: skip
    by_email = prepare(
        pg_registry, IncomingRecord("ats", "a-1", {**name, "email": "p.h@example.org"})
    )
    # Linked by phone, name and birth date: another exact key, so not serialised with it.
    by_phone = IncomingRecord(
        "crm", "c-1", {**name, "email": "perp@mail.example", "phone": "+4790012345"}
    )
    with pg_registry.database.uow() as uow:
        ws = pg_registry.working_set(uow.registry, pg_registry.scorer)
        ws.load([by_email])
        other = ingest_one(pg_registry, by_phone, actor="other writer")
        assert (other.decision, other.person_id) == ("linked", first.person_id)
        _resolve(pg_registry, ws, by_email, "t", None)
        with pytest.raises(ConcurrentUpdate):
            ws.flush(actor="t", correlation_id=None)

    again = ingest_one(pg_registry, by_email.incoming, actor="t")
    assert (again.decision, again.person_id) == ("linked", first.person_id)
    person = get_person(pg_registry, first.person_id)
    assert sorted((r.source, r.source_id) for r in person.records) == [
        ("ats", "a-1"), ("crm", "c-1"), ("hris", "h-1")
    ]  # fmt: skip
    # The golden record was built from every record's attributes, the loaded ones included.
    assert person.attributes["national_id"] == "123456789"
    assert person.attributes["department"] == "Finance"
    assert sorted(person.attributes["emails"]) == ["p.h@example.org", "perp@mail.example"]
