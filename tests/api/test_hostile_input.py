"""What the fuzzing found, pinned: each answer a 422 naming the place, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import body


def _problem(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    return problem


def test_an_integer_beyond_64_bits_is_refused_naming_its_place(client: TestClient) -> None:
    record = body(source_id="big")
    record["data"]["badge"] = {"number": -9223372036854775809}
    problem = _problem(client.post("/v1/records", json=record))
    assert problem["errors"][0]["field"] == "data.badge.number"
    assert "64 bits" in problem["errors"][0]["message"]
    assert client.get("/v1/rejections").json()["items"] == []


def test_the_largest_64_bit_integer_is_kept(client: TestClient) -> None:
    record = body(source_id="max")
    record["data"]["badge"] = 2**63 - 1
    assert client.post("/v1/records", json=record).status_code == 201


def test_one_bad_record_in_a_batch_fails_alone(client: TestClient) -> None:
    bad = body(source_id="nul")
    bad["data"]["department"] = "Sales\x00"
    good = body(source_id="fine")
    results = client.post("/v1/records:batch", json={"records": [bad, good]}).json()["results"]
    assert results[0]["error"]["errors"][0]["field"] == "records.0.data.department"
    assert results[1]["person_id"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/reviews?source=%00", "source"),
        ("/v1/reviews?staus=open", "staus"),
        ("/v1/reviews?min_age_hours=17758765.0", "min_age_hours"),
        ("/v1/rejections?until=0.5", "until"),
        ("/v1/audit?since=1700000000", "since"),
    ],
)
def test_query_parameters_that_cannot_be_meant_are_refused(
    client: TestClient, url: str, field: str
) -> None:
    problem = _problem(client.get(url))
    assert [e["field"] for e in problem["errors"]] == [field]


def test_a_body_that_is_not_text_is_refused_as_invalid_json(client: TestClient) -> None:
    response = client.post(
        "/v1/records", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
    )
    assert _problem(response)["errors"] == [{"field": "body", "message": "not UTF-8 encoded JSON"}]


def test_a_time_sent_as_a_number_is_refused(client: TestClient) -> None:
    record = body(source_id="epoch")
    record["updated_at"] = 1700000000
    problem = _problem(client.post("/v1/records", json=record))
    assert problem["errors"][0]["field"] == "updated_at"
