"""The Spark executors' comparison of sorted block members: Arrow batches end anywhere,
and wherever they end, the same pairs come out, each pair of a block's records of two
persons compared as the one-pair code compares it."""

from __future__ import annotations

import random
from itertools import combinations, pairwise

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.pool import SCORERS, _pool

pa = pytest.importorskip("pyarrow")

from mdm.services.spark_engine import _block_comparer  # noqa: E402

FLOOR = 0.70


def _members(seed: int) -> tuple[list[dict], dict[tuple[int, int], int]]:
    """Blocks of neighbouring records (a slice of the pool sorted by name), rows sorted by
    block as Spark hands them over, and each record pair's exact-kind bits."""
    rnd = random.Random(seed)
    pool = _pool()
    rows, expected_bits = [], {}
    for block in range(rnd.randint(3, 12)):
        start = rnd.randrange(0, len(pool) - 8)
        members = sorted(rnd.sample(range(start, start + 8), rnd.randint(2, 6)))
        bit = rnd.choice((0, 0, 1, 2)) if block else 1  # one exact key at least
        for record in members:
            rows.append({
                "kind": "nk" if bit == 0 else "em", "value": f"v{block:03d}", "record": record,
                "person": record // 2, "changed": True, "ref": record, "bit": bit,
                "features": orjson.dumps(pool[record].as_json()).decode(),
            })  # fmt: skip
        for x, y in combinations(members, 2):
            if x // 2 != y // 2:
                expected_bits[(x, y)] = expected_bits.get((x, y), 0) | bit
    return rows, expected_bits


def _run(rows: list[dict], cuts: list[int], scorer) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    table = pa.Table.from_pylist(rows)
    edges = [0, *sorted(set(cuts)), len(rows)]
    batches = [table.slice(a, b - a).to_batches()[0] for a, b in pairwise(edges) if b > a]
    out = _block_comparer(scorer, frozenset(), FLOOR)(iter(batches))
    found = [
        row
        for batch in out
        for row in zip(*(batch.column(k).to_pylist() for k in range(3)), strict=True)
    ]
    return sorted(found)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.lists(st.integers(1, 60), max_size=8), st.sampled_from(SCORERS))
def test_batches_cut_anywhere_give_the_same_pairs(seed: int, cuts: list[int], scorer) -> None:  # type: ignore[no-untyped-def]
    rows, bits = _members(seed)
    whole = _run(rows, [], scorer)
    assert _run(rows, [c for c in cuts if c < len(rows)], scorer) == whole
    pool = _pool()
    # Each block's pairs of two persons, worth a decision by the one formula or an exact key.
    expected = set()
    for (x, y), bit in bits.items():
        a, b = (x, y) if x <= y else (y, x)
        confidence = scorer.score(pool[a], pool[b]).confidence
        if confidence >= FLOOR - 1e-9 or bit:
            expected.add((x, y, bit))
    # A pair comes out of each block it is worth a decision in; Spark ORs their bits.
    found: dict[tuple[int, int], int] = {}
    for first, second, bit in whole:
        found[(first, second)] = found.get((first, second), 0) | bit
    assert found == {(x, y): bit for x, y, bit in expected}
    assert len(found) >= 1
