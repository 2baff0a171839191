"""The API fuzzed from its own OpenAPI document (schemathesis): every operation, data
that fits the schema and data that does not, with a key holding every scope and with a
key holding too little. No answer may be a 5xx, and every answer must be one the document
declares, in the declared media type and shape."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from fixtures.generator import generate
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import ingest_many
from mdm.services.keys import create_key
from tests.conftest import ADMIN_KEY, settings_for, truncate

EXAMPLES = 40  # per operation, mode and database: over 5,000 requests in all
# What the bars ask: no 5xx, every answer as the document declares it, data the schema
# forbids never accepted, no operation open without a key. `positive_data_acceptance` is
# left out: a record can fit the schema and still be refused for what it says (a person
# id naming no one, a name without any identifier), with a 422 naming the field.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]
SEEN: Counter[str] = Counter()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Any]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "mdm.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
    registry = Registry.from_settings(settings_for(url))
    if request.param == "postgresql":
        truncate(registry)
    records = [IncomingRecord(g.source, g.source_id, g.data) for g in generate(60, seed=3)]
    ingest_many(registry, records, actor="seed")
    _, narrow = create_key(registry, name="narrow", scopes=["records:read"], actor="test")
    app: FastAPI = create_app(registry.settings, registry=registry)
    yield app, narrow
    registry.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed: Any) -> Any:
    app, _ = fuzzed
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        deterministic=True,
        # The keys are the tests' to send (a full one, a narrow one): a negative case that
        # drops the Authorization header would be sent with it all the same.
        with_security_parameters=False,
    )
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation_with_a_full_key(case: Any) -> None:
    response = case.call(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    SEEN[f"full {response.status_code // 100}xx"] += 1
    case.validate_response(response, checks=CHECKS)


@schema.parametrize()
def test_every_operation_with_too_little_scope(case: Any, fuzzed: Any) -> None:
    _, narrow = fuzzed
    response = case.call(headers={"Authorization": f"Bearer {narrow}"})
    SEEN[f"narrow {response.status_code // 100}xx"] += 1
    case.validate_response(response, checks=CHECKS)


def test_the_fuzzing_sent_enough_requests_and_no_5xx_came_back() -> None:
    if not SEEN:
        pytest.skip("counts the requests of the fuzzing tests above; run them with it")
    print(f"fuzzed requests: {dict(SEEN)}")
    assert sum(SEEN.values()) >= 5_000, SEEN
    assert not any(kind.endswith("5xx") for kind in SEEN), SEEN
    # Both keys were answered on the merits at least once, and refused at least once.
    assert SEEN["full 2xx"] and SEEN["narrow 2xx"] and SEEN["narrow 4xx"], SEEN
