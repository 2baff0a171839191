"""Score: turn attribute comparisons into a match confidence.

The confidence is a Fellegi-Sunter posterior: each comparison level carries a Bayes factor
m/u (how much likelier that level is between records of one human than between two
different humans), multiplied with the prior odds of a candidate pair being a match.
The shipped parameters are priors that work on an empty registry; a trained model
replaces them behind the same `Scorer` seam.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from mdm.flow.compare import Comparison, compare, name_similarity
from mdm.model.record import MatchFeatures


@dataclass(frozen=True, slots=True)
class ScoredComparison:
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


@dataclass(frozen=True, slots=True)
class Score:
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


# (m, u) per attribute level. "missing" is neutral (m = u).
DEFAULT_LEVELS: dict[str, dict[str, tuple[float, float]]] = {
    "name": {
        "exact": (0.80, 0.002),
        "nickname": (0.06, 0.001),
        "close": (0.07, 0.012),
        "similar": (0.04, 0.05),
        "differs": (0.03, 0.935),
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


class FellegiSunterScorer:
    def __init__(
        self,
        levels: dict[str, dict[str, tuple[float, float]]] | None = None,
        prior: float = DEFAULT_PRIOR,
        version: str = "default-1",
    ) -> None:
        self.version = version
        levels = levels or DEFAULT_LEVELS
        self._weights = {
            attribute: {level: math.log2(m / u) for level, (m, u) in table.items()}
            for attribute, table in levels.items()
        }
        self._prior_weight = math.log2(prior / (1 - prior))

    def weight(self, comparison: Comparison) -> float:
        return self._weights[comparison.attribute].get(comparison.level, 0.0)

    def score(self, a: MatchFeatures, b: MatchFeatures) -> Score:
        scored = tuple(
            ScoredComparison(c.attribute, c.level, c.similarity, self.weight(c))
            for c in compare(a, b)
        )
        total = self._prior_weight + math.fsum(c.weight for c in scored)
        similarity = (
            scored[0].similarity if scored[0].similarity is not None else name_similarity(a, b)
        )
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
