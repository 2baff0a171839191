"""Stewards' decisions over HTTP: read a review item, resolve it, merge two persons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient
from sqlalchemy import select

from mdm.model.ids import new_id
from mdm.model.person import ReviewItem
from mdm.services.context import Registry
from mdm.store.tables import OutboxRow
from tests.api.test_records_api import assert_problem
from tests.factories import audit_trail, body


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
    trail = audit_trail(registry, "person.merged", "review.resolved")
    assert sorted(e["action"] for e in trail) == ["person.merged", "review.resolved"]
    merged = next(e["after"] for e in trail if e["action"] == "person.merged")
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


def test_split_moves_one_record_out_for_good(client: TestClient, registry: Registry) -> None:
    first = client.post("/v1/records", json=body("crm", "c-1", job_title="Nurse")).json()
    client.post("/v1/records", json=body("hris", "h-1", job_title="Surgeon"))
    person = first["person_id"]
    assert len(client.get(f"/v1/persons/{person}").json()["records"]) == 2

    done = client.post("/v1/records/hris/h-1/split", json={"note": "another Ana"})
    assert done.status_code == 200, done.text
    new = done.json()["person_id"]
    assert done.json()["from_person_id"] == person and new != person
    left, split_off = (
        client.get(f"/v1/persons/{person}").json(),
        client.get(f"/v1/persons/{new}").json(),
    )
    assert [r["source_id"] for r in left["records"]] == ["c-1"]
    assert left["attributes"]["job_title"] == "Nurse"
    assert [(r["source_id"], r["link_source"], r["rule"]) for r in split_off["records"]] == [
        ("h-1", "MANUAL", "split")
    ]
    assert split_off["attributes"]["job_title"] == "Surgeon"
    # An update of the record keeps it where the steward put it.
    again = client.post("/v1/records", json=body("hris", "h-1", job_title="Head Surgeon"))
    assert (again.json()["decision"], again.json()["person_id"]) == ("updated", new)
    with registry.database.uow() as uow:
        assert uow.registry.marked_distinct(UUID(person), UUID(new))
    history = client.get(f"/v1/persons/{person}/history").json()["items"]
    actions = [e["action"] for e in history]
    assert actions[0] == "record.linked" and "person.split" in actions
    split_event = next(e for e in history if e["action"] == "person.split")
    assert (
        split_event["after"]["new_person_id"] == new
        and split_event["after"]["note"] == "another Ana"
    )

    assert_problem(client.post("/v1/records/hris/h-1/split", json={}), 422, "source_id")
    assert_problem(client.post("/v1/records/hris/nope/split", json={}), 404)
    assert_problem(
        client.post("/v1/records/crm/c-1/split", json={"person_id": person}), 422, "person_id"
    )


def test_split_into_a_named_person(client: TestClient) -> None:
    first = client.post("/v1/records", json=body("crm", "c-1")).json()
    client.post("/v1/records", json=body("hris", "h-1"))
    other = client.post(
        "/v1/records", json=body("ats", "a-9", given_name="Noor", family_name="Haddad",
                                 email="noor@x.org")
    ).json()["person_id"]  # fmt: skip
    done = client.post("/v1/records/hris/h-1/split", json={"person_id": other})
    assert done.status_code == 200, done.text
    assert done.json()["person_id"] == other
    assert sorted(r["source_id"] for r in client.get(f"/v1/persons/{other}").json()["records"]) == [
        "a-9", "h-1",
    ]  # fmt: skip
    assert len(client.get(f"/v1/persons/{first['person_id']}").json()["records"]) == 1


def test_history_pages_and_follows_merges(client: TestClient) -> None:
    a = client.post("/v1/records", json=body("crm", "c-1", email="one@x.org")).json()["person_id"]
    b = client.post(
        "/v1/records", json=body("ats", "a-1", given_name="Annie", email="two@y.org")
    ).json()["person_id"]
    client.post(f"/v1/persons/{a}/merge", json={"other_id": b, "note": "checked by phone"})
    items = client.get(f"/v1/persons/{b}/history").json()["items"]
    actions = [e["action"] for e in items]
    # What happened under the merged-away id is part of the survivor's history.
    assert actions.count("record.linked") == 2 and actions.count("person.created") == 2
    merged = next(e for e in items if e["action"] == "person.merged")
    assert merged["entity_id"] == b and merged["after"]["note"] == "checked by phone"
    assert [e["seq"] for e in items] == sorted(e["seq"] for e in items)
    first = client.get(f"/v1/persons/{a}/history", params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = client.get(
        f"/v1/persons/{a}/history", params={"limit": 500, "cursor": first["next_cursor"]}
    ).json()
    assert [e["seq"] for e in first["items"] + rest["items"]] == [e["seq"] for e in items]
    assert_problem(client.get(f"/v1/persons/{a}/history", params={"cursor": "x"}), 422, "cursor")


def test_not_a_match_survives_a_merge(client: TestClient, registry: Registry) -> None:
    detail = _household(client)
    client.post(f"/v1/reviews/{detail['id']}/resolve", json={"decision": "distinct"})
    third = client.post(
        "/v1/records", json=body("hris", "h-3", given_name="Jon", family_name="Smyth",
                                 email="jon@z.org")
    ).json()["person_id"]  # fmt: skip
    client.post(f"/v1/persons/{third}/merge", json={"other_id": detail["person_b"]})
    with registry.database.uow() as uow:
        assert uow.registry.marked_distinct(UUID(detail["person_a"]), UUID(third))


def test_the_queue_filters_sorts_pages_and_counts(client: TestClient, registry: Registry) -> None:
    a = client.post("/v1/records", json=body("crm", "c-1")).json()["person_id"]
    b = client.post(
        "/v1/records", json=body("ats", "a-1", given_name="Noor", email="noor@x.org")
    ).json()["person_id"]
    now = datetime.now(UTC)
    items = [
        ReviewItem(
            new_id(),
            "match",
            "open",
            UUID(a),
            UUID(b),
            score,
            {},
            now - timedelta(hours=age),
            source,
        )
        for score, age, source in [
            (0.91, 1, "crm"),
            (0.72, 30, "ats"),
            (0.85, 5, "crm"),
            (0.78, 50, "hris"),
            (0.99, 2, "crm"),
        ]
    ]
    items.append(
        ReviewItem(
            new_id(),
            "match",
            "distinct",
            UUID(a),
            UUID(b),
            0.8,
            {},
            now,
            "crm",
            now,
            "s",
            "distinct",
        )
    )
    with registry.database.uow() as uow:
        uow.registry.insert_reviews(items)
        uow.commit()

    def scores(**params: Any) -> list[float]:
        seen, cursor = [], None
        while True:
            query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/reviews", params=query)
            assert page.status_code == 200, page.text
            seen += [i["score"] for i in page.json()["items"]]
            if (cursor := page.json()["next_cursor"]) is None:
                return seen

    assert scores(sort="-score") == [0.99, 0.91, 0.85, 0.78, 0.72]
    assert scores(sort="score", source="crm") == [0.85, 0.91, 0.99]
    assert scores() == [0.78, 0.72, 0.85, 0.99, 0.91]  # oldest first
    assert scores(sort="-age", min_age_hours=3) == [0.85, 0.72, 0.78]
    assert scores(max_age_hours=3, min_score=0.95) == [0.99]
    page = client.get("/v1/reviews", params={"source": "crm"}).json()
    assert page["counts"] == {"open": 3, "distinct": 1}
    first = client.get("/v1/reviews", params={"sort": "score", "limit": 1}).json()
    assert_problem(
        client.get("/v1/reviews", params={"sort": "-age", "cursor": first["next_cursor"]}),
        422,
        "cursor",
    )
    assert_problem(client.get("/v1/reviews", params={"sort": "name"}), 422, "sort")


def test_a_changed_identifying_attribute_reopens_a_not_a_match_once(client: TestClient) -> None:
    detail = _household(client)
    client.post(f"/v1/reviews/{detail['id']}/resolve", json={"decision": "distinct"})
    john = {"given_name": "John", "family_name": "Smith", "email": "smiths@x.org"}
    # A job title is no evidence of identity: nothing comes back.
    same = client.post("/v1/records", json=body("crm", "c-john", **john, job_title="Chef"))
    assert same.json()["decision"] == "updated" and same.json()["review_ids"] == []
    changed = client.post(
        "/v1/records", json=body("crm", "c-john", **john, phone="+44 7911 123456")
    )
    assert changed.json()["decision"] == "updated"
    (reopened,) = changed.json()["review_ids"]
    item = client.get(f"/v1/reviews/{reopened}").json()
    assert item["status"] == "open" and item["explanation"]["reopened"] is True
    assert {item["person_a"], item["person_b"]} == {detail["person_a"], detail["person_b"]}
    again = client.post("/v1/records", json=body("crm", "c-john", **john, phone="+44 7911 654321"))
    assert again.json()["review_ids"] == []
