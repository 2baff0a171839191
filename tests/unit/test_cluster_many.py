"""Coherent groups: the column code says what the one-pair-at-a-time functions say, and
building groups link by link keeps its promises (coherent groups, every link either used
or explained, the same groups whatever part of them a killed run had merged already)."""

from __future__ import annotations

import random
from dataclasses import replace
from itertools import combinations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm.flow.cluster import MAX_CLUSTER, MAX_COMPONENT, pair_guards, rebuild
from mdm.flow.cluster_many import PersonRecords, coherent_groups, pair_guards_many
from mdm.flow.columns import FeatureColumns
from mdm.flow.decide import merge_conflicts
from mdm.flow.score_many import ComparisonWeights
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
def test_pair_guards_of_many_pairs(seed: int, start: int, size: int, scorer) -> None:  # type: ignore[no-untyped-def]
    records, starts = _persons(seed, start, size)
    n = len(starts)
    rnd = random.Random(seed)
    marked = {(p, q) for p in range(n) for q in range(p + 1, n) if rnd.random() < 0.05}
    pairs = [(p, q) for p in range(n) for q in range(n) if p != q]
    columns = FeatureColumns.of(records, scorer.known_given)
    found = pair_guards_many(
        columns, PersonRecords(starts, len(records)),
        np.array([p for p, _ in pairs]), np.array([q for _, q in pairs]),
        scorer, ComparisonWeights(scorer, columns),
        lambda p, q: (min(p, q), max(p, q)) in marked,
    )  # fmt: skip
    kinds: set[str] = set()
    for (p, q), guards in zip(pairs, found, strict=True):
        ra, rb = _records_of(records, starts, p), _records_of(records, starts, q)
        assert guards == pair_guards(ra, rb, scorer, (min(p, q), max(p, q)) in marked)
        kinds.update(guards)
    # Neighbouring names: strangers among them, and relatives whose names disagree.
    assert len(records) < 12 or "strangers" in kinds


def test_a_rehire_is_one_human_unless_no_national_id_says_so() -> None:
    scorer = SCORERS[0]
    base = _pool()[0]
    first = replace(base, source="hris", employee_id="E1", national_id_index="nid-1")
    rehired = replace(base, source="hris", employee_id="E2", national_id_index="nid-1")
    assert merge_conflicts([first], [rehired], scorer) == []
    unknown = replace(rehired, national_id_index=None)
    assert merge_conflicts([first], [unknown], scorer) == ["conflicting_employee_id"]


# -- building groups, on made-up records: which record pairs conflict, and which link ----


@st.composite
def _components(draw):  # type: ignore[no-untyped-def]
    """Records 0..n-1 in persons of one to three; some record pairs conflict; links
    between record pairs, each with its own strength."""
    n = draw(st.integers(2, 30))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    bad = {
        pair: rnd.choice(("conflicting_birth_date", "strangers", "names_disagree"))
        for pair in combinations(range(n), 2)
        if rnd.random() < draw(st.sampled_from((0.0, 0.02, 0.1, 0.3)))
    }
    persons, at = [], 0
    while at < n:
        k = min(rnd.choice((1, 1, 1, 2, 3)), n - at)
        persons.append(tuple(range(at, at + k)))
        at += k
    links = {pair: rnd.random() for pair in combinations(range(n), 2) if rnd.random() < 0.3}
    return persons, bad, links


def _build(
    persons: list[tuple[int, ...]], bad: dict, links: dict
) -> tuple[set[frozenset[int]], dict[tuple[int, int], list[str]], list[tuple[int, int]]]:
    """`rebuild` over persons (each a tuple of records): the groups as record sets, the
    links left out and the person-level links."""
    owner = {r: p for p, records in enumerate(persons) for r in records}
    strength: dict[tuple[int, int], tuple[float, int, int]] = {}
    for (x, y), s in links.items():
        p, q = sorted((owner[x], owner[y]))
        if p != q:
            strength[(p, q)] = min(strength.get((p, q), (2.0, 0, 0)), (-s, x, y))
    edges = sorted(strength, key=strength.__getitem__)

    def guards(p: int, q: int) -> list[str]:
        found = {bad[(min(x, y), max(x, y))] for x in persons[p] for y in persons[q]
                 if (min(x, y), max(x, y)) in bad}  # fmt: skip
        return sorted(found)

    members = sorted({m for e in edges for m in e})
    groups, left_out = rebuild(members, edges, lambda p: len(persons[p]), guards)
    as_records = {frozenset(r for p in g for r in persons[p]) for g in groups}
    return as_records, left_out, edges


@settings(max_examples=300, deadline=None)
@given(_components(), st.randoms(use_true_random=False))
def test_groups_are_coherent_and_a_killed_run_builds_them_again(case, rnd) -> None:  # type: ignore[no-untyped-def]
    persons, bad, links = case
    groups, left_out, edges = _build(persons, bad, links)
    grouped = {r: g for g in groups for r in g}
    owner = {r: p for p, records in enumerate(persons) for r in records}
    for g in groups:
        assert len(g) <= MAX_CLUSTER
        # What one person held already is not the run's to undo; what it joins is.
        assert not any((x, y) in bad for x, y in combinations(sorted(g), 2) if owner[x] != owner[y])
    # Every person's records stay together, and every link is used or explained.
    for records in persons:
        assert len({grouped.get(r, frozenset(records)) for r in records}) == 1
    for p, q in edges:
        together = grouped.get(persons[p][0]) is not None and persons[q][0] in grouped.get(
            persons[p][0], ()
        )
        assert together != ((p, q) in left_out)
        assert (p, q) not in left_out or left_out[(p, q)]
    # A run killed after writing some of the groups: those are single persons now.
    done = [g for g in sorted(groups, key=min) if rnd.random() < 0.5]
    merged = {r for g in done for r in g}
    again = [tuple(sorted(g)) for g in done]
    again += [records for records in persons if records[0] not in merged]
    regroups, _, _ = _build(again, bad, links)
    assert regroups | {g for g in done if g not in regroups} == groups


def test_a_component_too_large_to_rebuild_goes_to_a_steward_whole() -> None:
    """A chain of more records than MAX_COMPONENT is a shared value at work: none of its
    links is applied, each goes before a steward naming why; a small one beside it is
    built as usual."""
    scorer = SCORERS[0]
    records = list(_pool()[: MAX_COMPONENT + 3])
    columns = FeatureColumns.of(records, scorer.known_given)
    persons = PersonRecords(list(range(len(records))), len(records))
    chain = list(range(MAX_COMPONENT + 1))
    small = [MAX_COMPONENT + 1, MAX_COMPONENT + 2]
    links = [(a, a + 1) for a in chain[:-1]] + [(small[0], small[1])]
    built = coherent_groups(
        columns, persons, [chain, small], links, scorer, ComparisonWeights(scorer, columns),
        lambda p, q: False,
    )  # fmt: skip
    reason = ("incoherent_cluster", [f"more_than_{MAX_COMPONENT}_records_linked"])
    assert {pair: built.left_out[pair] for pair in links[:-1]} == dict.fromkeys(links[:-1], reason)
    assert built.incoherent >= 1
    assert all(not set(group) & set(chain) for group in built.groups)
