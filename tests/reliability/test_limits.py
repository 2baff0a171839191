"""Every limit answered as specified, every time: bodies over the cap (413), batches over
the cap (413), `limit` over its maximum on every operation that pages (422 naming it), and
a key that bursts past its rate (429 with Retry-After) while another key is served."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from mdm.services.context import Registry
from mdm.services.keys import create_key
from tests.conftest import ADMIN_KEY
from tests.factories import body

PROBLEM = "application/problem+json"


@pytest.fixture
def limited(registry: Registry) -> Iterator[TestClient]:
    settings = registry.settings.model_copy(
        update={
            "max_body_bytes": 64 * 1024,
            "max_batch_records": 10,
            "rate_limit_per_second": 1.0,
            "rate_limit_burst": 5,
        }
    )
    own = Registry.from_settings(settings)
    app = create_app(settings, registry=own)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        yield c
    own.close()


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    app = create_app(registry.settings, registry=registry)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        yield c


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def test_a_body_over_the_cap_is_refused_whether_announced_or_streamed(
    limited: TestClient,
) -> None:
    record = body(source_id="big", job_title="x" * 70_000)
    _problem(limited.post("/v1/records", json=record), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap counts what arrives
        yield b'{"source": "crm", "source_id": "s", "data": {"job_title": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}}'

    response = limited.post(
        "/v1/records", content=chunks(), headers={"content-type": "application/json"}
    )
    _problem(response, 413)


def test_a_batch_over_the_cap_is_refused_and_nothing_of_it_is_kept(
    limited: TestClient,
) -> None:
    records = [body(source_id=f"b{i}") for i in range(11)]
    problem = _problem(limited.post("/v1/records:batch", json={"records": records}), 413)
    assert "10" in problem["detail"]
    assert limited.get("/v1/persons", params={"name": "Ana García"}).json()["items"] == []
    assert limited.post("/v1/records:batch", json={"records": records[:10]}).status_code == 200


def _paged_operations(client: TestClient) -> list[tuple[str, int]]:
    document = client.get("/openapi.json").json()
    out = []
    for path, item in document["paths"].items():
        if "{" in path:
            continue
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "limit" and method == "get":
                    out.append((path, parameter["schema"]["maximum"]))
    return out


def test_limit_over_its_maximum_is_refused_on_every_operation_that_pages(
    client: TestClient,
) -> None:
    paged = _paged_operations(client)
    assert {p for p, _ in paged} >= {"/v1/reviews", "/v1/audit", "/v1/rejections"}
    for path, maximum in paged:
        params = {"name": "Ana García"} if path == "/v1/persons" else {}
        problem = _problem(client.get(path, params={**params, "limit": maximum + 1}), 422)
        assert [e["field"] for e in problem["errors"]] == ["limit"], path
        assert client.get(path, params={**params, "limit": maximum}).status_code == 200, path


def test_a_key_bursting_past_its_rate_gets_429_and_another_key_is_still_served(
    limited: TestClient, registry: Registry
) -> None:
    _, calm = create_key(registry, name="calm", scopes=["records:read"], actor="test")
    started = time.monotonic()
    answers = [limited.get("/v1/sources") for _ in range(20)]
    elapsed = time.monotonic() - started
    passed = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    # A burst of 5, then one a second at most.
    assert 5 <= len(passed) <= 5 + int(elapsed) + 1
    for answer in refused:
        _problem(answer, 429)
        assert int(answer.headers["Retry-After"]) >= 1
    calm_answers = [
        limited.get("/v1/sources", headers={"Authorization": f"Bearer {calm}"}) for _ in range(5)
    ]
    assert [a.status_code for a in calm_answers] == [200] * 5
