"""Training on the registry's own records: estimated, stored, versioned, activated."""

from __future__ import annotations

import math

import pytest

from fixtures.generator import generate
from mdm.flow.normalise import parse_timestamp
from mdm.flow.score import FellegiSunterScorer
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import ingest_many, ingest_one
from mdm.services.training import activate, train_model
from tests.factories import incoming


def _load(registry: Registry, n: int) -> None:
    records = [
        IncomingRecord(g.source, g.source_id, g.data, parse_timestamp(g.updated_at))
        for g in generate(n, seed=3)
    ]
    for i in range(0, n, 1000):
        ingest_many(registry, records[i : i + 1000], actor="t")


def test_a_model_is_trained_stored_and_used(registry: Registry) -> None:
    _load(registry, 1_500)
    assert registry.active_parameters() is None
    parameters, report = train_model(registry, version="em-test")
    assert report.records >= 1_400 and report.pairs > 500 and report.converged

    def weight(attribute: str, level: str) -> float:
        m, u = parameters.levels[attribute][level]
        return math.log2(m / u)

    # What the registry says must agree with common sense: agreement is evidence,
    # disagreement is not, a shared email far more than a shared given name alone.
    for attribute in ("email", "phone", "birth_date"):
        assert weight(attribute, "exact") > 5 > weight(attribute, "differs")
    # A typo is as rare among strangers as an exact name (rarer than common names), so
    # both are strong evidence; term frequencies, not the level, rank common names lower.
    assert min(weight("name", "exact"), weight("name", "typo")) > 5 > weight("name", "differs")
    assert weight("name", "relative") < weight("name", "exact") - 5
    assert 0 < parameters.prior < 0.01
    assert parameters.term_frequencies["family"]

    activate(registry, parameters, report)
    assert registry.scorer.version == "em-test"
    stored = registry.active_parameters()
    assert stored == parameters
    # A new process reads the active model, and decisions name it.
    fresh = Registry.from_settings(registry.settings)
    try:
        assert fresh.scorer.version == "em-test"
        result = ingest_one(
            fresh, incoming(given_name="Zed", family_name="Quist", email="zq@example.com"),
            actor="t",
        )  # fmt: skip
        assert result.decision == "created"
        twin = ingest_one(
            fresh,
            incoming("hris", given_name="Zed", family_name="Quist", email="zq@example.com"),
            actor="t",
        )
        assert twin.explanation["rule"] == "exact_key"
        assert twin.explanation["model"] == "em-test"
    finally:
        fresh.close()


def test_a_newer_model_replaces_the_active_one(registry: Registry) -> None:
    _load(registry, 1_100)
    first, report = train_model(registry, version="em-1")
    activate(registry, first, report)
    second, report = train_model(registry, version="em-2", sample=1_000)
    activate(registry, second, report)
    # The same registry trains the same model: a version can be rebuilt and checked.
    again, _ = train_model(registry, version="em-2", sample=1_000)
    assert again == second and second.levels != first.levels
    stored = registry.active_parameters()
    assert stored is not None and stored.version == "em-2"
    with registry.database.uow() as uow:
        models = uow.registry.models()
    assert [(m["version"], m["active"]) for m in models] == [("em-2", True), ("em-1", False)]


def test_too_few_records_to_train(registry: Registry) -> None:
    _load(registry, 200)
    with pytest.raises(ValueError, match="at least 1,000 records"):
        train_model(registry)
    assert isinstance(registry.scorer, FellegiSunterScorer)
    assert registry.scorer.version == "default-2"
