"""Training: estimate the match model from the registry's records, store it, activate it."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

from mdm.flow.score import FellegiSunterScorer, ModelParameters
from mdm.flow.train import TrainingReport, train
from mdm.services.context import Registry

# Enough records to estimate name frequencies and parameters; more costs time, not accuracy.
SAMPLE = 300_000


def train_model(
    registry: Registry, *, version: str | None = None, sample: int = SAMPLE
) -> tuple[ModelParameters, TrainingReport]:
    """Parameters estimated from (a random sample of) the registry's records."""
    with registry.database.uow() as uow:
        features = uow.registry.sample_features(sample)
    version = version or "em-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return train(features, version=version, block_cap=registry.settings.max_block_size)


def activate(registry: Registry, parameters: ModelParameters, report: TrainingReport) -> None:
    """Store the model as the active one; this process scores with it from now on."""
    with registry.database.uow() as uow:
        uow.registry.save_model(
            parameters.version, parameters.as_json(), asdict(report), active=True
        )
        uow.commit()
    registry.scorer = FellegiSunterScorer(parameters)
