"""Merge conflicts and group coherence for many persons at once: the batch dedupe's
`decide.merge_conflicts` and `cluster.incoherence`, column by column.

Both rest on comparing every record of one person with every record of another. Here the
record pairs of all the persons concerned are laid out as arrays and compared in one pass
(flow/compare_many.py); a confidence within a hair of the review threshold is taken from
the one formula rather than from the arrays, so that no group's fate turns on rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations

import numpy as np

from mdm.flow.cluster import MAX_CLUSTER
from mdm.flow.columns import (
    FeatureColumns,
)
from mdm.flow.compare import NAME_LEVELS
from mdm.flow.compare_many import (
    BIRTH_LEVELS,
    SET_LEVELS,
    PairComparisons,
    compare_pairs,
    comparisons_of,
)
from mdm.flow.decide import DISAGREEING_NAMES, Thresholds
from mdm.flow.score import FellegiSunterScorer
from mdm.flow.score_many import (
    ComparisonWeights,
)

# Conflict bits, in the order `merge_conflicts` names them once sorted.
_GUARDS = (
    "conflicting_birth_date",
    "conflicting_employee_id",
    "conflicting_national_id",
    "names_disagree",
)
_BIRTH, _EMPLOYEE, _NATIONAL_ID, _NAMES = (1 << k for k in range(4))
_DISAGREEING = np.array([level in DISAGREEING_NAMES for level in NAME_LEVELS])
_SET_DIFFERS = SET_LEVELS.index("differs")
_BIRTH_DIFFERS = BIRTH_LEVELS.index("differs")


def guards_of(bits: int) -> list[str]:
    return [guard for k, guard in enumerate(_GUARDS) if bits & (1 << k)]


class PersonRecords:
    """Which records each person holds: persons' records are contiguous, from `start`."""

    def __init__(self, start: Sequence[int], records: int) -> None:
        self.start = np.asarray(start, dtype=np.int64)
        self.count = np.diff(np.r_[self.start, records])

    def pairs(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (record of a[k], record of b[k]), with k: the record pairs of person
        pairs."""
        a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
        na, nb = self.count[a], self.count[b]
        sizes = na * nb
        owner = np.repeat(np.arange(len(a)), sizes)
        offset = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        x = self.start[a][owner] + offset // nb[owner]
        y = self.start[b][owner] + offset % nb[owner]
        return x, y, owner


def _conflict_bits(levels: PairComparisons) -> np.ndarray:
    bits = np.where(levels.birth_date == _BIRTH_DIFFERS, _BIRTH, 0)
    bits |= np.where(levels.national_id == _SET_DIFFERS, _NATIONAL_ID, 0)
    bits |= np.where(_DISAGREEING[levels.name], _NAMES, 0)
    # Employee ids are compared within one system only: "differs" is two ids of one.
    bits |= np.where(levels.employee_id == _SET_DIFFERS, _EMPLOYEE, 0)
    return bits.astype(np.int64)


def _per_group(values: np.ndarray, group: np.ndarray, groups: int, op: np.ufunc) -> np.ndarray:
    """`op` reduced over the values of each group (groups numbered 0..groups-1, each with
    a value, values ordered by group)."""
    if not len(values):
        return np.zeros(groups, dtype=values.dtype)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return op.reduceat(values, starts)


def merge_conflicts_many(
    columns: FeatureColumns, persons: PersonRecords, a: np.ndarray, b: np.ndarray
) -> list[list[str]]:
    """`decide.merge_conflicts` both ways round for every person pair (a[k], b[k])."""
    if not len(a):
        return []
    x, y, owner = persons.pairs(a, b)
    bits = _conflict_bits(compare_pairs(columns, x, y)) | _conflict_bits(
        compare_pairs(columns, y, x)
    )
    return [guards_of(int(v)) for v in _per_group(bits, owner, len(a), np.bitwise_or)]


def incoherence_many(
    columns: FeatureColumns,
    persons: PersonRecords,
    groups: Sequence[Sequence[int]],
    scorer: FellegiSunterScorer,
    weights: ComparisonWeights,
    thresholds: Thresholds,
    distinct: Callable[[int, int], bool],
) -> list[list[str]]:
    """`cluster.incoherence` of every group (of persons)."""
    out: list[set[str]] = [set() for _ in groups]
    first: list[int] = []
    second: list[int] = []
    group_of: list[int] = []
    for g, members in enumerate(groups):
        if len(members) > MAX_CLUSTER:
            out[g].add(f"more_than_{MAX_CLUSTER}_persons")
            continue
        for p, q in combinations(members, 2):
            if distinct(p, q):
                out[g].add("marked_distinct")
            first.append(p)
            second.append(q)
            group_of.append(g)
    if first:
        a, b = np.array(first, dtype=np.int64), np.array(second, dtype=np.int64)
        x, y, owner = persons.pairs(a, b)
        forward, backward = compare_pairs(columns, x, y), compare_pairs(columns, y, x)
        bits = _conflict_bits(forward) | _conflict_bits(backward)
        agree = np.maximum(
            _agreeing(columns, scorer, weights, forward, thresholds.review),
            _agreeing(columns, scorer, weights, backward, thresholds.review),
        )
        conflicts = _per_group(bits, owner, len(a), np.bitwise_or)
        agrees = _per_group(agree, owner, len(a), np.maximum)
        counts: dict[tuple[int, int], int] = {}
        for k, (p, q, g) in enumerate(zip(first, second, group_of, strict=True)):
            out[g].update(guards_of(int(conflicts[k])))
            if agrees[k]:
                counts[(g, p)] = counts.get((g, p), 0) + 1
                counts[(g, q)] = counts.get((g, q), 0) + 1
        for g, members in enumerate(groups):
            if len(members) > MAX_CLUSTER:
                continue
            others = len(members) - 1
            if any(2 * counts.get((g, m), 0) < others for m in members):
                out[g].add("member_matches_one_neighbour_only")  # the end of a chain
    return [sorted(reasons) for reasons in out]


def _agreeing(
    columns: FeatureColumns,
    scorer: FellegiSunterScorer,
    weights: ComparisonWeights,
    levels: PairComparisons,
    floor: float,
) -> np.ndarray:
    """Whether each pair's confidence reaches `floor`; near it, by the one formula."""
    confidence = weights.confidences(levels)
    agree = confidence >= floor
    for k in np.flatnonzero(np.abs(confidence - floor) <= 1e-9):
        exact = scorer.score_comparisons(comparisons_of(columns, levels, int(k), 0.0), 0.0)
        agree[k] = exact.confidence >= floor
    return agree.astype(np.int8)
