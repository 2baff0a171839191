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
from mdm.flow.compare_many import FeatureColumns, compare_pairs
from mdm.flow.pairs import BlockMember, score_block_pairs
from mdm.flow.score import FellegiSunterScorer
from tests.unit.test_block_scoring import _pool
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
    """The pairs and exact kinds of the one-block-at-a-time path (services/dedupe)."""
    by_key: dict[Key, list[int]] = defaultdict(list)
    for i, f in enumerate(pool):
        for key in candidate_keys(f):
            by_key[key].append(i)
    generic = {k for k, ms in by_key.items() if len({owner[i] for i in ms}) > cap}
    members = [
        BlockMember(i, owner[i], ("crm", f"{i:05d}"), candidate_keys(f),
                    without_generic(f, generic), changed[i])
        for i, f in enumerate(pool)
    ]  # fmt: skip
    found = {}
    for key, ms in by_key.items():
        persons = {owner[i] for i in ms}
        if key in generic or len(persons) < 2 or not any(changed[i] for i in ms):
            continue
        for pair in score_block_pairs(key, [members[i] for i in ms], SCORER, generic):
            assert (pair.first, pair.second) not in found
            found[(pair.first, pair.second)] = pair.exact
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
