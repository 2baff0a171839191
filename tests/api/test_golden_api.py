"""The golden record over HTTP: who owns each field, why a value won, and the sensitive
changes that wait for a steward instead of being applied."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from mdm.services.context import Registry
from mdm.services.persons import get_person, golden_from_scratch


def post(client: TestClient, source: str, source_id: str, day: int, **data: Any) -> dict:
    body = {
        "source": source,
        "source_id": source_id,
        "updated_at": f"2026-01-{day:02d}T09:00:00Z",
        "data": {"given_name": "Ana", "family_name": "Okafor", "email": "ana@okafor.io", **data},
    }
    r = client.post("/v1/records", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


def pay(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD", "period": "annual"}


def conflicts(client: TestClient, status: str = "open") -> list[dict]:
    r = client.get("/v1/reviews", params={"kind": "conflict", "status": status})
    return r.json()["items"]


def test_pay_off_the_offer_waits_for_a_steward_who_can_accept_it(
    client: TestClient, registry: Registry
) -> None:
    offer = post(client, "ats", "a1", 1, compensation=pay(100000), job_title="Chef")
    hris = post(client, "hris", "h1", 5, compensation=pay(110000), employee_id="E1")
    person_id = offer["person_id"]
    assert hris["person_id"] == person_id
    person = client.get(f"/v1/persons/{person_id}").json()
    assert person["attributes"]["compensation"] == pay(100000)  # not applied silently
    assert person["attributes"]["employee_id"] == "E1"
    (item,) = conflicts(client)
    assert item["kind"] == "conflict"
    assert item["explanation"]["field"] == "compensation"
    assert item["explanation"]["kept"]["source_id"] == "a1"
    assert item["explanation"]["other"]["value"] == pay(110000)

    explained = client.get(f"/v1/persons/{person_id}/fields/compensation").json()
    assert (explained["strategy"], explained["owners"]) == ("source_priority", ["ats"])
    assert explained["sensitive"] is True
    assert explained["lineage"]["source_id"] == "a1"
    assert explained["lineage"]["candidates"][0]["value"] == pay(110000)
    assert [c["id"] for c in explained["conflicts"]] == [item["id"]]

    # The same HRIS value again is the same conflict: not put to a steward twice.
    post(client, "hris", "h1", 6, compensation=pay(110000), employee_id="E1")
    assert len(conflicts(client)) == 1

    wrong = client.post(f"/v1/reviews/{item['id']}/resolve", json={"decision": "merge"})
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "decision"

    done = client.post(f"/v1/reviews/{item['id']}/resolve", json={"decision": "replace"})
    assert done.status_code == 200, done.text
    assert done.json()["review"]["status"] == "resolved"
    person = client.get(f"/v1/persons/{person_id}").json()
    assert person["attributes"]["compensation"] == pay(110000)
    assert person["lineage"]["compensation"]["rule"] == "steward_choice"
    explained = client.get(f"/v1/persons/{person_id}/fields/compensation").json()
    assert explained["choice"] == {"source": "hris", "source_id": "h1", "value": pay(110000)}
    assert conflicts(client) == []
    actions = [e["action"] for e in client.get(f"/v1/persons/{person_id}/history").json()["items"]]
    assert "review.resolved" in actions

    # A later record change is evidence the steward has not seen: the rules decide again.
    post(client, "hris", "h1", 9, compensation=pay(130000), employee_id="E1")
    person = client.get(f"/v1/persons/{person_id}").json()
    assert person["attributes"]["compensation"] == pay(100000)
    assert len(conflicts(client)) == 1
    fresh = golden_from_scratch(registry, UUID(person_id))
    stored = get_person(registry, UUID(person_id))
    assert (stored.attributes, stored.lineage) == (fresh.attributes, fresh.lineage)


def test_a_second_hire_date_is_a_conflict_and_never_overwrites(client: TestClient) -> None:
    first = post(client, "hris", "h1", 1, hire_date="2020-01-06", employee_id="E1")
    post(client, "hris", "h2", 3, hire_date="2023-09-04", employee_id="E2")
    person = client.get(f"/v1/persons/{first['person_id']}").json()
    assert person["attributes"]["hire_date"] == "2020-01-06"
    assert person["lineage"]["hire_date"]["rule"] == "first_seen"
    (item,) = conflicts(client)
    assert item["explanation"]["field"] == "hire_date"
    assert item["explanation"]["other"]["value"] == "2023-09-04"

    # The record changes before the steward decides: the decision is refused, not misapplied.
    post(client, "hris", "h2", 4, hire_date="2023-09-11", employee_id="E2")
    stale = client.post(f"/v1/reviews/{item['id']}/resolve", json={"decision": "replace"})
    assert stale.status_code == 409
    assert stale.json()["current"]["status"] == "open"
    keep = client.post(f"/v1/reviews/{item['id']}/resolve", json={"decision": "keep"})
    assert keep.status_code == 200
    person = client.get(f"/v1/persons/{first['person_id']}").json()
    assert person["attributes"]["hire_date"] == "2020-01-06"
    assert person["lineage"]["hire_date"]["rule"] == "steward_choice"


def test_the_field_endpoint_explains_lists_and_refuses_unknown_fields(
    client: TestClient,
) -> None:
    crm = post(client, "crm", "c1", 9, emails=["ana@home.es"])
    post(client, "hris", "h1", 1, employee_id="E1")
    person_id = crm["person_id"]
    emails = client.get(f"/v1/persons/{person_id}/fields/email").json()
    assert emails["field"] == "emails"
    assert emails["strategy"] == "union"
    assert emails["value"][0] == "ana@okafor.io"
    assert emails["lineage"]["primary"]["kind"] == "hris"
    unknown = client.get(f"/v1/persons/{person_id}/fields/salary")
    assert unknown.status_code == 422
    assert unknown.headers["content-type"] == "application/problem+json"
    missing = client.get("/v1/persons/01a22619-2219-7c04-8e21-1a925a769deb/fields/emails")
    assert missing.status_code == 404


def test_a_conflict_follows_its_person_into_a_merge(client: TestClient) -> None:
    a = post(client, "ats", "a1", 1, compensation=pay(100000))
    post(client, "hris", "h1", 2, compensation=pay(150000), employee_id="E1")
    other = client.post(
        "/v1/records",
        json={
            "source": "crm",
            "source_id": "c9",
            "data": {"given_name": "Bea", "family_name": "Stone", "email": "bea@stone.io"},
        },
    ).json()
    found = conflicts(client)
    assert len(found) == 1, [i["explanation"] for i in found]
    item = found[0]
    r = client.post(f"/v1/persons/{other['person_id']}/merge", json={"other_id": a["person_id"]})
    assert r.status_code == 200
    (moved,) = conflicts(client)
    assert moved["id"] == item["id"]
    assert moved["person_a"] == moved["person_b"] == other["person_id"]
    done = client.post(f"/v1/reviews/{item['id']}/resolve", json={"decision": "keep"})
    assert done.status_code == 200
    person = client.get(f"/v1/persons/{other['person_id']}").json()
    assert person["attributes"]["compensation"] == pay(100000)
