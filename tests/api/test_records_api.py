"""The HTTP contract of ingest, match, persons and reviews."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mdm.services.context import Registry
from mdm.store.tables import AuditEventRow, PersonRow, SourceRecordRow
from tests.factories import body

PROBLEM = "application/problem+json"


def rows(registry: Registry, table: type) -> int:
    with registry.database.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def assert_problem(response, status: int, *fields: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    named = {e["field"] for e in problem.get("errors", [])}
    for field in fields:
        assert field in named, (field, problem)
    return problem


def test_post_record_creates_then_links(client: TestClient) -> None:
    first = client.post("/v1/records", json=body("ats", "a-1"))
    assert first.status_code == 201
    assert first.json()["decision"] == "created"
    second = client.post("/v1/records", json=body("hris", "h-1", given_name="Anna"))
    assert second.status_code == 201
    payload = second.json()
    assert payload["decision"] == "linked"
    assert payload["person_id"] == first.json()["person_id"]
    assert payload["matched_on"] == ["email"]
    assert payload["score"] == 1.0
    update = client.post("/v1/records", json=body("hris", "h-1", job_title="CTO"))
    assert update.status_code == 200
    assert update.json()["decision"] == "updated"


def test_invalid_optional_value_is_accepted_with_a_warning(
    client: TestClient, registry: Registry
) -> None:
    response = client.post("/v1/records", json=body(phone="12", birth_date="1985-02-30"))
    assert response.status_code == 201
    fields = {w["field"] for w in response.json()["warnings"]}
    assert fields == {"data.phone", "data.birth_date"}
    person = client.get(f"/v1/persons/{response.json()['person_id']}").json()
    assert "phones" not in person["attributes"]
    with registry.database.engine.connect() as conn:
        raw = conn.scalar(select(SourceRecordRow.raw))
    assert raw["data"]["phone"] == "12"


def test_request_id_becomes_the_correlation_id(client: TestClient, registry: Registry) -> None:
    response = client.post("/v1/records", json=body(), headers={"X-Request-ID": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    with registry.database.engine.connect() as conn:
        ids = set(conn.scalars(select(AuditEventRow.correlation_id)))
    assert ids == {"req-42"}


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        (
            {"source": "crm", "source_id": "x", "data": {"given_name": 5, "email": "a@b.com"}},
            ["data.given_name"],
        ),
        ({"source": "crm", "source_id": "x", "data": {"family_name": "Lee"}}, ["data"]),
        ({"source": "crm", "source_id": "x", "data": {"email": "a@b.com"}}, ["data.given_name"]),
        ({"source": "crm", "source_id": "x", "data": {}, "colour": "red"}, ["colour"]),
        ({"source": "crm", "data": {"given_name": "A", "email": "a@b.com"}}, ["source_id"]),
        ({"source": "CRM!", "source_id": "x", "data": {"given_name": "A"}}, ["source"]),
        ({"source": "crm", "source_id": "x", "data": "text"}, ["data"]),
        (
            {
                "source": "crm",
                "source_id": "x",
                "data": {"given_name": "A", "email": "a@b.com"},
                "updated_at": "yesterday",
            },
            ["updated_at"],
        ),
        (
            {
                "source": "crm",
                "source_id": "x",
                "data": {"given_name": "A", "email": "a@b.com"},
                "person_id": "not-a-uuid",
            },
            ["person_id"],
        ),
    ],
)
def test_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
    client: TestClient, registry: Registry, payload: dict, fields: list[str]
) -> None:
    assert_problem(client.post("/v1/records", json=payload), 422, *fields)
    assert rows(registry, PersonRow) == 0
    assert rows(registry, SourceRecordRow) == 0


def test_malformed_json_is_a_problem(client: TestClient) -> None:
    response = client.post(
        "/v1/records", content=b'{"source": "crm",', headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert "JSON" in problem["detail"]


def test_oversize_body_is_refused_with_413(client: TestClient, registry: Registry) -> None:
    big = body(interview_feedback="x" * (registry.settings.max_body_bytes + 10))
    assert_problem(client.post("/v1/records", json=big), 413, "body")
    assert rows(registry, SourceRecordRow) == 0


def test_oversize_streamed_body_is_refused_with_413(client: TestClient, registry: Registry) -> None:
    chunk = b" " * 65536

    def stream():  # type: ignore[no-untyped-def]
        yield b'{"source": "crm", "source_id": "x", "data": {"given_name": "'
        for _ in range(registry.settings.max_body_bytes // len(chunk) + 2):
            yield chunk
        yield b'"}}'

    response = client.post(
        "/v1/records", content=stream(), headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 413)


def test_missing_or_wrong_key_is_401_problem(client: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}):
        assert_problem(client.post("/v1/records", json=body(), headers=headers), 401)
        assert_problem(client.get("/v1/reviews", headers=headers), 401)


def test_batch_returns_one_result_per_record_in_order(
    client: TestClient, registry: Registry
) -> None:
    records = [
        body("ats", "a-1"),
        {"source": "ats", "source_id": "a-2", "data": {"given_name": 1}},
        {"source": "ats", "data": {}},
        body("hris", "h-1", given_name="Anna"),
    ]
    response = client.post("/v1/records:batch", json={"records": records})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r.get("decision") for r in results] == ["created", None, None, "linked"]
    assert results[1]["error"]["errors"][0]["field"] == "data.given_name"
    assert results[2]["error"]["errors"][0]["field"] == "records.2.source_id"
    assert results[3]["person_id"] == results[0]["person_id"]
    assert rows(registry, SourceRecordRow) == 2


def test_batch_over_the_cap_is_refused_whole(client: TestClient, registry: Registry) -> None:
    limit = registry.settings.max_batch_records
    response = client.post("/v1/records:batch", json={"records": [body()] * (limit + 1)})
    assert_problem(response, 413, "records")
    assert rows(registry, SourceRecordRow) == 0


def test_match_is_a_dry_run_with_explanations(client: TestClient, registry: Registry) -> None:
    created = client.post("/v1/records", json=body("ats", phone="+34 612 345 678")).json()
    before = rows(registry, SourceRecordRow), rows(registry, AuditEventRow)
    response = client.post(
        "/v1/match",
        json={
            "data": {
                "given_name": "Ana",
                "family_name": "Garcia",
                "phone": "612345678",
                "country": "ES",
            }
        },
    )
    assert response.status_code == 200
    result = response.json()
    assert result["decision"] == "linked"
    assert result["person_id"] == created["person_id"]
    top = result["candidates"][0]
    levels = {c["attribute"]: c["level"] for c in top["explanation"]["comparisons"]}
    assert levels["phone"] == "exact"
    assert (rows(registry, SourceRecordRow), rows(registry, AuditEventRow)) == before


def test_person_read_and_unknown_id(client: TestClient) -> None:
    created = client.post("/v1/records", json=body("ats", "a-9")).json()
    person = client.get(f"/v1/persons/{created['person_id']}")
    assert person.status_code == 200
    data = person.json()
    assert data["id"] == created["person_id"]
    assert data["status"] == "active"
    assert data["aliases"] == []
    assert data["records"][0]["source_id"] == "a-9"
    assert data["lineage"]["family_name"]["source"] == "ats"
    missing = client.get("/v1/persons/00000000-0000-4000-8000-000000000000")
    assert_problem(missing, 404)
    assert_problem(client.get("/v1/persons/not-a-uuid"), 422, "person_id")


def test_search_by_email_phone_and_name(client: TestClient) -> None:
    created = client.post(
        "/v1/records", json=body(phone="+34 612 345 678", email="Ana@Example.com")
    ).json()
    client.post("/v1/records", json=body(given_name="Luis", family_name="Pérez", email="l@x.es"))
    for query in (
        {"email": "ANA@example.com"},
        {"phone": "612 345 678", "country": "ES"},
        {"name": "ana garcia"},
    ):
        page = client.get("/v1/persons", params=query)
        assert page.status_code == 200, page.text
        assert [p["id"] for p in page.json()["items"]] == [created["person_id"]]
    assert_problem(client.get("/v1/persons"), 422, "email")
    assert_problem(client.get("/v1/persons", params={"limit": 501, "name": "x"}), 422, "limit")


def test_reviews_are_cursor_paginated(client: TestClient) -> None:
    client.post(
        "/v1/records", json=body(given_name="John", family_name="Smith", email="home@smith.org")
    )
    for given in ("Mary", "Peter", "Susan"):
        r = client.post(
            "/v1/records", json=body(given_name=given, family_name="Smith", email="home@smith.org")
        )
        assert r.json()["decision"] == "review"
    seen, cursor = [], None
    while True:
        params = {"status": "open", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/reviews", params=params).json()
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) >= 3
    assert len(seen) == len(set(seen))
    assert_problem(client.get("/v1/reviews", params={"cursor": "garbage"}), 422, "cursor")


def test_health_endpoints(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200


def test_readyz_is_503_when_the_schema_is_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app
    from tests.conftest import settings_for

    app = create_app(settings_for(f"sqlite:///{tmp_path}/empty.db"))
    with TestClient(app) as c:
        response = c.get("/readyz")
    assert_problem(response, 503)


def test_openapi_is_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/records" in spec["paths"]
    assert "/v1/records:batch" in spec["paths"]
    assert json.dumps(spec)


def test_a_merged_away_id_answers_with_the_survivor_and_an_erased_one_with_410(
    client: TestClient, registry: Registry
) -> None:
    from sqlalchemy import update

    survivor = client.post("/v1/records", json=body("ats", "a-1")).json()["person_id"]
    other = client.post(
        "/v1/records", json=body("crm", "c-1", given_name="Zed", email="zed@example.com")
    ).json()["person_id"]
    gone = client.post(
        "/v1/records", json=body("crm", "c-2", given_name="Una", email="una@example.com")
    ).json()["person_id"]
    # The merge and erasure services come later; their outcome is set here directly.
    from uuid import UUID

    with registry.database.engine.begin() as conn:
        conn.execute(
            update(PersonRow)
            .where(PersonRow.id == UUID(other))
            .values(status="merged", merged_into=UUID(survivor))
        )
        conn.execute(update(PersonRow).where(PersonRow.id == UUID(gone)).values(status="erased"))
    redirected = client.get(f"/v1/persons/{other}")
    assert redirected.status_code == 200
    assert redirected.json()["id"] == survivor
    assert redirected.json()["aliases"] == [other]
    erased = assert_problem(client.get(f"/v1/persons/{gone}"), 410)
    assert erased["person_id"] == gone


def test_the_api_answers_503_when_the_database_is_unreachable() -> None:
    from api.app import create_app
    from tests.conftest import ADMIN_KEY, settings_for

    app = create_app(settings_for("postgresql+psycopg://postgres@127.0.0.1:9/none"))
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        assert_problem(c.get("/readyz"), 503)
        assert c.get("/livez").status_code == 200
        refused = c.post("/v1/records", json=body())
        assert_problem(refused, 503)
        assert refused.headers["retry-after"] == "1"


def test_a_record_that_links_two_persons_reports_the_merge(client: TestClient) -> None:
    name = {"given_name": "Imelda", "family_name": "Quarshie"}
    phone = "+44 7911 123456"
    first = client.post("/v1/records", json=body("crm", "c-1", **name, email="iq@example.org"))
    second = client.post(
        "/v1/records", json=body("ats", "a-1", **name, email="iq@initech.com", phone=phone)
    )
    older, newer = first.json()["person_id"], second.json()["person_id"]
    assert older != newer
    bridge = client.post(
        "/v1/records", json=body("hris", "h-1", **name, email="iq@example.org", phone=phone)
    )
    assert bridge.status_code == 201
    assert bridge.json()["person_id"] == older
    assert bridge.json()["merged_person_ids"] == [newer]
    redirected = client.get(f"/v1/persons/{newer}")
    assert redirected.status_code == 200
    assert redirected.json()["id"] == older
    assert redirected.json()["aliases"] == [newer]
    assert len(redirected.json()["records"]) == 3
