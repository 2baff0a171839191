"""Erasure: after DELETE /v1/persons/{id}, no table holds a personal value of the person,
the id answers 410, connected systems are told every record, the audit trail still
verifies, and a re-posted record is refused rather than re-created."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import JSON, String, Text, select

from mdm.services.context import Registry
from mdm.services.delivery import fan_out
from mdm.store.audit import verify
from mdm.store.tables import Base, MatchModelRow, OutboxRow

GIVEN, FAMILY = "Xiomara", "Quintanilla-Baptiste"
EMAIL, WORK = "xiomara.qb@example.org", "xqbaptiste@initech.example"
PHONE, PHONE_E164 = "+1 415 555 0199", "+14155550199"
SSN, SSN_CLEAR = "078-05-1120", "078051120"
BIRTH, PAY = "1979-03-14", "98765"
NOTE = "spoke to xiomara about the offer"
EVIDENCE = "signed form 4471 at 12 Quay Street"
PERSONAL = [GIVEN, FAMILY, EMAIL, WORK, PHONE, PHONE_E164, SSN, SSN_CLEAR, BIRTH, PAY, NOTE]
PERSONAL += [EVIDENCE, "quintanilla baptiste"]  # the folded family name matching compares
PERSONAL += [v.lower() for v in (GIVEN, FAMILY)] + [v.upper() for v in (GIVEN, FAMILY)]


def _records() -> list[dict[str, Any]]:
    name = {"given_name": GIVEN, "family_name": FAMILY}
    return [
        {"source": "hris", "source_id": "h-77", "data": {
            **name, "email": EMAIL, "national_id": SSN, "birth_date": BIRTH,
            "employee_id": "E-77", "phone": PHONE,
            "compensation": {"amount": int(PAY), "currency": "USD", "period": "annual"}}},
        {"source": "ats", "source_id": "a-77", "data": {
            **name, "email": EMAIL, "interview_feedback": NOTE, "birth_date": BIRTH}},
        {"source": "crm", "source_id": "c-77", "data": {**name, "email": WORK, "phone": PHONE}},
    ]  # fmt: skip


def _leftovers(registry: Registry) -> list[str]:
    """Every personal value found in any text or JSON column of any table."""
    found = []
    with registry.database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            # Not the hex digests (the audit chain's, the API keys'): they hold no value, and
            # a short string of digits such as the pay turns up in one by chance (it did).
            columns = [
                c
                for c in table.c
                if isinstance(c.type, String | Text | JSON) and c.name not in ("hash", "prev_hash")
            ]
            for row in conn.execute(select(*columns)):
                text = " ".join(str(v) for v in row if v is not None)
                found += [f"{table.name}: {v}" for v in PERSONAL if v in text]
    return found


def test_erasure_leaves_no_personal_value_and_tells_every_system(
    client: TestClient, registry: Registry
) -> None:
    hook = client.post("/v1/webhooks", json={"url": "https://93.184.215.14/h", "events": ["*"]})
    assert hook.status_code == 201, hook.text
    person_id = None
    for record in _records():
        answer = client.post("/v1/records", json=record)
        assert answer.status_code in (200, 201), answer.text
        person_id = person_id or answer.json()["person_id"]
        assert answer.json()["person_id"] == person_id
    consent = {"granted": True, "source": "crm", "at": "2026-11-01T10:00:00Z",
               "evidence": EVIDENCE}  # fmt: skip
    assert client.put(f"/v1/persons/{person_id}/consents/marketing", json=consent).is_success
    # A refused payload of the same record, and a stranger who must stay untouched.
    bad = {"source": "crm", "source_id": "c-77", "data": {"given_name": GIVEN, "email": "x@@"}}
    assert client.post("/v1/records", json=bad).status_code == 422
    other = {"source": "crm", "source_id": "c-1", "data": {"given_name": "Bo", "email": "b@o.io"}}
    assert client.post("/v1/records", json=other).status_code == 201
    fan_out(registry)  # deliveries now hold the person's values too
    # A model trained meanwhile keeps names held by two records or more: hers, and others'.
    model = {"term_frequencies": {"given": {"xiomara": 3 / 40, "bo": 30 / 40},
                                  "family": {"quintanilla baptiste": 3 / 40}},
             "rare": {"given": 1 / 40, "family": 1 / 40}}  # fmt: skip
    with registry.database.uow() as uow:
        uow.registry.save_model("trained-1", model, {}, active=False)
        uow.commit()
    assert len(_leftovers(registry)) > 20  # the scan finds them while they are there

    erased = client.delete(f"/v1/persons/{person_id}", params={"reason": "ticket DSR-1042"})
    assert erased.status_code == 200, erased.text
    assert sorted((r["source"], r["source_id"]) for r in erased.json()["records"]) == [
        ("ats", "a-77"), ("crm", "c-77"), ("hris", "h-77"),
    ]  # fmt: skip

    assert _leftovers(registry) == []
    with registry.database.uow() as uow:
        (kept,) = uow.registry.conn.scalars(select(MatchModelRow.parameters)).all()
    assert kept["term_frequencies"] == {"given": {"bo": 0.75}, "family": {}}
    gone = client.get(f"/v1/persons/{person_id}")
    assert gone.status_code == 410
    assert gone.headers["content-type"] == "application/problem+json"
    assert client.get(f"/v1/persons/{person_id}/history").status_code == 410
    assert client.delete(f"/v1/persons/{person_id}", params={"reason": "again"}).status_code == 410
    assert client.get("/v1/persons", params={"email": EMAIL}).json()["items"] == []

    with registry.database.engine.connect() as conn:
        (event,) = conn.scalars(select(OutboxRow.payload).where(OutboxRow.type == "person.erased"))
    assert event["person_id"] == person_id
    assert sorted((r["source"], r["source_id"]) for r in event["records"]) == [
        ("ats", "a-77"), ("crm", "c-77"), ("hris", "h-77"),
    ]  # fmt: skip

    # Each subscription is handed the event (with the deliveries' earlier payloads gone).
    fan_out(registry)
    deliveries = client.get(f"/v1/webhooks/{hook.json()['id']}/deliveries").json()["items"]
    told = [d for d in deliveries if d["event_type"] == "person.erased"]
    assert len(told) == 1 and len(told[0]["payload"]["data"]["records"]) == 3
    assert _leftovers(registry) == []

    # The trail keeps its events and its chain; the person's values no longer open.
    trail = client.get("/v1/audit", params={"entity_id": person_id}).json()["items"]
    created = next(e for e in trail if e["action"] == "person.created")
    assert created["after"] == {"erased": True}
    assert next(e for e in trail if e["action"] == "person.erased")["after"]["reason"]
    with registry.database.engine.connect() as conn:
        assert verify(conn).ok

    # Posted again: refused and not kept, alone or in a batch; the stranger is untouched.
    again = client.post("/v1/records", json=_records()[0])
    assert again.status_code == 409, again.text
    assert again.json()["person_id"] == person_id
    batch = client.post("/v1/records:batch", json={"records": _records()[1:]}).json()
    assert [item["error"]["status"] for item in batch["results"]] == [409, 409]
    assert _leftovers(registry) == []
    assert client.get("/v1/persons", params={"email": "b@o.io"}).json()["items"]


def test_erasing_a_merged_id_erases_the_person_it_was_merged_into(
    client: TestClient, registry: Registry
) -> None:
    first = client.post("/v1/records", json=_records()[2]).json()["person_id"]
    ana = {"given_name": GIVEN, "family_name": FAMILY, "email": EMAIL, "phone": PHONE}
    second = client.post(
        "/v1/records", json={"source": "ats", "source_id": "a-2", "data": ana}
    ).json()["person_id"]
    if first != second:
        merged = client.post(f"/v1/persons/{first}/merge", json={"other_id": second})
        assert merged.status_code == 200, merged.text
    erased = client.delete(f"/v1/persons/{second}", params={"reason": "DSR-7"})
    assert erased.status_code == 200, erased.text
    assert client.get(f"/v1/persons/{first}").status_code == 410
    assert client.get(f"/v1/persons/{second}").status_code == 410
    assert _leftovers(registry) == []


def test_erasure_needs_a_reason_and_a_known_person(client: TestClient) -> None:
    missing = client.delete("/v1/persons/01a22619-2219-7c04-8e21-1a925a769deb")
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "reason"
    unknown = client.delete(
        "/v1/persons/01a22619-2219-7c04-8e21-1a925a769deb", params={"reason": "x"}
    )
    assert unknown.status_code == 404
