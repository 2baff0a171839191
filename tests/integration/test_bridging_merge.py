"""A record that links two persons shows them to be one human: they merge, safely.

Records arrive in any order. A CRM contact with a personal address and an ATS candidate
with a work address and a phone look like two namesakes until the HRIS record carrying
the personal address AND the phone arrives; from then on they are one person, whatever
the order they came in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select

from mdm.model.ids import new_id
from mdm.model.person import ReviewItem
from mdm.services.context import Registry
from mdm.services.ingest import IngestResult, ingest_many, ingest_one
from mdm.services.persons import get_person, search_persons
from mdm.store.tables import OutboxRow, PersonKeyRow, ReviewItemRow
from tests.factories import audit_trail, incoming

NAME = {"given_name": "Imelda", "family_name": "Quarshie"}
HOME = "imelda.q@example.org"
WORK = "iquarshie@initech.com"
PHONE = "+44 7911 123456"


def _two_namesakes(
    registry: Registry, *, crm: dict[str, str] | None = None, ats: dict[str, str] | None = None
) -> tuple[UUID, UUID]:
    contact = ingest_one(
        registry, incoming("crm", "c-1", **NAME, email=HOME, **(crm or {})), actor="t"
    )
    candidate = ingest_one(
        registry,
        incoming("ats", "a-1", **NAME, email=WORK, phone=PHONE, **(ats or {})),
        actor="t",
    )
    # A name alone never links: two persons so far.
    assert candidate.decision == "created" and candidate.person_id != contact.person_id
    return contact.person_id, candidate.person_id


def test_a_record_that_links_two_persons_merges_them(registry: Registry) -> None:
    older, newer = _two_namesakes(registry)
    bridge = ingest_one(
        registry, incoming("hris", "h-1", **NAME, email=HOME, phone=PHONE), actor="hr"
    )
    assert bridge.decision == "linked"
    # The older person survives: its id is the one other systems have known longest.
    assert bridge.person_id == older
    assert bridge.merged_ids == (newer,)
    assert bridge.explanation["merged"] == [str(newer)]

    person = get_person(registry, older)
    assert sorted((r.source, r.source_id) for r in person.records) == [
        ("ats", "a-1"), ("crm", "c-1"), ("hris", "h-1"),
    ]  # fmt: skip
    assert person.aliases == (newer,)
    assert sorted(person.attributes["emails"]) == sorted([HOME, WORK])
    # The merged-away id resolves to the survivor for good.
    assert get_person(registry, newer).id == older
    # Its keys now find the survivor only.
    assert [p.id for p in search_persons(registry, phone=PHONE)] == [older]
    with registry.database.engine.connect() as conn:
        key_holders = set(conn.scalars(select(PersonKeyRow.person_id)))
        event = conn.execute(select(OutboxRow.payload).where(OutboxRow.type == "person.merged"))
        payload = event.scalar_one()
    (merged,) = audit_trail(registry, "person.merged")
    assert key_holders == {older}
    assert (merged["entity_id"], merged["actor"]) == (str(newer), "hr")
    assert merged["after"]["into"] == str(older)
    assert merged["after"]["records"] == ["ats/a-1"]
    assert merged["after"]["record"] == "hris/h-1" and merged["after"]["score"] >= 0.95
    assert payload["person_id"] == str(older) and payload["merged_id"] == str(newer)


def test_the_order_of_arrival_does_not_change_the_partition(registry: Registry) -> None:
    """The bridge first, then the two others: one person as well."""
    results = ingest_many(
        registry,
        [
            incoming("hris", "h-1", **NAME, email=HOME, phone=PHONE),
            incoming("ats", "a-1", **NAME, email=WORK, phone=PHONE),
            incoming("crm", "c-1", **NAME, email=HOME),
        ],
        actor="t",
    )
    assert len({r.person_id for r in results}) == 1  # type: ignore[union-attr]


def test_persons_created_and_merged_in_one_batch_are_written_in_order(
    registry: Registry,
) -> None:
    contact, candidate, bridge = ingest_many(
        registry,
        [
            incoming("crm", "c-1", **NAME, email=HOME),
            incoming("ats", "a-1", **NAME, email=WORK, phone=PHONE),
            incoming("hris", "h-1", **NAME, email=HOME, phone=PHONE),
        ],
        actor="t",
    )
    assert isinstance(contact, IngestResult) and isinstance(candidate, IngestResult)
    assert isinstance(bridge, IngestResult)
    assert bridge.merged_ids == (candidate.person_id,)
    # Ids issued earlier in the batch resolve to the survivor.
    assert get_person(registry, candidate.person_id).id == contact.person_id
    assert len(get_person(registry, contact.person_id).records) == 3


def test_conflicting_birth_dates_keep_the_persons_apart(registry: Registry) -> None:
    older, newer = _two_namesakes(
        registry, crm={"birth_date": "1961-11-30"}, ats={"birth_date": "1990-03-04"}
    )
    bridge = ingest_one(
        registry, incoming("hris", "h-1", **NAME, email=HOME, phone=PHONE), actor="t"
    )
    # The bridge agrees with both, but a mother and a daughter sharing a name are two.
    assert (bridge.decision, bridge.person_id, bridge.merged_ids) == ("linked", older, ())
    assert get_person(registry, newer).id == newer


def test_persons_a_steward_called_distinct_are_not_merged(registry: Registry) -> None:
    older, newer = _two_namesakes(registry)
    with registry.database.uow() as uow:
        uow.registry.add_not_a_match(
            older, newer, actor="steward", reason="review", at=datetime.now(UTC)
        )
        uow.commit()
    bridge = ingest_one(
        registry, incoming("hris", "h-1", **NAME, email=HOME, phone=PHONE), actor="t"
    )
    assert bridge.decision == "linked" and bridge.merged_ids == ()
    assert get_person(registry, newer).id == newer


def test_open_reviews_follow_the_merge(registry: Registry) -> None:
    older, newer = _two_namesakes(registry)
    stranger = ingest_one(
        registry, incoming("crm", "c-9", given_name="Olu", family_name="Bankole"), actor="t"
    ).person_id
    between = _review(older, newer)
    elsewhere = _review(stranger, newer)
    with registry.database.uow() as uow:
        uow.registry.insert_reviews([between, elsewhere])
        uow.commit()
    ingest_one(registry, incoming("hris", "h-1", **NAME, email=HOME, phone=PHONE), actor="hr")
    with registry.database.engine.connect() as conn:
        items = {r.id: r for r in conn.execute(select(ReviewItemRow))}
    # The question "are these two one person?" has been answered by the merge.
    assert items[between.id].status == "merged"
    assert items[between.id].resolved_by == "hr"
    # The other question is now about the survivor.
    assert items[elsewhere.id].status == "open"
    assert (items[elsewhere.id].person_a, items[elsewhere.id].person_b) == (stranger, older)


def _review(a: UUID, b: UUID) -> ReviewItem:
    return ReviewItem(
        id=new_id(),
        kind="match",
        status="open",
        person_a=a,
        person_b=b,
        score=0.8,
        explanation={},
        created_at=datetime.now(UTC),
    )
