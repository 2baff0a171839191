"""Clusters for the nightly dedupe: who the auto-merge pairs join, and whether a group is
coherent enough to become one person.

Transitive merging is how a registry grows a "person" of thousands of records: A links to
B, B to C, and A and C are strangers. A group is merged only when no two of its members
hold conflicting evidence (birth dates, national ids, employee ids of one system,
household names), no two were called distinct by a steward, and every member matches the
group rather than one neighbour: it scores at least the review threshold with half of the
others or more (a human's CRM record linked by email to the ATS one, and that by phone to
the HRIS one, is one person; four records in a line are a chain). Anything else goes to a
steward as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import combinations

from mdm.flow.decide import Thresholds, merge_conflicts
from mdm.flow.score import Scorer
from mdm.model.record import MatchFeatures

# More persons than this in one group is a chain, not a human typed into three systems.
MAX_CLUSTER = 20


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


def incoherence(
    members: Sequence[int],
    records: Callable[[int], Sequence[MatchFeatures]],
    scorer: Scorer,
    thresholds: Thresholds,
    distinct: Callable[[int, int], bool],
) -> list[str]:
    """Why a group must not be merged as one; empty when it may."""
    if len(members) > MAX_CLUSTER:
        return [f"more_than_{MAX_CLUSTER}_persons"]
    reasons: set[str] = set()
    agree = {m: 0 for m in members}
    for a, b in combinations(members, 2):
        if distinct(a, b):
            reasons.add("marked_distinct")
        # Both ways round: comparing is not quite symmetric (a swapped name is read from
        # one side), and a group's fate must not depend on the order of its members.
        reasons.update(merge_conflicts(records(a), records(b), scorer))
        reasons.update(merge_conflicts(records(b), records(a), scorer))
        best = max(
            max(scorer.score(x, y).confidence, scorer.score(y, x).confidence)
            for x in records(a)
            for y in records(b)
        )
        if best >= thresholds.review:
            agree[a] += 1
            agree[b] += 1
    others = len(members) - 1
    if any(2 * n < others for n in agree.values()):  # the end of a chain
        reasons.add("member_matches_one_neighbour_only")
    return sorted(reasons)
