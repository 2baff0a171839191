"""Train: estimate the match model's parameters from the registry's own records.

Three estimates, as in Fellegi and Sunter's method and the tools built on it:

1. Name frequencies: the share of records holding each given and each family name, for
   the term-frequency adjustment of exact name levels.
2. Candidate pairs: the pairs the online path would compare, found with the same blocking
   keys and the same cap on block size.
3. u per level from random pairs (non-matches but for a negligible few); m per level by
   expectation-maximisation over the candidate pairs' comparison vectors, one session per
   blocking key kind that leaves out the comparison its blocking agrees on; the prior from
   the expected matches among the candidates over all pairs. Pairs are grouped by vector,
   so an iteration costs the number of distinct vectors (a few hundred), not of pairs.

Pure functions over match features: the service reads the records and stores the result.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from mdm.flow.block import candidate_keys
from mdm.flow.compare import Comparison, compare
from mdm.flow.score import DEFAULT_LEVELS, FellegiSunterScorer, ModelParameters
from mdm.model.record import MatchFeatures

# No level is treated as impossible between strangers: u never drops below this.
U_FLOOR = 1e-6
# The shipped m values weigh as much as this many candidate pairs (a Dirichlet prior): a
# level the registry's pairs never reach keeps its shipped m.
M_PSEUDO_PAIRS = 20.0
MIN_RECORDS = 1_000
# A pair's comparison levels, attribute by attribute: what EM sees of it.
Vector = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class TrainingReport:
    records: int
    pairs: int
    distinct_vectors: int
    iterations: int
    converged: bool
    prior: float


def name_frequencies(
    features: Sequence[MatchFeatures],
) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, float]]:
    """Per name part: shares of the names held by two records or more, the chance that
    two random records share that part, and the share of a name seen once."""
    counts: dict[str, Counter[str]] = {"given": Counter(), "family": Counter()}
    for f in features:
        if f.given:
            counts["given"][f.given.split(" ")[0]] += 1
        if f.family:
            counts["family"][f.family] += 1
    tables: dict[str, dict[str, float]] = {}
    average: dict[str, float] = {}
    rare: dict[str, float] = {}
    for part, counter in counts.items():
        total = sum(counter.values())
        if not total:
            continue
        tables[part] = {name: round(n / total, 9) for name, n in counter.most_common() if n >= 2}
        average[part] = sum((n / total) ** 2 for n in counter.values())
        rare[part] = 1 / total
    return tables, average, rare


# Each blocking key kind agrees on one comparison by construction: among the pairs it
# brings, that comparison carries no information, so its session leaves it out.
SESSION_IGNORES = {
    "email": "email",
    "phone": "phone",
    "nid": "national_id",
    "emp": "employee_id",
    "dob": "birth_date",
    "nk": "name",
}


def candidate_pairs(
    features: Sequence[MatchFeatures], *, block_cap: int, max_pairs: int
) -> dict[tuple[int, int], set[str]]:
    """The pairs of records sharing a blocking key, each with the kinds of key they share,
    skipping keys held by more than `block_cap` records (generic values), as the online
    path does."""
    blocks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        for key in candidate_keys(f):
            blocks[key].append(i)
    pairs: dict[tuple[int, int], set[str]] = defaultdict(set)
    for (kind, _), members in blocks.items():
        if 1 < len(members) <= block_cap and len(pairs) < max_pairs:
            for pair in combinations(members, 2):
                pairs[pair].add(kind)
    return pairs


def _vector(comparisons: Iterable[Comparison]) -> Vector:
    return tuple((c.attribute, c.level) for c in comparisons)


def _vectors(
    features: Sequence[MatchFeatures], pairs: Iterable[tuple[int, int]], known: frozenset[str]
) -> Counter[Vector]:
    return Counter(_vector(compare(features[i], features[j], known)) for i, j in pairs)


def random_pairs(n: int, count: int, seed: int = 0) -> list[tuple[int, int]]:
    """`count` distinct pairs of distinct records, drawn at random (all pairs if fewer)."""
    total = n * (n - 1) // 2
    if total <= count:
        return list(combinations(range(n), 2))
    rnd = random.Random(seed)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < count:
        i, j = rnd.randrange(n), rnd.randrange(n)
        if i != j:
            pairs.add((min(i, j), max(i, j)))
    return sorted(pairs)


def estimate_u(vectors: Counter[Vector], start: ModelParameters) -> dict[str, dict[str, float]]:
    """u per level from random pairs, which are non-matches but for a negligible few.

    A level random pairs never reach (two strangers sharing a national id) gets the
    shipped u spread over the pairs seen, floored at `U_FLOOR`.
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for vector, count in vectors.items():
        for attribute, level in vector:
            if level != "missing":
                counts[attribute][level] += count
    u: dict[str, dict[str, float]] = {}
    for attribute, table in start.levels.items():
        total = sum(counts[attribute].values())
        u[attribute] = {
            level: max(U_FLOOR, (counts[attribute][level] + default_u) / (total + 1))
            for level, (_, default_u) in table.items()
        }
    return u


def _posterior(
    vector: Vector,
    m: dict[str, dict[str, float]],
    u: dict[str, dict[str, float]],
    prior: float,
    ignore: str | None = None,
) -> float:
    """The chance that a pair with this comparison vector is a match. "missing" carries
    no information, nor does the comparison a session's blocking agrees on."""
    log_odds = math.log(prior / (1 - prior))
    for attribute, level in vector:
        if level != "missing" and attribute != ignore:
            log_odds += math.log(m[attribute][level] / u[attribute][level])
    return 1 / (1 + math.exp(-max(-700.0, min(700.0, log_odds))))


