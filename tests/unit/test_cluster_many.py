"""Merge conflicts and group coherence, column by column, say what the one-pair-at-a-time
functions say: the same guards for every person pair, the same reasons for every group."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm.flow.cluster import incoherence
from mdm.flow.cluster_many import PersonRecords, incoherence_many, merge_conflicts_many
from mdm.flow.columns import (
    FeatureColumns,
)
from mdm.flow.decide import Thresholds, merge_conflicts
from mdm.flow.score_many import (
    ComparisonWeights,
)
from mdm.model.record import MatchFeatures
from tests.unit.pool import SCORERS, _pool


def _persons(seed: int, start: int, size: int) -> tuple[list[MatchFeatures], list[int]]:
    """Records of neighbouring names (relatives, typos, twins), dealt to persons of one
    to three records each; the records and each person's first record."""
    rnd = random.Random(seed)
    records = list(_pool()[start : start + size])
    starts, at = [], 0
    while at < len(records):
        starts.append(at)
        at += rnd.choice((1, 1, 2, 3))
    return records, starts


def _records_of(records: list[MatchFeatures], starts: list[int], p: int) -> list[MatchFeatures]:
    end = starts[p + 1] if p + 1 < len(starts) else len(records)
    return records[starts[p] : end]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 540), st.integers(4, 40), st.sampled_from(SCORERS))
def test_merge_conflicts_of_many_pairs(seed: int, start: int, size: int, scorer) -> None:  # type: ignore[no-untyped-def]
    records, starts = _persons(seed, start, size)
    n = len(starts)
    pairs = [(p, q) for p in range(n) for q in range(n) if p != q]
    columns = FeatureColumns.of(records, scorer.known_given)
    found = merge_conflicts_many(
        columns,
        PersonRecords(starts, len(records)),
        np.array([p for p, _ in pairs]),
        np.array([q for _, q in pairs]),
    )
    for (p, q), guards in zip(pairs, found, strict=True):
        ra, rb = _records_of(records, starts, p), _records_of(records, starts, q)
        expected = sorted(
            set(merge_conflicts(ra, rb, scorer)) | set(merge_conflicts(rb, ra, scorer))
        )
        assert guards == expected


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(0, 540), st.integers(4, 60), st.sampled_from(SCORERS))
def test_incoherence_of_many_groups(seed: int, start: int, size: int, scorer) -> None:  # type: ignore[no-untyped-def]
    rnd = random.Random(seed)
    records, starts = _persons(seed, start, size)
    n = len(starts)
    persons = list(range(n))
    rnd.shuffle(persons)
    groups, at = [], 0
    while at < n:
        k = rnd.choice((3, 3, 4, 5, 22))
        groups.append(sorted(persons[at : at + k]))
        at += k
    marked = {(p, q) for p in range(n) for q in range(p + 1, n) if rnd.random() < 0.02}

    def distinct(p: int, q: int) -> bool:
        return (min(p, q), max(p, q)) in marked

    thresholds = Thresholds()
    columns = FeatureColumns.of(records, scorer.known_given)
    found = incoherence_many(
        columns, PersonRecords(starts, len(records)), groups, scorer,
        ComparisonWeights(scorer, columns), thresholds, distinct,
    )  # fmt: skip
    for members, reasons in zip(groups, found, strict=True):
        expected = incoherence(
            members, lambda p: _records_of(records, starts, p), scorer, thresholds, distinct
        )
        assert reasons == expected
