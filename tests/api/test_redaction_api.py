"""Sensitive fields never reach a caller without the matching scope: person reads,
search, field lineage, review items and details, history."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from mdm.config import SettingsError, load_settings
from mdm.model import redaction
from mdm.services.context import Registry
from mdm.services.keys import create_key
from tests.conftest import ADMIN_KEY, settings_for, truncate

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


def test_more_fields_can_be_made_sensitive(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    settings = settings_for(database_url, sensitive_fields={"phones": "persons:read:sensitive"})
    registry = Registry.from_settings(settings)
    request.addfinalizer(registry.close)
    request.addfinalizer(lambda: redaction.configure({}))  # the next test's defaults
    if registry.database.dialect == "postgresql":
        truncate(registry)
    app = create_app(settings, registry=registry)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        data = {"given_name": "Ana", "family_name": "Okafor", "phone": "+34 612 345 678"}
        made = admin.post("/v1/records", json={"source": "crm", "source_id": "c1", "data": data})
        person_id = made.json()["person_id"]
        assert admin.get(f"/v1/persons/{person_id}").json()["attributes"]["phones"]
        _, key = create_key(registry, name="reader", scopes=["persons:read"], actor="t")
        plain = {"Authorization": f"Bearer {key}"}
        seen = admin.get(f"/v1/persons/{person_id}", headers=plain)
        assert seen.status_code == 200 and "phones" not in seen.json()["attributes"]
        # The whole number: three digits alone turn up in a timestamp's microseconds.
        assert "612345678" not in seen.text
        mapping = admin.get("/v1/sources/crm/mapping").json()["fields"]
        phones = next(f for f in mapping if f["field"] == "phones")
        assert phones["sensitive"] is True and phones["scope"] == "persons:read:sensitive"


def test_a_sensitive_field_setting_must_name_a_field_and_a_reading_scope() -> None:
    with pytest.raises(SettingsError, match="not a canonical field"):
        load_settings(sensitive_fields={"shoe_size": "persons:read:sensitive"})
    with pytest.raises(SettingsError, match="needs one of"):
        load_settings(sensitive_fields={"phones": "persons:read"})
