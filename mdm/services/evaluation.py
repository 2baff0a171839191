"""Feedback: how good the registry's decisions are, measured against labels.

Two kinds of label:

- review items a steward resolved: `merge` says the pair was one human, `distinct` that it
  was not. They measure the review band: its share of true matches, per score band, which
  is also a check of the confidence's calibration.
- a labelled file of record pairs (CSV with the header
  `source_a,source_id_a,source_b,source_id_b,match`; match is 1/0, true/false, yes/no or
  match/distinct), from a clerical review or a known truth. Each pair is looked up where
  the registry put it: in one person (auto-merged), in two persons with an open review
  item between them (the review band), or apart. Precision and recall of the auto-merges
  and of the review band follow.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from mdm.services.context import Registry

LABEL_COLUMNS = ("source_a", "source_id_a", "source_b", "source_id_b", "match")
_YES = frozenset(("1", "true", "yes", "y", "match", "same"))
_NO = frozenset(("0", "false", "no", "n", "distinct", "different"))
# Score bands of the review queue: the lower threshold up to the auto-merge threshold,
# and above it the pairs a guard kept from merging.
BANDS = ((0.70, 0.80), (0.80, 0.90), (0.90, 0.95), (0.95, 1.0))

RecordKey = tuple[str, str]


class InvalidLabels(ValueError):
    """A labelled file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class LabelledPair:
    a: RecordKey
    b: RecordKey
    match: bool


def read_labels(path: Path) -> list[LabelledPair]:
    """The labelled pairs of a CSV file; `InvalidLabels` names the first bad line."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidLabels(f"{path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise InvalidLabels(f"{path}, line 1: missing column(s) {', '.join(missing)}")
        pairs = []
        for row in reader:
            line = reader.line_num
            values = {c: (row.get(c) or "").strip() for c in LABEL_COLUMNS}
            empty = [c for c in LABEL_COLUMNS if not values[c]]
            if empty:
                raise InvalidLabels(f"{path}, line {line}: {', '.join(empty)} is empty")
            verdict = values["match"].lower()
            if verdict not in _YES | _NO:
                raise InvalidLabels(
                    f"{path}, line {line}: match is {values['match']!r}; "
                    "expected 1/0, true/false, yes/no or match/distinct"
                )
            pairs.append(
                LabelledPair(
                    (values["source_a"], values["source_id_a"]),
                    (values["source_b"], values["source_id_b"]),
                    verdict in _YES,
                )
            )
    return pairs


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class PairFigures:
    """Where the registry put the labelled pairs."""

    labelled: int
    matches: int
    unknown: int  # pairs naming a record the registry does not hold
    linked: int  # pairs in one person
    linked_true: int
    in_review: int  # pairs in two persons with an open review item between them
    in_review_true: int

    @property
    def precision(self) -> float | None:
        """Of the pairs merged, the share that are one human."""
        return _share(self.linked_true, self.linked)

    @property
    def recall(self) -> float | None:
        """Of the pairs that are one human, the share merged."""
        return _share(self.linked_true, self.matches)

    @property
    def review_true_share(self) -> float | None:
        return _share(self.in_review_true, self.in_review)

    @property
    def recall_with_review(self) -> float | None:
        """Of the pairs that are one human, the share merged or put before a steward."""
        return _share(self.linked_true + self.in_review_true, self.matches)

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "precision": self.precision,
            "recall": self.recall,
            "review_true_share": self.review_true_share,
            "recall_with_review": self.recall_with_review,
        }


@dataclass(frozen=True, slots=True)
class ScoreBand:
    low: float
    high: float
    merged: int = 0
    distinct: int = 0
    score_sum: float = 0.0

    @property
    def resolved(self) -> int:
        return self.merged + self.distinct

    @property
    def true_share(self) -> float | None:
        return _share(self.merged, self.resolved)

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.resolved if self.resolved else None

    def as_json(self) -> dict[str, Any]:
        return {
            "low": self.low,
            "high": self.high,
            "resolved": self.resolved,
            "merged": self.merged,
            "distinct": self.distinct,
            "true_share": self.true_share,
            "mean_score": self.mean_score,
        }


@dataclass(frozen=True, slots=True)
class StewardFigures:
    """The review items stewards resolved, by score band."""

    bands: tuple[ScoreBand, ...]
    open_items: int

    @property
    def merged(self) -> int:
        return sum(b.merged for b in self.bands)

    @property
    def distinct(self) -> int:
        return sum(b.distinct for b in self.bands)

    @property
    def true_share(self) -> float | None:
        return _share(self.merged, self.merged + self.distinct)

    def as_json(self) -> dict[str, Any]:
        return {
            "open_items": self.open_items,
            "merged": self.merged,
            "distinct": self.distinct,
            "true_share": self.true_share,
            "bands": [b.as_json() for b in self.bands],
        }


@dataclass(frozen=True, slots=True)
class Evaluation:
    model: str
    stewards: StewardFigures
    pairs: PairFigures | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "stewards": self.stewards.as_json(),
            "pairs": self.pairs.as_json() if self.pairs else None,
            "notes": self.notes,
        }


def steward_figures(resolved: Iterable[tuple[float, str]], open_items: int) -> StewardFigures:
    """Figures from (score, decision) of the review items stewards resolved."""
    bands = [ScoreBand(low, high) for low, high in BANDS]
    for score, decision in resolved:
        i = next((k for k, (_, high) in enumerate(BANDS) if score < high), len(BANDS) - 1)
        band = bands[i]
        bands[i] = ScoreBand(
            band.low,
            band.high,
            band.merged + (decision == "merge"),
            band.distinct + (decision == "distinct"),
            band.score_sum + score,
        )
    return StewardFigures(tuple(bands), open_items)


def pair_figures(
    labels: Sequence[LabelledPair],
    person_of: dict[RecordKey, UUID],
    open_reviews: set[frozenset[UUID]],
) -> PairFigures:
    """Where each labelled pair is: one person, two persons under review, or apart."""
    unknown = linked = linked_true = in_review = in_review_true = matches = 0
    for pair in labels:
        a, b = person_of.get(pair.a), person_of.get(pair.b)
        if a is None or b is None:
            unknown += 1
            continue
        matches += pair.match
        if a == b:
            linked += 1
            linked_true += pair.match
        elif frozenset((a, b)) in open_reviews:
            in_review += 1
            in_review_true += pair.match
    return PairFigures(
        len(labels), matches, unknown, linked, linked_true, in_review, in_review_true
    )


def evaluate(registry: Registry, labels: Sequence[LabelledPair] | None = None) -> Evaluation:
    """Measure the registry's decisions against stewards' decisions and labelled pairs."""
    with registry.database.uow() as uow:
        repo = uow.registry
        resolved = repo.resolved_match_reviews()
        open_items = repo.open_review_pairs()
        person_of: dict[RecordKey, UUID] = {}
        if labels:
            wanted = sorted({key for p in labels for key in (p.a, p.b)})
            for start in range(0, len(wanted), 5_000):
                known, _, _ = repo.lookup(wanted[start : start + 5_000], (), 1)
                person_of.update(known)
    notes = []
    if not resolved:
        notes.append("no review item has been resolved by a steward yet")
    open_pairs = {frozenset(pair) for pair in open_items}
    pairs = pair_figures(labels, person_of, open_pairs) if labels is not None else None
    if pairs is not None and pairs.unknown:
        notes.append(f"{pairs.unknown:,} labelled pairs name a record the registry does not hold")
    return Evaluation(
        model=registry.scorer.version,
        stewards=steward_figures(resolved, len(open_items)),
        pairs=pairs,
        notes=notes,
    )
