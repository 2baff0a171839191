"""API keys as service accounts: scopes per operation, keys bound to one source, revoked,
expired and rotated keys, expiry in metrics and health."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import ROUTE_SCOPES
from mdm.services.context import Registry
from mdm.services.health import sync_health
from mdm.services.keys import create_key, list_keys, revoke_key, rotate_key


@pytest.fixture
def anon(registry: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(registry.settings, registry=registry)) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def record(source: str, source_id: str, n: int = 0) -> dict:
    return {"source": source, "source_id": source_id,
            "data": {"given_name": "Ana", "family_name": f"Okafor{n}",
                     "email": f"ana{n}@okafor.io"}}  # fmt: skip


def test_every_operation_names_its_scope(anon: TestClient) -> None:
    operations = {
        (method.upper(), path)
        for path, item in anon.app.openapi()["paths"].items()  # type: ignore[attr-defined]
        if path.startswith("/v1/")
        for method in item
    }
    assert operations == set(ROUTE_SCOPES)


def test_a_key_bound_to_a_source_writes_that_source_only(
    anon: TestClient, client: TestClient, registry: Registry
) -> None:
    _, hris = create_key(registry, name="workday", scopes=["records:write", "records:read"],
                         actor="t", source="hris")  # fmt: skip
    ok = anon.post("/v1/records", json=record("hris", "h1"), headers=bearer(hris))
    assert ok.status_code == 201
    foreign = anon.post("/v1/records", json=record("crm", "c1", 1), headers=bearer(hris))
    assert foreign.status_code == 403
    assert foreign.headers["content-type"] == "application/problem+json"
    batch = anon.post(
        "/v1/records:batch",
        json={"records": [record("crm", "c2", 2), record("hris", "h2", 3)]},
        headers=bearer(hris),
    ).json()["results"]
    assert batch[0]["error"]["status"] == 403 and batch[1]["decision"] == "created"
    # Another source's record cannot be split or read through this key.
    client.post("/v1/records", json=record("crm", "c3", 4))
    split = anon.post("/v1/records/crm/c3/split", json={}, headers=bearer(hris))
    assert split.status_code == 403
    person = anon.get(f"/v1/persons/{ok.json()['person_id']}", headers=bearer(hris))
    assert person.status_code == 403  # no persons:read
    # Its rejections are its own.
    anon.post("/v1/records", json={"source": "hris", "source_id": "bad", "data": {}},
              headers=bearer(hris))  # fmt: skip
    client.post("/v1/records", json={"source": "crm", "source_id": "bad", "data": {}})
    mine = anon.get("/v1/rejections", headers=bearer(hris)).json()["items"]
    assert {r["source"] for r in mine} == {"hris"}
    everyone = client.get("/v1/rejections").json()["items"]
    crm_rejection = next(r for r in everyone if r["source"] == "crm")
    assert (
        anon.get(f"/v1/rejections/{crm_rejection['id']}", headers=bearer(hris)).status_code == 404
    )


def test_scopes_gate_each_operation(anon: TestClient, registry: Registry) -> None:
    _, steward = create_key(registry, name="steward", scopes=["reviews:resolve", "persons:read"],
                            actor="t")  # fmt: skip
    assert anon.get("/v1/reviews", headers=bearer(steward)).status_code == 200
    refused = anon.post("/v1/records", json=record("crm", "c1"), headers=bearer(steward))
    assert refused.status_code == 403
    assert "records:write" in refused.json()["detail"]
    assert anon.get("/v1/webhooks", headers=bearer(steward)).status_code == 403
    assert anon.get("/v1/reviews").status_code == 401
    assert anon.get("/v1/reviews", headers=bearer("mdm_00000000_guess")).status_code == 401


def test_revoked_expired_and_rotated_keys(anon: TestClient, registry: Registry) -> None:
    key, value = create_key(registry, name="crm-sync", scopes=["records:read"], actor="t")
    assert anon.get("/v1/sources", headers=bearer(value)).status_code == 200
    used = next(k for k in list_keys(registry) if k.id == key.id)
    assert used.last_used_at is not None
    new, new_value = rotate_key(registry, key.prefix, actor="t")
    assert anon.get("/v1/sources", headers=bearer(value)).status_code == 401
    assert anon.get("/v1/sources", headers=bearer(new_value)).status_code == 200
    assert (new.name, new.scopes) == (key.name, key.scopes)
    revoke_key(registry, new.prefix)
    assert anon.get("/v1/sources", headers=bearer(new_value)).status_code == 401
    _, old = create_key(registry, name="old", scopes=["records:read"], actor="t",
                        expires_at=datetime.now(UTC) - timedelta(seconds=1))  # fmt: skip
    assert anon.get("/v1/sources", headers=bearer(old)).status_code == 401


def test_keys_expiring_within_30_days_show_in_metrics_and_health(
    anon: TestClient, registry: Registry
) -> None:
    soon, _ = create_key(registry, name="ats-sync", scopes=["records:write"], actor="t",
                         expires_at=datetime.now(UTC) + timedelta(days=10))  # fmt: skip
    create_key(registry, name="later", scopes=["records:write"], actor="t",
               expires_at=datetime.now(UTC) + timedelta(days=90))  # fmt: skip
    assert [k.prefix for k in list_keys(registry, expiring=True)] == [soon.prefix]
    assert "mdm_api_keys_expiring 1.0" in anon.get("/metrics").text
    report = sync_health(registry)
    assert [p.kind for p in report.problems] == ["key_expiring"]
    assert soon.prefix in report.problems[0].message
