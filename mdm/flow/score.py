"""Score: turn attribute comparisons into a match confidence.

The confidence is a Fellegi-Sunter posterior: each comparison level carries a Bayes factor
m/u (how much likelier that level is between records of one human than between two
different humans), multiplied with the prior odds of a candidate pair being a match.
The shipped parameters are priors that work on an empty registry; a trained model
replaces them behind the same `Scorer` seam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from mdm.flow.compare import Comparison, Similarity, compare, jaro_winkler
from mdm.flow.normalise import KNOWN_GIVEN_NAMES
from mdm.model.record import MatchFeatures


class ScoredComparison(NamedTuple):
    """A comparison with its weight; a named tuple for the reason `Comparison` is one."""

    attribute: str
    level: str
    similarity: float | None
    weight: float  # log2 Bayes factor of this level

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "attribute": self.attribute,
            "level": self.level,
            "weight": round(self.weight, 4),
        }
        if self.similarity is not None:
            data["similarity"] = self.similarity
        return data


class Score(NamedTuple):
    confidence: float
    name_similarity: float
    comparisons: tuple[ScoredComparison, ...]
    model: str

    def level(self, attribute: str) -> str:
        for c in self.comparisons:
            if c.attribute == attribute:
                return c.level
        return "missing"


class Scorer(Protocol):
    """The one seam every matcher goes through, online and in batch."""

    version: str

    def score(self, a: MatchFeatures, b: MatchFeatures) -> Score: ...


# (m, u) per attribute level, used until `mdm train` estimates them from the registry.
# "missing" is neutral (m = u). The pairs these describe are candidates brought by
# blocking, where sharing a family name or a phone is far commoner than between strangers.
DEFAULT_LEVELS: dict[str, dict[str, tuple[float, float]]] = {
    "name": {
        "exact": (0.78, 0.002),
        "nickname": (0.05, 0.0005),
        "typo": (0.08, 0.002),
        "family_changed": (0.03, 0.002),
        "initial": (0.01, 0.001),
        "family_only": (0.01, 0.005),
        "given_only": (0.005, 0.005),
        "given_mismatch": (0.02, 0.01),
        "relative": (0.01, 0.03),
        "differs": (0.025, 0.952),
    },
    "email": {"exact": (0.35, 0.0005), "differs": (0.65, 0.9995)},
    "phone": {"exact": (0.40, 0.0005), "differs": (0.60, 0.9995)},
    "birth_date": {
        "exact": (0.95, 0.0003),
        "transposed": (0.01, 0.0003),
        "off_by_one": (0.02, 0.0012),
        "differs": (0.02, 0.9984),
    },
    "national_id": {"exact": (0.98, 0.000001), "differs": (0.02, 0.999999)},
    "employee_id": {"exact": (0.97, 0.000001), "differs": (0.03, 0.999999)},
}
# Prior odds that a candidate brought by blocking is the same human.
DEFAULT_PRIOR = 1 / 1000
# Bounds of the term-frequency adjustment, in bits: a rare name is strong evidence, but
# never proof on its own; a very common one still counts for something.
TF_BONUS_MAX = 8.0
TF_PENALTY_MAX = 6.0


@dataclass(frozen=True)
class ModelParameters:
    """Everything a scorer needs; stored as JSON, one version per training run."""

    version: str = "default-2"
    prior: float = DEFAULT_PRIOR
    levels: dict[str, dict[str, tuple[float, float]]] = field(
        default_factory=lambda: DEFAULT_LEVELS
    )
    # "given" and "family": folded name -> share of records holding it (names seen at
    # least twice). A name absent from the table is rarer than `rare` of its part.
    term_frequencies: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per part: the chance that two random records share it (the sum of squared shares).
    average_u: dict[str, float] = field(default_factory=dict)
    rare: dict[str, float] = field(default_factory=dict)
    records: int = 0  # how many records the parameters were estimated from

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "prior": self.prior,
            "levels": {a: {k: list(mu) for k, mu in t.items()} for a, t in self.levels.items()},
            "term_frequencies": self.term_frequencies,
            "average_u": self.average_u,
            "rare": self.rare,
            "records": self.records,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelParameters:
        return cls(
            version=raw["version"],
            prior=raw["prior"],
            levels={
                a: {k: (float(mu[0]), float(mu[1])) for k, mu in t.items()}
                for a, t in raw["levels"].items()
            },
            term_frequencies=raw.get("term_frequencies") or {},
            average_u=raw.get("average_u") or {},
            rare=raw.get("rare") or {},
            records=raw.get("records") or 0,
        )


# A given name held by this many records of a trained registry is a name, not a typo.
KNOWN_NAME_RECORDS = 3


class FellegiSunterScorer:
    def __init__(self, parameters: ModelParameters | None = None) -> None:
        self.parameters = p = parameters or ModelParameters()
        self.version = p.version
        self._weights = {
            attribute: {level: math.log2(m / u) for level, (m, u) in table.items()}
            for attribute, table in p.levels.items()
        }
        self._prior_weight = math.log2(p.prior / (1 - p.prior))
        self._tf = {part: p.term_frequencies.get(part, {}) for part in ("given", "family")}
        known = set(KNOWN_GIVEN_NAMES)
        if p.records:
            floor = KNOWN_NAME_RECORDS / p.records
            known.update(n for n, share in self._tf["given"].items() if share >= floor)
        self.known_given = frozenset(known)

    @property
    def prior_weight(self) -> float:
        """The prior odds of a candidate pair, in bits."""
        return self._prior_weight

    def level_weight(self, attribute: str, level: str) -> float:
        """The weight of a comparison level before any term-frequency adjustment."""
        return self._weights.get(attribute, {}).get(level, 0.0)

    def tf_adjustment(self, value: str) -> float:
        """Bits added to a name level for how rare the agreeing names are."""
        given, _, family = value.partition("|")
        bits = 0.0
        for part, name in (("given", given), ("family", family)):
            average = self.parameters.average_u.get(part)
            if name and average:
                share = self._tf[part].get(name) or self.parameters.rare.get(part, average)
                bits += math.log2(average / share)
        return min(TF_BONUS_MAX, max(-TF_PENALTY_MAX, bits))

    def weight(self, comparison: Comparison) -> float:
        weight = self._weights[comparison.attribute].get(comparison.level, 0.0)
        if comparison.value is not None:
            weight += self.tf_adjustment(comparison.value)
        return weight

    def score(self, a: MatchFeatures, b: MatchFeatures, jw: Similarity = jaro_winkler) -> Score:
        comparisons = compare(a, b, self.known_given, jw)
        return self.score_comparisons(comparisons, comparisons[0].similarity or 0.0)

    def score_comparisons(self, comparisons: tuple[Comparison, ...], similarity: float) -> Score:
        """The score of comparisons already made: the one formula of every path."""
        scored = tuple(
            ScoredComparison(c.attribute, c.level, c.similarity, self.weight(c))
            for c in comparisons
        )
        total = self._prior_weight + math.fsum(c.weight for c in scored)
        return Score(
            confidence=_probability(total),
            name_similarity=similarity,
            comparisons=scored,
            model=self.version,
        )


def _probability(log2_odds: float) -> float:
    if log2_odds > 60:
        return 1.0
    if log2_odds < -60:
        return 0.0
    odds = 2.0**log2_odds
    return odds / (1 + odds)
