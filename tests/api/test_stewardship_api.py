"""Stewards' decisions over HTTP: read a review item, resolve it, merge two persons."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from mdm.services.context import Registry
from mdm.store.tables import AuditEventRow, OutboxRow
from tests.api.test_records_api import assert_problem
from tests.factories import body


def _household(client: TestClient) -> dict[str, Any]:
    """John and Mary share a mailbox: a review item between their two persons."""
    john = client.post(
        "/v1/records",
        json=body("crm", "c-john", given_name="John", family_name="Smith", email="smiths@x.org"),
    )
    mary = client.post(
        "/v1/records",
        json=body("ats", "a-mary", given_name="Mary", family_name="Smith", email="smiths@x.org"),
    )
    assert mary.json()["decision"] == "review"
    item = client.get(f"/v1/reviews/{mary.json()['review_id']}")
    assert item.status_code == 200
    detail: dict[str, Any] = item.json()
    assert {detail["person_a"], detail["person_b"]} == {
        john.json()["person_id"], mary.json()["person_id"],
    }  # fmt: skip
    return detail


def test_a_review_item_shows_both_persons_and_the_comparison(client: TestClient) -> None:
    detail = _household(client)
    names = {detail["person_a_detail"]["attributes"]["given_name"],
             detail["person_b_detail"]["attributes"]["given_name"]}  # fmt: skip
    assert names == {"John", "Mary"}
    levels = {c["attribute"]: c["level"] for c in detail["explanation"]["comparisons"]}
    assert levels["email"] == "exact" and levels["name"] in ("relative", "differs")
    assert all("weight" in c for c in detail["explanation"]["comparisons"])
    assert detail["person_a_detail"]["version"] >= 1
    assert_problem(client.get("/v1/reviews/01890000-0000-7000-8000-000000000000"), 404)


def test_distinct_is_recorded_and_a_second_decision_gets_409(
    client: TestClient, registry: Registry
) -> None:
    detail = _household(client)
    versions = {
        "person_a_version": detail["person_a_detail"]["version"],
        "person_b_version": detail["person_b_detail"]["version"],
    }
    done = client.post(
        f"/v1/reviews/{detail['id']}/resolve",
        json={"decision": "distinct", "note": "spouses", **versions},
    )
    assert done.status_code == 200, done.text
    review = done.json()["review"]
    assert (review["status"], review["decision"], review["note"]) == (
        "distinct", "distinct", "spouses",
    )  # fmt: skip
    assert review["resolved_by"] and review["resolved_at"]
    again = client.post(f"/v1/reviews/{detail['id']}/resolve", json={"decision": "merge"})
    problem = assert_problem(again, 409)
    assert problem["current"]["status"] == "distinct"
    # Both persons are untouched.
    for side in ("person_a", "person_b"):
        assert client.get(f"/v1/persons/{detail[side]}").json()["id"] == detail[side]
    with registry.database.engine.connect() as conn:
        events = (
            conn.execute(select(OutboxRow.payload).where(OutboxRow.type == "review.resolved"))
            .scalars()
            .all()
        )
    assert [e["decision"] for e in events] == ["distinct"]


def test_merge_from_the_queue_moves_the_records_and_redirects(
    client: TestClient, registry: Registry
) -> None:
    detail = _household(client)
    done = client.post(f"/v1/reviews/{detail['id']}/resolve", json={"decision": "merge"})
    assert done.status_code == 200, done.text
    survivor = done.json()["person_id"]
    other = ({detail["person_a"], detail["person_b"]} - {survivor}).pop()
    person = client.get(f"/v1/persons/{other}").json()
    assert person["id"] == survivor and person["aliases"] == [other]
    assert sorted(r["source_id"] for r in person["records"]) == ["a-mary", "c-john"]
    assert done.json()["review"]["status"] == "merged"
    with registry.database.engine.connect() as conn:
        actions = conn.execute(
            select(AuditEventRow.action, AuditEventRow.after).where(
                AuditEventRow.action.in_(("person.merged", "review.resolved"))
            )
        ).all()
    assert sorted(a for a, _ in actions) == ["person.merged", "review.resolved"]
    merged = next(after for action, after in actions if action == "person.merged")
    assert merged["rule"] == "steward" and merged["review_id"] == detail["id"]


def test_a_decision_on_a_changed_person_gets_409_and_changes_nothing(client: TestClient) -> None:
    detail = _household(client)
    shown = {
        "person_a_version": detail["person_a_detail"]["version"],
        "person_b_version": detail["person_b_detail"]["version"],
    }
    # Someone's HRIS record lands on person_a after the steward opened the item.
    a = detail["person_a_detail"]["attributes"]
    update = body("crm", "c-john" if a["given_name"] == "John" else "a-mary")
    update["source"] = "crm" if a["given_name"] == "John" else "ats"
    update["data"] = {**update["data"], "given_name": a["given_name"], "family_name": "Smith",
                      "email": "smiths@x.org", "job_title": "Nurse"}  # fmt: skip
    assert client.post("/v1/records", json=update).json()["decision"] == "updated"
    stale = client.post(f"/v1/reviews/{detail['id']}/resolve", json={"decision": "merge", **shown})
    problem = assert_problem(stale, 409)
    assert problem["current"]["person_a"]["version"] > shown["person_a_version"]
    assert client.get(f"/v1/reviews/{detail['id']}").json()["status"] == "open"
    assert client.get(f"/v1/persons/{detail['person_b']}").json()["id"] == detail["person_b"]


def test_manual_merge_keeps_the_named_person(client: TestClient) -> None:
    first = client.post("/v1/records", json=body("crm", "c-1", email="one@x.org")).json()
    second = client.post(
        "/v1/records", json=body("ats", "a-1", given_name="Annie", email="two@y.org")
    ).json()
    newer, older = second["person_id"], first["person_id"]
    assert newer != older
    merged = client.post(f"/v1/persons/{newer}/merge", json={"other_id": older, "note": "same"})
    assert merged.status_code == 200, merged.text
    assert merged.json()["id"] == newer and merged.json()["aliases"] == [older]
    assert sorted(merged.json()["attributes"]["emails"]) == ["one@x.org", "two@y.org"]
    # The same decision twice is no change.
    again = client.post(f"/v1/persons/{newer}/merge", json={"other_id": older})
    assert again.status_code == 200 and again.json()["version"] == merged.json()["version"]
    assert_problem(
        client.post(f"/v1/persons/{newer}/merge", json={"other_id": newer}), 422, "other_id"
    )
    unknown = "01890000-0000-7000-8000-000000000000"
    assert_problem(client.post(f"/v1/persons/{newer}/merge", json={"other_id": unknown}), 422,
                   "other_id")  # fmt: skip
    assert_problem(client.post(f"/v1/persons/{unknown}/merge", json={"other_id": newer}), 404)
    assert_problem(
        client.post(f"/v1/persons/{newer}/merge", json={"other_id": older, "person": "x"}),
        422,
        "person",
    )
