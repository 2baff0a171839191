"""A pair sharing several blocks is scored in exactly one of them, whatever order the
blocks run in and however they are spread: what lets the in-process and Spark engines
run the same function and get the same pairs."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mdm.flow.block import EXACT_KINDS, Key, candidate_keys
from mdm.flow.pairs import BlockMember, score_block_pairs
from mdm.flow.score import FellegiSunterScorer
from tests.unit.test_block_scoring import _pool

SCORER = FellegiSunterScorer()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=0, max_value=520),
    st.integers(min_value=5, max_value=60),
    st.integers(min_value=2, max_value=6),
    st.integers(min_value=0, max_value=2**32),
)
def test_each_pair_is_scored_once_in_any_block_order(
    start: int, size: int, cap: int, seed: int
) -> None:
    rnd = random.Random(seed)
    pool = _pool()[start : start + size]
    # Some persons hold two records: their pairs are never scored.
    persons = [k if rnd.random() < 0.8 else max(k - 1, 0) for k in range(len(pool))]
    members = [
        BlockMember(k, persons[k], ("crm", f"r{rnd.random()}"), candidate_keys(f), f)
        for k, f in enumerate(pool)
    ]
    by_key: dict[Key, list[BlockMember]] = defaultdict(list)
    for m in members:
        for key in m.keys:
            by_key[key].append(m)
    generic = {k for k, ms in by_key.items() if len({m.person for m in ms}) > cap}
    blocks = [(k, ms) for k, ms in by_key.items() if k not in generic]
    rnd.shuffle(blocks)
    expected = {
        (a.record, b.record)
        for a in members
        for b in members
        if a.record < b.record and a.person != b.person and (a.keys & b.keys) - generic
    }
    assume(expected)  # an example without pairs to score proves nothing

    seen: dict[tuple[int, int], int] = defaultdict(int)
    for key, block in blocks:
        rnd.shuffle(block)
        for pair in score_block_pairs(key, block, SCORER, generic):
            seen[(pair.first, pair.second)] += 1
            a, b = members[pair.first], members[pair.second]
            shared = (a.keys & b.keys) - generic
            assert pair.exact == {k[0] for k in shared if k[0] in EXACT_KINDS}
            x, y = (a, b) if a.ref < b.ref else (b, a)
            assert pair.score.confidence == SCORER.score(x.features, y.features).confidence

    assert set(seen) == expected
    assert all(n == 1 for n in seen.values())
