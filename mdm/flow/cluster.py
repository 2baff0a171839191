"""Clusters for the nightly dedupe: who the auto-merge pairs join, and which groups of
them are coherent enough to become one person.

Transitive merging is how a registry grows a "person" of thousands of records: A links to
B, B to C, and A and C are strangers. So a group is merged only when it is coherent: no
two of its members hold conflicting evidence (birth dates, national ids, employee ids of
one system without a national id in common, household names), no two were called
distinct by a steward, no two records in it are strangers by the model's own reckoning
(their confidence under `STRANGERS`), and it holds at most `MAX_CLUSTER` records.

A component of the link graph is built up link by link, strongest first (Kruskal's order,
with cannot-link constraints): a link joins two groups only when their union stays
coherent. The coherent groups merge; each link left out goes before a steward with the
reasons it was left out, so one doubtful record no longer holds its whole component
back. Every test is between two persons' records (or counts records), so a union refused
stays refused for any larger group: a run killed after merging some groups, run again,
sees those groups as single persons and builds the same groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from mdm.flow.decide import merge_conflicts
from mdm.flow.score import Scorer
from mdm.model.record import MatchFeatures

# More records than this in one person is a chain, not a human typed into a few systems.
MAX_CLUSTER = 20
# A component linking more records than this is a chain through some shared value: it is
# not rebuilt (every pair of its persons would be compared) but put to a steward whole.
MAX_COMPONENT = 200
# Two records the model gives less than 1 chance in 100 of being one human are two, however
# each is linked to the rest of a group.
STRANGERS = 0.01


def components(edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of `edges` (union-find), each sorted, in order of their least
    member: the same edges always give the same groups in the same order."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in parent:
        groups.setdefault(find(x), []).append(x)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def pair_guards(
    a: Sequence[MatchFeatures], b: Sequence[MatchFeatures], scorer: Scorer, distinct: bool
) -> list[str]:
    """Why the persons holding records `a` and `b` may not be in one group."""
    guards = set(merge_conflicts(a, b, scorer)) | set(merge_conflicts(b, a, scorer))
    if distinct:
        guards.add("marked_distinct")
    for x in a:
        for y in b:
            best = max(scorer.score(x, y).confidence, scorer.score(y, x).confidence)
            if best < STRANGERS:
                guards.add("strangers")
    return sorted(guards)


def rebuild(
    members: Sequence[int],
    edges: Sequence[tuple[int, int]],
    size: Callable[[int], int],
    guards: Callable[[int, int], Sequence[str]],
) -> tuple[list[list[int]], dict[tuple[int, int], list[str]]]:
    """The coherent groups of one component, and why each link left out was.

    `edges` are the component's links, strongest first; `size` is a person's records;
    `guards(p, q)` (p < q) why two persons may not be in one group. A group is a sorted
    list of two or more persons; groups come in order of their least member."""
    group = {m: [m] for m in members}
    held = {m: size(m) for m in members}  # records of the group each person is in
    left_out: dict[tuple[int, int], list[str]] = {}
    for a, b in edges:
        ga, gb = group[a], group[b]
        if ga is gb:
            continue
        reasons: set[str] = set()
        if held[a] + held[b] > MAX_CLUSTER:
            reasons.add(f"more_than_{MAX_CLUSTER}_records")
        for p in ga:
            for q in gb:
                reasons.update(guards(min(p, q), max(p, q)))
        if reasons:
            left_out[(a, b)] = sorted(reasons)
            continue
        union = sorted(ga + gb)
        total = held[a] + held[b]
        for m in union:
            group[m], held[m] = union, total
    seen: set[int] = set()
    out = []
    for m in members:
        g = group[m]
        if len(g) > 1 and g[0] not in seen:
            seen.add(g[0])
            out.append(g)
    return sorted(out, key=lambda g: g[0]), left_out
