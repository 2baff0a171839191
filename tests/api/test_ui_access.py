"""The stewards' pages: only keys with reviews:resolve sign in, and the pages redact
sensitive fields by the signing-in key's scopes, as the API does."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from mdm.services.context import Registry
from mdm.services.keys import create_key
from tests.conftest import ADMIN_KEY


def _signed_in(registry: Registry, key: str) -> tuple[TestClient, int]:
    client = TestClient(create_app(registry.settings, registry=registry))
    r = client.post("/ui/login", data={"key": key}, follow_redirects=False)
    return client, r.status_code if "failed" not in r.headers.get("location", "") else 401


def test_pages_redact_by_the_stewards_scopes(client: TestClient, registry: Registry) -> None:
    pay = {"amount": 187345, "currency": "USD", "period": "annual"}
    data = {
        "given_name": "Ana", "family_name": "Okafor", "email": "ana@okafor.io",
        "national_id": "219-09-9999", "birth_date": "1984-07-21", "compensation": pay,
    }  # fmt: skip
    created = client.post(
        "/v1/records", json={"source": "hris", "source_id": "h1", "data": data}
    ).json()
    page = f"/ui/persons/{created['person_id']}"

    _, reader = create_key(registry, name="reader", scopes=["persons:read"], actor="t")
    _, refused = _signed_in(registry, reader)
    assert refused == 401  # no reviews:resolve: no pages

    _, steward_key = create_key(registry, name="steward", scopes=["reviews:resolve"], actor="t")
    steward, status = _signed_in(registry, steward_key)
    assert status == 303
    html = steward.get(page).text
    assert "Okafor" in html
    for secret in ("219099999", "1984-07-21", "187345"):
        assert secret not in html, secret
    assert "*****9999" in html

    admin, _ = _signed_in(registry, ADMIN_KEY)
    html = admin.get(page).text
    assert "219099999" in html and "1984-07-21" in html
