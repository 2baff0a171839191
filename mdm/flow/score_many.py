"""Score many compared pairs at once: the batch dedupe's confidences.

The confidence of every pair comes from array look-ups of the weights of its levels (a
few ulps from the one formula's `math.fsum`); a pair the policy decides gets its `Score`
from the one formula itself, `FellegiSunterScorer.score_comparisons`, made once per
distinct set of levels.
"""

from __future__ import annotations

import math

import numpy as np

from mdm.flow.columns import FeatureColumns
from mdm.flow.compare import NAME_LEVELS
from mdm.flow.compare_many import (
    ATTRIBUTES,
    BIRTH_LEVELS,
    SET_LEVELS,
    PairComparisons,
    comparisons_of,
)
from mdm.flow.score import (
    TF_BONUS_MAX,
    TF_PENALTY_MAX,
    FellegiSunterScorer,
    ModelParameters,
    Score,
)


class ComparisonWeights:
    """A scorer's weights as arrays over level codes: the confidence of many pairs."""

    def __init__(self, scorer: FellegiSunterScorer, columns: FeatureColumns) -> None:
        tables = {
            "name": NAME_LEVELS,
            "email": SET_LEVELS,
            "phone": SET_LEVELS,
            "birth_date": BIRTH_LEVELS,
            "national_id": SET_LEVELS,
            "employee_id": SET_LEVELS,
        }
        self.levels = {
            attribute: np.array(
                [scorer.level_weight(attribute, level) for level in names], dtype=np.float64
            )
            for attribute, names in tables.items()
        }
        self.prior = scorer.prior_weight
        parameters = scorer.parameters
        # One more entry, 0.0, read for "no name" (-1).
        self.tf = {
            part: np.array(
                [*(_tf_bits(parameters, part, name) for name in columns.names), 0.0],
                dtype=np.float64,
            )
            for part in ("given", "family")
        }

    def confidences(self, pairs: PairComparisons) -> np.ndarray:
        """The confidence of every pair (the scalar formula's, to a few ulps)."""
        given, family = pairs.tf_given, pairs.tf_family
        bits = self.tf["given"][given] + self.tf["family"][family]
        adjust = np.where((given >= 0) | (family >= 0),
                          np.clip(bits, -TF_PENALTY_MAX, TF_BONUS_MAX), 0.0)  # fmt: skip
        total = self.prior + (self.levels["name"][pairs.name] + adjust)
        for attribute in ATTRIBUTES[1:]:
            total = total + self.levels[attribute][getattr(pairs, attribute)]
        with np.errstate(over="ignore"):
            odds = np.exp2(np.clip(total, -60.0, 60.0))
        return np.where(total > 60, 1.0, np.where(total < -60, 0.0, odds / (1.0 + odds)))


def _tf_bits(parameters: ModelParameters, part: str, name: str) -> float:
    """FellegiSunterScorer.tf_adjustment's bits for one part's name."""
    average = parameters.average_u.get(part)
    if not name or not average:
        return 0.0
    share = parameters.term_frequencies.get(part, {}).get(name) or parameters.rare.get(
        part, average
    )
    return math.log2(average / share)


# What a pair's confidence depends on, in PairComparisons: its levels; with the bits its
# agreeing names add (ComparisonWeights.tf), the key of its score.
SCORE_LEVELS = ("name", "email", "phone", "birth_date", "national_id", "employee_id")
ScoreKey = tuple[float, ...]


def score_keys(
    pairs: PairComparisons, chosen: np.ndarray, weights: ComparisonWeights
) -> list[ScoreKey]:
    """The key of each chosen pair's score: its levels and the bits of its agreeing
    names, given name and family name apart (summed and bounded as the one formula does)."""
    parts = [getattr(pairs, name)[chosen].tolist() for name in SCORE_LEVELS]
    parts.append(weights.tf["given"][pairs.tf_given[chosen]].tolist())
    parts.append(weights.tf["family"][pairs.tf_family[chosen]].tolist())
    return list(zip(*parts, strict=True))


class PairScores:
    """Scores of compared pairs by the one formula (`score_comparisons`), made once per
    distinct key (`score_keys`): a pair's confidence depends on its levels and the rarity
    of its agreeing names alone; its name similarity, which only explains, is its own."""

    def __init__(self, scorer: FellegiSunterScorer, columns: FeatureColumns) -> None:
        self.scorer, self.columns = scorer, columns
        self._made: dict[ScoreKey, Score] = {}

    def score(self, key: ScoreKey, pairs: PairComparisons, k: int, similarity: float) -> Score:
        made = self._made.get(key)
        if made is None:
            comparisons = comparisons_of(self.columns, pairs, k, similarity)
            made = self.scorer.score_comparisons(comparisons, comparisons[0].similarity or 0.0)
            self._made[key] = made
            return made
        rounded = round(similarity, 6)
        name = made.comparisons[0]._replace(similarity=rounded)
        return made._replace(name_similarity=rounded or 0.0,
                             comparisons=(name, *made.comparisons[1:]))  # fmt: skip
