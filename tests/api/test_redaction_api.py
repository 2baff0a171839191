"""Sensitive fields never reach a caller without the matching scope: person reads,
search, field lineage, review items and details, history."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from mdm.services.context import Registry
from mdm.services.keys import create_key

SSN, BIRTH, PAY, OFFER = "219-09-9999", "1984-07-21", 187345, 181234


def test_no_sensitive_value_leaks_without_its_scope(client: TestClient, registry: Registry) -> None:
    person = {"given_name": "Ana", "family_name": "Okafor", "email": "ana@okafor.io"}
    client.post("/v1/records", json={"source": "ats", "source_id": "a1", "data": {
        **person, "compensation": {"amount": OFFER, "currency": "USD", "period": "annual"},
        "interview_feedback": "Calm under pressure"}})  # fmt: skip
    pay = {"amount": PAY, "currency": "USD", "period": "annual"}
    created = client.post("/v1/records", json={"source": "hris", "source_id": "h1", "data": {
        **person, "national_id": SSN, "birth_date": BIRTH, "employee_id": "E1",
        "compensation": pay}}).json()  # fmt: skip
    person_id = created["person_id"]
    conflict = client.get("/v1/reviews", params={"kind": "conflict"}).json()["items"][0]

    def bodies(key: str) -> str:
        headers = {"Authorization": f"Bearer {key}"}
        urls = [
            f"/v1/persons/{person_id}",
            "/v1/persons?email=ana@okafor.io",
            f"/v1/persons/{person_id}/fields/compensation",
            f"/v1/persons/{person_id}/fields/national_id",
            f"/v1/persons/{person_id}/fields/birth_date",
            f"/v1/persons/{person_id}/history",
            "/v1/reviews?kind=conflict",
            f"/v1/reviews/{conflict['id']}",
        ]
        out = []
        for url in urls:
            r = client.get(url, headers=headers)
            assert r.status_code == 200, (url, r.text)
            out.append(r.text)
        return "\n".join(out)

    _, reader = create_key(registry, name="reader", scopes=["persons:read", "audit:read",
                           "reviews:resolve"], actor="t")  # fmt: skip
    seen = bodies(reader)
    for secret in ("219099999", SSN, BIRTH, str(PAY), str(OFFER), "Calm under pressure"):
        assert secret not in seen, secret
    assert "*****9999" in seen  # a national id shows its last four digits

    _, sensitive = create_key(registry, name="hr", scopes=["persons:read", "audit:read",
                              "reviews:resolve", "persons:read:sensitive"], actor="t")  # fmt: skip
    seen = bodies(sensitive)
    assert BIRTH in seen and "219099999" in seen and "Calm under pressure" in seen
    assert str(PAY) not in seen and str(OFFER) not in seen  # pay needs its own scope

    _, payroll = create_key(registry, name="payroll", scopes=["persons:read", "audit:read",
                            "reviews:resolve", "persons:read:compensation"], actor="t")  # fmt: skip
    seen = bodies(payroll)
    assert str(OFFER) in seen and BIRTH not in seen
    person_body = json.loads(client.get(f"/v1/persons/{person_id}").text)
    assert person_body["attributes"]["national_id"] == "219099999"  # the admin sees all
