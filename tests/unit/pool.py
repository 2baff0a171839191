"""Generated records for the tests of the batch dedupe's columns, and the scorers they are
scored with."""

from __future__ import annotations

from functools import cache

from fixtures.generator import generate
from mdm.flow.normalise import normalise
from mdm.flow.score import FellegiSunterScorer, ModelParameters
from mdm.model.errors import InvalidRecord
from mdm.model.record import IncomingRecord, MatchFeatures
from tests.factories import BLIND_KEY


@cache
def _pool() -> tuple[MatchFeatures, ...]:
    """Generated records, where typos, nicknames, swaps and relatives abound."""
    pool = []
    for g in generate(600, seed=11):
        try:
            pool.append(
                normalise(
                    IncomingRecord(g.source, g.source_id, g.data), blind_index_key=BLIND_KEY
                ).features
            )
        except InvalidRecord:
            continue
    # Sorted by family name, so that a slice is a block of similar names.
    return tuple(sorted(pool, key=lambda f: (f.family or "", f.given or "")))


SCORERS = (
    FellegiSunterScorer(),
    FellegiSunterScorer(
        ModelParameters(
            version="tf",
            term_frequencies={"given": {"maria": 0.02}, "family": {"smith": 0.01}},
            average_u={"given": 0.003, "family": 0.001},
            rare={"given": 1e-5, "family": 1e-5},
            records=100_000,
        )
    ),
)
