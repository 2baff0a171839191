"""Pairs of a block: which record pairs a block scores, and their scores.

The batch dedupe scores the whole registry one block at a time, on one machine or spread
over a cluster. `score_block_pairs` is a pure function of one block's records, so either
engine runs the blocks in any order, on any worker, and gets the same pairs and scores: a
pair sharing several keys is scored in one block only, the first of its shared keys in
`block_order`, and the exact kinds it shares are read from the two records' own keys
rather than gathered across blocks.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import NamedTuple

from mdm.flow.block import EXACT_KINDS, Key
from mdm.flow.score import FellegiSunterScorer, Score, score_block
from mdm.model.record import MatchFeatures


def block_order(key: Key) -> tuple[bool, Key]:
    """Exact keys first, then by kind and value."""
    return (key[0] not in EXACT_KINDS, key)


@dataclass(frozen=True, slots=True)
class BlockMember:
    record: int  # the record's index in the run
    person: int  # its person's index in the run
    ref: tuple[str, str]  # (source, source_id): orients each pair
    keys: frozenset[Key]  # the record's candidate keys
    features: MatchFeatures  # generic emails and phones left out
    changed: bool = True  # its person changed since the last run (`--since`)


class ScoredPair(NamedTuple):
    """A scored record pair; a named tuple, as `Score`, for the speed of making one."""

    first: int  # record indices, first < second
    second: int
    score: Score
    exact: frozenset[str]  # kinds of the exact keys the two records share

    def worth_deciding(self, floor: float) -> bool:
        """At least the review threshold, or an exact key shared: the policy decides it."""
        return self.score.confidence >= floor or bool(self.exact)


def _owns(key: Key, shared: frozenset[Key], generic: Collection[Key]) -> bool:
    """Whether `key` comes first in block order among the shared keys that are not generic
    (`key` itself is one of them)."""
    exact = key[0] in EXACT_KINDS
    for k in shared:
        if k == key or k in generic:
            continue
        k_exact = k[0] in EXACT_KINDS
        if (k_exact and not exact) or (k_exact == exact and k < key):
            return False
    return True


def score_block_pairs(
    key: Key,
    members: Sequence[BlockMember],
    scorer: FellegiSunterScorer,
    generic: Collection[Key],
) -> Iterator[ScoredPair]:
    """Score the pairs this block owns: records of two persons, at least one of them
    changed, whose first shared key that is not generic is `key`.

    Comparing is not quite symmetric (a swapped name is read from one side), so each pair
    is scored one way, by its records' (source, source_id): decisions then depend on
    neither person ids, which a merge changes, nor the engine.
    """
    local: list[tuple[int, int]] = []
    exact: list[frozenset[str]] = []
    for x, y in combinations(range(len(members)), 2):
        a, b = members[x], members[y]
        if a.person == b.person or not (a.changed or b.changed):
            continue
        shared = a.keys & b.keys
        if len(shared) > 1 and not _owns(key, shared, generic):
            continue  # another block of the two scores them
        local.append((x, y) if a.ref < b.ref else (y, x))
        exact.append(frozenset(k[0] for k in shared if k[0] in EXACT_KINDS and k not in generic))
    if not local:
        return
    features = [m.features for m in members]
    for (x, y, score), kinds in zip(score_block(features, scorer, local), exact, strict=True):
        i, j = members[x].record, members[y].record
        yield ScoredPair(min(i, j), max(i, j), score, kinds)
