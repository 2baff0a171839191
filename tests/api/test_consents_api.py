"""Consents over HTTP: record a statement per purpose, read what holds and the history, in
the person's golden view and its audit history; bad input, foreign sources, unknown
persons and missing keys are refused as problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from mdm.services.context import Registry
from mdm.services.keys import create_key
from mdm.store.tables import PersonRow

UNKNOWN = "01a22619-2219-7c04-8e21-1a925a769deb"


@pytest.fixture
def anon(registry: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(registry.settings, registry=registry)) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_person(client: TestClient, source_id: str = "c1", email: str = "ana@okafor.io") -> str:
    r = client.post("/v1/records", json={"source": "crm", "source_id": source_id, "data": {
        "given_name": "Ana", "family_name": "Okafor", "email": email}})  # fmt: skip
    assert r.status_code == 201, r.text
    person_id: str = r.json()["person_id"]
    return person_id


def consent(granted: bool = True, day: int = 1, **overrides: Any) -> dict[str, Any]:
    return {"granted": granted, "source": "crm", "at": f"2026-01-{day:02d}T09:00:00+01:00",
            "evidence": None, **overrides}  # fmt: skip


def problem_fields(r: Any) -> list[str]:
    assert r.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in r.json()["errors"]]


def test_a_statement_is_recorded_read_shown_in_the_person_and_its_history(
    client: TestClient,
) -> None:
    pid = new_person(client)
    url = f"/v1/persons/{pid}/consents/marketing.email"
    r = client.put(url, json=consent(True, 1, evidence="form:8812"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["person_id"], body["purpose"], body["granted"], body["changed"]) == (
        pid, "marketing.email", True, True,
    )  # fmt: skip
    assert body["at"] == "2026-01-01T08:00:00Z"  # kept in UTC
    assert body["evidence"] == "form:8812"
    withdrawn = client.put(url, json=consent(False, 5)).json()
    assert (withdrawn["granted"], withdrawn["changed"]) == (False, True)
    late = client.put(url, json=consent(True, 3, source="ats")).json()
    assert (late["granted"], late["changed"], late["source"]) == (False, False, "crm")
    client.put(f"/v1/persons/{pid}/consents/profiling", json=consent(True, 2))

    current = client.get(f"/v1/persons/{pid}/consents").json()
    assert current["history"] is None
    assert {p: c["granted"] for p, c in current["consents"].items()} == {
        "marketing.email": False, "profiling": True,
    }  # fmt: skip
    history = client.get(f"/v1/persons/{pid}/consents", params={"history": "true"}).json()
    assert [(c["purpose"], c["at"][:10]) for c in history["history"]] == [
        ("marketing.email", "2026-01-05"), ("marketing.email", "2026-01-03"),
        ("profiling", "2026-01-02"), ("marketing.email", "2026-01-01"),
    ]  # fmt: skip
    assert {c["recorded_by"] for c in history["history"]} == {"admin"}

    person = client.get(f"/v1/persons/{pid}").json()
    assert person["consents"] == {
        "marketing.email": {"granted": False, "source": "crm", "at": "2026-01-05T08:00:00Z"},
        "profiling": {"granted": True, "source": "crm", "at": "2026-01-02T08:00:00Z"},
    }
    audit = client.get(f"/v1/persons/{pid}/history").json()["items"]
    recorded = [e for e in audit if e["action"] == "person.consent_recorded"]
    assert len(recorded) == 4
    assert recorded[2]["after"]["source"] == "ats"  # the late one is audited too
    assert recorded[0]["entity_type"] == "person" and recorded[0]["entity_id"] == pid


def test_a_merged_away_id_reads_and_records_on_the_survivor(client: TestClient) -> None:
    ana = new_person(client)
    bo = new_person(client, "c2", "bo@chen.example")
    assert client.put(f"/v1/persons/{bo}/consents/profiling", json=consent(False, 4)).is_success
    merged = client.post(f"/v1/persons/{ana}/merge", json={"other_id": bo})
    assert merged.json()["consents"]["profiling"]["granted"] is False
    r = client.put(f"/v1/persons/{bo}/consents/analytics", json=consent(True, 6))
    assert r.json()["person_id"] == ana
    found = client.get(f"/v1/persons/{bo}/consents").json()
    assert found["person_id"] == ana
    assert set(found["consents"]) == {"analytics", "profiling"}
    assert found["consents"]["profiling"]["recorded_on"] == bo


@pytest.mark.parametrize(
    ("purpose", "body", "field"),
    [
        ("Marketing", consent(), "purpose"),
        ("1st-party", consent(), "purpose"),
        ("a" * 65, consent(), "purpose"),
        ("analytics", consent(person_id=UNKNOWN), "person_id"),
        ("analytics", consent(source="nowhere"), "source"),
        ("analytics", consent(at="2026-01-01T09:00:00"), "at"),
        ("analytics", consent(at=(datetime.now(UTC) + timedelta(days=1)).isoformat()), "at"),
        ("analytics", consent(granted="yes"), "granted"),
        ("analytics", {"granted": True, "source": "crm"}, "at"),
    ],
    ids=["upper-case", "digit-first", "too-long", "unknown-field", "unknown-source",
         "naive-at", "far-future-at", "granted-not-a-bool", "missing-at"],
)  # fmt: skip
def test_invalid_statements_are_refused_naming_the_field(
    client: TestClient, purpose: str, body: dict[str, Any], field: str
) -> None:
    pid = new_person(client)
    r = client.put(f"/v1/persons/{pid}/consents/{purpose}", json=body)
    assert r.status_code == 422, r.text
    assert field in problem_fields(r)
    assert (
        client.get(f"/v1/persons/{pid}/consents", params={"history": True}).json()["history"] == []
    )


def test_a_statement_may_be_dated_at_most_five_minutes_ahead(client: TestClient) -> None:
    pid = new_person(client)
    url = f"/v1/persons/{pid}/consents/analytics"
    ahead = client.put(url, json=consent(at=(datetime.now(UTC) + timedelta(minutes=6)).isoformat()))
    assert ahead.status_code == 422
    assert problem_fields(ahead) == ["at"]
    soon = client.put(url, json=consent(at=(datetime.now(UTC) + timedelta(minutes=1)).isoformat()))
    assert soon.status_code == 200, soon.text


def test_a_key_bound_to_a_source_records_that_sources_consents_only(
    client: TestClient, anon: TestClient, registry: Registry
) -> None:
    pid = new_person(client)
    _, crm = create_key(registry, name="crm-sync", scopes=["records:write"], actor="t",
                        source="crm")  # fmt: skip
    url = f"/v1/persons/{pid}/consents/analytics"
    foreign = anon.put(url, json=consent(source="ats"), headers=bearer(crm))
    assert foreign.status_code == 403
    assert foreign.headers["content-type"] == "application/problem+json"
    assert "crm" in foreign.json()["detail"]
    own = anon.put(url, json=consent(source="crm"), headers=bearer(crm))
    assert own.status_code == 200
    assert own.json()["recorded_by"] == "crm-sync"
    assert anon.get(f"/v1/persons/{pid}/consents", headers=bearer(crm)).status_code == 403

    _, reader = create_key(registry, name="reader", scopes=["persons:read"], actor="t")
    assert anon.get(f"/v1/persons/{pid}/consents", headers=bearer(reader)).status_code == 200
    refused = anon.put(url, json=consent(), headers=bearer(reader))
    assert refused.status_code == 403
    assert "records:write" in refused.json()["detail"]


def test_unknown_erased_persons_and_callers_without_a_key_are_refused(
    client: TestClient, anon: TestClient, registry: Registry
) -> None:
    missing = client.put(f"/v1/persons/{UNKNOWN}/consents/analytics", json=consent())
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.get(f"/v1/persons/{UNKNOWN}/consents").status_code == 404
    pid = new_person(client)
    unauthenticated = anon.put(f"/v1/persons/{pid}/consents/analytics", json=consent())
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["content-type"] == "application/problem+json"
    assert anon.get(f"/v1/persons/{pid}/consents").status_code == 401
    assert client.get(f"/v1/persons/{pid}/consents").json()["consents"] == {}
    with registry.database.engine.begin() as conn:
        conn.execute(update(PersonRow).where(PersonRow.id == UUID(pid)).values(status="erased"))
    gone = client.put(f"/v1/persons/{pid}/consents/analytics", json=consent())
    assert gone.status_code == 410
    assert gone.headers["content-type"] == "application/problem+json"
    assert client.get(f"/v1/persons/{pid}/consents").status_code == 410