def expectation_maximisation(
    vectors: Counter[Vector],
    m_start: dict[str, dict[str, float]],
    u: dict[str, dict[str, float]],
    prior_start: float,
    *,
    ignore: str | None = None,
    fit_m: bool = True,
    max_iterations: int = 200,
    tolerance: float = 1e-6,
) -> tuple[float, dict[str, dict[str, float]], float, int, bool]:
    """m per level and the share of matches among the pairs, with u held fixed (the
    classic two-class EM with both free settles on whatever splits blocked pairs best,
    which is not always identity); with `fit_m` off, the share of matches alone.
    Returns (share of matches, m, expected number of matches, iterations, converged)."""
    m = {a: dict(t) for a, t in m_start.items()}
    prior = prior_start
    total = sum(vectors.values())
    matches = 0.0
    iterations, converged = 0, False
    for iterations in range(1, max_iterations + 1):  # noqa: B007
        m_counts: dict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        matches = 0.0
        for vector, count in vectors.items():
            p = _posterior(vector, m, u, prior, ignore) * count
            matches += p
            if fit_m:
                for attribute, level in vector:
                    if level != "missing" and attribute != ignore:
                        m_counts[attribute][level] += p
        new_prior = min(max(matches / total, 1e-9), 1 - 1e-9)
        change = abs(new_prior - prior)
        for attribute, table in m.items():
            m_total = sum(m_counts[attribute].values())
            if not m_total:
                continue
            for level, old in table.items():
                new = (m_counts[attribute][level] + M_PSEUDO_PAIRS * m_start[attribute][level]) / (
                    m_total + M_PSEUDO_PAIRS
                )
                change = max(change, abs(new - old))
                table[level] = new
        prior = new_prior
        if change < tolerance:
            converged = True
            break
    return prior, m, matches, iterations, converged


def train(
    features: Sequence[MatchFeatures],
    *,
    version: str,
    block_cap: int,
    max_pairs: int = 2_000_000,
    random_sample: int | None = None,
) -> tuple[ModelParameters, TrainingReport]:
    """Parameters estimated from `features`, starting from the shipped defaults."""
    if len(features) < MIN_RECORDS:
        raise ValueError(
            f"at least {MIN_RECORDS:,} records are needed to train, got {len(features):,}"
        )
    n = len(features)
    tables, average, rare = name_frequencies(features)
    with_names = ModelParameters(
        version=version, term_frequencies=tables, average_u=average, rare=rare, records=n
    )
    # Comparisons use the registry's own names to tell typos from other names.
    known = FellegiSunterScorer(with_names).known_given
    # Two hundred random partners per record estimate u well; a million pairs is plenty.
    random_sample = random_sample or min(1_000_000, 200 * n)
    u = estimate_u(_vectors(features, random_pairs(n, random_sample), known), with_names)
    pairs = candidate_pairs(features, block_cap=block_cap, max_pairs=max_pairs)
    # Each pair is compared once; its vector counts in every session whose kind of key
    # brought it, and in the whole.
    vectors: Counter[Vector] = Counter()
    sessions: dict[str, Counter[Vector]] = defaultdict(Counter)
    for (i, j), kinds in pairs.items():
        vector = _vector(compare(features[i], features[j], known))
        vectors[vector] += 1
        for kind in kinds:
            sessions[kind][vector] += 1
    m_start = {a: {k: mu[0] for k, mu in t.items()} for a, t in DEFAULT_LEVELS.items()}
    # One EM per blocking key kind, each blind to the comparison its blocking agrees on,
    # as Splink trains: pairs found by a shared phone say nothing about phones. Each
    # comparison's m is the mean over the sessions that could estimate it.
    estimates: dict[str, list[dict[str, float]]] = defaultdict(list)
    iterations, converged = 0, True
    for kind, session in sorted(sessions.items()):
        ignore = SESSION_IGNORES[kind]
        _, m_kind, _, used, done = expectation_maximisation(session, m_start, u, 0.5, ignore=ignore)
        iterations, converged = max(iterations, used), converged and done
        for attribute, table in m_kind.items():
            if attribute != ignore:
                estimates[attribute].append(table)
    m = {
        attribute: (
            {k: math.fsum(t[k] for t in estimates[attribute]) / len(estimates[attribute])
             for k in table}
            if estimates[attribute]
            else dict(table)
        )
        for attribute, table in m_start.items()
    }  # fmt: skip
    # The prior of the model is that of any two records: the matches among the candidate
    # pairs, over all pairs. Scoring a candidate then conditions on the evidence that
    # made it one.
    matches = expectation_maximisation(vectors, m, u, 0.5, fit_m=False)[2] if vectors else 0.0
    prior = min(max(matches / (n * (n - 1) / 2), 1e-12), 0.5)
    parameters = ModelParameters(
        version=version,
        prior=prior,
        levels={a: {k: (m[a][k], u[a][k]) for k in t} for a, t in DEFAULT_LEVELS.items()},
        term_frequencies=tables,
        average_u=average,
        rare=rare,
        records=n,
    )
    report = TrainingReport(
        records=n,
        pairs=len(pairs),
        distinct_vectors=len(vectors),
        iterations=iterations,
        converged=converged,
        prior=prior,
    )
    return parameters, report
