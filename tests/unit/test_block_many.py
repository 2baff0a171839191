"""Blocking column by column files every record under `block.candidate_keys` and brings
the pairs the one-block-at-a-time path scores, each once, with the same exact kinds."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm.flow.block import EXACT_KINDS, Key, candidate_keys, without_generic
from mdm.flow.block_many import block, exact_kinds, record_keys
from mdm.flow.block_many import without_generic as columns_without_generic
from mdm.flow.columns import (
    FeatureColumns,
)
from mdm.flow.compare_many import (
    compare_pairs,
)
from mdm.flow.score import FellegiSunterScorer
from tests.unit.pool import _pool
from tests.unit.test_compare_many import features

SCORER = FellegiSunterScorer()


@settings(max_examples=100, deadline=None)
@given(st.lists(features(), min_size=1, max_size=30))
def test_records_are_filed_under_their_candidate_keys(records: list) -> None:
    keys = record_keys(FeatureColumns.of(records, frozenset()))
    filed: dict[int, set[Key]] = defaultdict(set)
    for r, k in zip(keys.record, keys.key, strict=True):
        filed[int(r)].add(keys.named(int(k)))
    assert len(keys.record) == sum(len(candidate_keys(f)) for f in records)
    for i, f in enumerate(records):
        assert filed[i] == set(candidate_keys(f))


def _expected(pool, owner, changed, cap):  # type: ignore[no-untyped-def]
    """The pairs and exact kinds, the obvious way: records of two persons, one of them
    changed, sharing a key held by two to `cap` persons."""
    by_key: dict[Key, set[int]] = defaultdict(set)
    for i, f in enumerate(pool):
        for key in candidate_keys(f):
            by_key[key].add(owner[i])
    generic = {k for k, persons in by_key.items() if len(persons) > cap}
    found = {}
    for i, a in enumerate(pool):
        for j in range(i + 1, len(pool)):
            shared = (candidate_keys(a) & candidate_keys(pool[j])) - generic
            if owner[i] != owner[j] and (changed[i] or changed[j]) and shared:
                found[(i, j)] = frozenset(k[0] for k in shared if k[0] in EXACT_KINDS)
    return found, generic


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=2, max_value=90),
    st.integers(min_value=2, max_value=8),
    st.integers(min_value=0, max_value=2**32),
)
def test_blocks_bring_the_pairs_of_the_block_by_block_path(
    start: int, size: int, cap: int, seed: int
) -> None:
    rnd = random.Random(seed)
    pool = list(_pool()[start : start + size])
    owner = [k if rnd.random() < 0.8 else max(k - 1, 0) for k in range(len(pool))]
    changed = [rnd.random() < 0.7 for _ in pool]
    expected, generic = _expected(pool, owner, changed, cap)

    columns = FeatureColumns.of(pool, SCORER.known_given)
    keys = record_keys(columns)
    blocks = block(keys, np.array(owner), cap, np.array(changed))
    found = {
        (int(a), int(b)): exact_kinds(int(bits))
        for a, b, bits in zip(blocks.first, blocks.second, blocks.exact, strict=True)
    }
    assert found == expected
    assert {keys.named(int(k)) for k in blocks.generic} == generic
    # Generic emails and phones are not compared.
    scored = columns_without_generic(columns, generic)
    if len(blocks.first):
        levels = compare_pairs(scored, blocks.first, blocks.second)
        for k, (a, b) in enumerate(zip(blocks.first, blocks.second, strict=True)):
            x, y = without_generic(pool[a], generic), without_generic(pool[b], generic)
            single = SCORER.score(x, y)
            assert levels.email[k] == ("missing", "exact", "differs").index(single.level("email"))
            assert levels.phone[k] == ("missing", "exact", "differs").index(single.level("phone"))


def test_exact_kinds_name_their_bits() -> None:
    assert exact_kinds(0) == frozenset()
    assert exact_kinds(7) == EXACT_KINDS
