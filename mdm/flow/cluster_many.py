"""Coherent groups for many persons at once: the batch dedupe's `cluster.pair_guards`
column by column, then `cluster.rebuild` of every component of the link graph.

Every guard rests on comparing each record of one person with each record of another.
Here the record pairs of all the person pairs concerned are laid out as arrays and
compared in one pass (flow/compare_many.py); a confidence within a hair of the strangers'
floor is taken from the one formula rather than from the arrays, so that no group's fate
turns on rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from mdm.flow.cluster import MAX_COMPONENT, STRANGERS, rebuild
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
from mdm.flow.decide import DISAGREEING_NAMES
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
    "strangers",
)
_BIRTH, _EMPLOYEE, _NATIONAL_ID, _NAMES, _STRANGERS = (1 << k for k in range(5))
_DISAGREEING = np.array([level in DISAGREEING_NAMES for level in NAME_LEVELS])
_SET_DIFFERS = SET_LEVELS.index("differs")
_SET_EXACT = SET_LEVELS.index("exact")
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
    # Employee ids are compared within one system only: "differs" is two ids of one; with
    # one national id, a rehire's two numbers.
    rehired = levels.national_id == _SET_EXACT
    bits |= np.where((levels.employee_id == _SET_DIFFERS) & ~rehired, _EMPLOYEE, 0)
    return bits.astype(np.int64)


def _per_group(values: np.ndarray, group: np.ndarray, groups: int, op: np.ufunc) -> np.ndarray:
    """`op` reduced over the values of each group (groups numbered 0..groups-1, each with
    a value, values ordered by group)."""
    if not len(values):
        return np.zeros(groups, dtype=values.dtype)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return op.reduceat(values, starts)


def pair_guards_many(
    columns: FeatureColumns,
    persons: PersonRecords,
    a: np.ndarray,
    b: np.ndarray,
    scorer: FellegiSunterScorer,
    weights: ComparisonWeights,
    distinct: Callable[[int, int], bool],
) -> list[list[str]]:
    """`cluster.pair_guards` of every person pair (a[k], b[k])."""
    if not len(a):
        return []
    x, y, owner = persons.pairs(a, b)
    forward, backward = compare_pairs(columns, x, y), compare_pairs(columns, y, x)
    bits = _conflict_bits(forward) | _conflict_bits(backward)
    known = np.maximum(
        _agreeing(columns, scorer, weights, forward, STRANGERS),
        _agreeing(columns, scorer, weights, backward, STRANGERS),
    )
    bits |= np.where(known == 0, _STRANGERS, 0)
    out = []
    per_pair = _per_group(bits, owner, len(a), np.bitwise_or)
    for p, q, v in zip(a.tolist(), b.tolist(), per_pair.tolist(), strict=True):
        guards = guards_of(int(v))
        if distinct(p, q):
            guards.append("marked_distinct")
        out.append(sorted(guards))
    return out


@dataclass
class Clustering:
    """The groups to merge (two persons or more each), the links left out with the rule
    and reasons that left them out, and how many components were not merged whole."""

    groups: list[list[int]]
    left_out: dict[tuple[int, int], tuple[str, list[str]]]
    incoherent: int


def coherent_groups(
    columns: FeatureColumns,
    persons: PersonRecords,
    clusters: Sequence[Sequence[int]],
    links: Sequence[tuple[int, int]],
    scorer: FellegiSunterScorer,
    weights: ComparisonWeights,
    distinct: Callable[[int, int], bool],
) -> Clustering:
    """`cluster.rebuild` of every component of the link graph (`clusters`, its
    components; `links`, strongest first): every pair of persons of a component is
    compared in one pass first."""
    component = {m: k for k, members in enumerate(clusters) for m in members}
    edges: list[list[tuple[int, int]]] = [[] for _ in clusters]
    for a, b in links:
        edges[component[a]].append((a, b))
    count = persons.count
    oversized = {
        k for k, members in enumerate(clusters) if int(count[list(members)].sum()) > MAX_COMPONENT
    }
    first: list[int] = []
    second: list[int] = []
    for k, members in enumerate(clusters):
        if k not in oversized:
            for p, q in combinations(members, 2):
                first.append(p)
                second.append(q)
    found = pair_guards_many(
        columns, persons, np.array(first, dtype=np.int64), np.array(second, dtype=np.int64),
        scorer, weights, distinct,
    )  # fmt: skip
    guards = dict(zip(zip(first, second, strict=True), found, strict=True))
    out = Clustering([], {}, 0)
    chain = [f"more_than_{MAX_COMPONENT}_records_linked"]
    for k, members in enumerate(clusters):
        if k in oversized:
            out.left_out.update((pair, ("incoherent_cluster", chain)) for pair in edges[k])
            out.incoherent += 1
            continue
        groups, left_out = rebuild(
            members, edges[k], lambda p: int(count[p]), lambda p, q: guards[(p, q)]
        )
        out.groups += groups
        if left_out:
            out.incoherent += 1
        for pair, reasons in left_out.items():
            own = guards[pair]
            out.left_out[pair] = ("merge_conflict", own) if own else ("incoherent_cluster", reasons)
    return out


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
