"""One scorer: the batch (block-vectorised) path and the one-record path agree."""

from __future__ import annotations

from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures.generator import generate
from mdm.flow.normalise import normalise
from mdm.flow.score import FellegiSunterScorer, ModelParameters, score_block
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


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=0, max_value=560),
    st.integers(min_value=2, max_value=40),
    st.sampled_from(SCORERS),
)
def test_block_scores_equal_one_record_scores(
    start: int, size: int, scorer: FellegiSunterScorer
) -> None:
    block = _pool()[start : start + size]
    scored = list(score_block(block, scorer))
    assert len(scored) == len(block) * (len(block) - 1) // 2
    for i, j, score in scored:
        single = scorer.score(block[i], block[j])
        assert abs(score.confidence - single.confidence) <= 1e-9
        assert [(c.attribute, c.level) for c in score.comparisons] == [
            (c.attribute, c.level) for c in single.comparisons
        ]


def test_a_block_may_score_chosen_pairs_only() -> None:
    block = _pool()[:10]
    scorer = SCORERS[0]
    assert [(i, j) for i, j, _ in score_block(block, scorer, [(0, 3), (2, 9)])] == [(0, 3), (2, 9)]
