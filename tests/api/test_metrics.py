"""/metrics: ingest counters, refusals by field, confidence, latency by route template,
the review queue and the outbox read from the database; no personal data anywhere."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_metrics_count_what_happened_without_personal_data(client: TestClient) -> None:
    ana = {"given_name": "Ana", "family_name": "Okafor", "email": "ana@okafor.io"}
    created = client.post("/v1/records", json={"source": "crm", "source_id": "c1", "data": ana})
    assert created.status_code == 201
    person_id = created.json()["person_id"]
    client.post("/v1/records", json={"source": "ats", "source_id": "a1", "data": ana})
    refused = client.post(
        "/v1/records", json={"source": "crm", "source_id": "c2", "data": {"email": 5}}
    )
    assert refused.status_code == 422
    client.post("/v1/records", json={"source": "nosuch", "source_id": "x", "data": ana})
    client.get(f"/v1/persons/{person_id}")

    r = client.get("/metrics")
    assert r.status_code == 200
    text = r.text
    assert 'mdm_records_ingested_total{decision="created",source="crm"} 1.0' in text
    assert 'mdm_records_ingested_total{decision="linked",source="ats"} 1.0' in text
    assert 'mdm_validation_failures_total{field="email",source="crm"} 1.0' in text
    assert 'mdm_validation_failures_total{field="source",source="unknown"} 1.0' in text
    assert "mdm_match_confidence_bucket" in text
    assert 'route="/v1/persons/{person_id}"' in text
    assert "mdm_review_queue_depth 0.0" in text
    assert "mdm_outbox_lag_seconds" in text
    # No person id, name or email, and an unknown source is not a label.
    for private in (person_id, "Okafor", "ana@okafor.io", "nosuch"):
        assert private not in text
