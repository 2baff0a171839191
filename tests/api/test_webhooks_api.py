"""The webhook subscriptions API: the secret shown once, internal targets refused, and
the data dictionary showing where each field flows."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_subscription_shows_its_secret_once_and_refuses_internal_targets(
    client: TestClient,
) -> None:
    refused = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["*"]})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in refused.json()["errors"]] == ["url"]
    bad = client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.215.14/hook", "events": ["person.exploded"],
              "system": "nope", "scopes": ["root"]},
    )  # fmt: skip
    assert {e["field"] for e in bad.json()["errors"]} == {"events", "system", "scopes"}

    created = client.post(
        "/v1/webhooks",
        json={"url": "https://93.184.215.14/hook", "events": ["person.updated"],
              "system": "ats", "scopes": ["persons:read"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    listed = client.get("/v1/webhooks").json()["items"]
    assert [s["id"] for s in listed] == [body["id"]]
    assert "secret" not in listed[0]
    assert client.get(f"/v1/webhooks/{body['id']}/deliveries").json()["items"] == []

    # Where fields flow: HRIS names go to the ATS one-way; the ATS never receives the
    # compensation it owns.
    hris = {f["field"]: f for f in client.get("/v1/sources/hris/mapping").json()["fields"]}
    assert hris["given_name"]["sync"] == {"direction": "one-way", "to": ["ats"]}
    ats = {f["field"]: f for f in client.get("/v1/sources/ats/mapping").json()["fields"]}
    assert ats["given_name"]["sync"] == {"direction": "both", "to": ["ats"]}
    assert ats["compensation"]["sync"] == {"direction": "one-way", "to": []}

    assert client.delete(f"/v1/webhooks/{body['id']}").status_code == 204
    assert client.get(f"/v1/webhooks/{body['id']}").json()["status"] == "disabled"
    assert client.get("/v1/webhooks/01a22619-2219-7c04-8e21-1a925a769deb").status_code == 404
