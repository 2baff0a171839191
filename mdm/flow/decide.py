"""Decide: apply the decision policy (DESIGN section 3) to the scored candidates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from mdm.flow.compare import AGREEING_LEVELS
from mdm.flow.score import Score, Scorer
from mdm.model.record import MatchFeatures

NON_NAME_ATTRIBUTES = ("email", "phone", "birth_date", "national_id", "employee_id")
MAX_REVIEW_PAIRS = 3
# Name levels that never link without more evidence: a married name, an initial, a record
# with half a name (an exact key needs the model's confidence; a birthday is not enough).
PARTLY_AGREEING_NAMES = frozenset(
    ("family_changed", "given_mismatch", "initial", "family_only", "given_only")
)
# Name levels that never link automatically at all: different given names.
DISAGREEING_NAMES = frozenset(("relative", "differs"))


class Outcome(StrEnum):
    LINK = "link"
    CREATE = "create"
    REVIEW = "review"


class Rule(StrEnum):
    KNOWN_RECORD = "known_record"
    PERSON_ID_HINT = "person_id_hint"
    EXACT_KEY = "exact_key"
    EXACT_KEY_CONFLICT = "exact_key_conflict"
    PROBABILISTIC = "probabilistic"
    NO_CANDIDATE = "no_candidate"


@dataclass(frozen=True, slots=True)
class Thresholds:
    auto_merge: float = 0.95
    review: float = 0.70


@dataclass(frozen=True, slots=True)
class Candidate:
    """A live person the record might belong to, with the record scored against it."""

    person_id: UUID
    score: Score
    # Exact keys the record shares with this person: "person_id", "email", "nid", "emp".
    exact_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    rule: Rule
    confidence: float
    person_id: UUID | None = None  # the person to link to
    review_with: tuple[UUID, ...] = ()
    matched_on: tuple[str, ...] = ()
    guards: tuple[str, ...] = ()
    best: Candidate | None = None
    candidates: tuple[Candidate, ...] = field(default=())

    def explanation(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.rule.value,
            "outcome": self.outcome.value,
            "confidence": round(self.confidence, 6),
            "matched_on": list(self.matched_on),
            "guards": list(self.guards),
        }
        if self.best is not None:
            data["model"] = self.best.score.model
            data["candidate"] = str(self.best.person_id)
            data["comparisons"] = [c.as_json() for c in self.best.score.comparisons]
        return data


_KEY_ATTRIBUTE = {"email": "email", "nid": "national_id", "emp": "employee_id"}


def evidence_conflicts(score: Score) -> list[str]:
    """Attributes whose disagreement forbids an automatic merge whatever the confidence."""
    guards = []
    if score.level("birth_date") == "differs":
        guards.append("conflicting_birth_date")
    if score.level("national_id") == "differs":
        guards.append("conflicting_national_id")
    return guards


def agreeing_attributes(score: Score) -> tuple[str, ...]:
    return tuple(
        c.attribute
        for c in score.comparisons
        if c.attribute in NON_NAME_ATTRIBUTES and c.level in AGREEING_LEVELS
    )


def decide(candidates: Sequence[Candidate], thresholds: Thresholds) -> Decision:
    """Link, create or review, with the rule and the guards that led there."""
    exact = [c for c in candidates if c.exact_keys]
    if exact:
        return _decide_exact(exact, thresholds)
    ranked = sorted(candidates, key=lambda c: c.score.confidence, reverse=True)
    if not ranked:
        return Decision(Outcome.CREATE, Rule.NO_CANDIDATE, 0.0)
    best = ranked[0]
    confidence = best.score.confidence
    agreeing = agreeing_attributes(best.score)
    guards = evidence_conflicts(best.score)
    if not agreeing:
        guards.append("name_only")
    if best.score.level("name") in DISAGREEING_NAMES:
        # Twins, parent and child, spouses: one phone, one birthday, two people.
        guards.append("names_disagree")
    elif (
        agreeing
        and set(agreeing) <= {"birth_date"}
        and best.score.level("name") in PARTLY_AGREEING_NAMES
    ):
        # A changed family name and a shared birthday is also what two namesakes look like:
        # a married name is confirmed by a shared contact point or identifier.
        guards.append("name_partly_agrees_birth_date_only")
    # Pairs of namesakes sharing a birthday grow with the square of the registry, married
    # names only with its size: on a million generator persons, 3.7% of the review items
    # asking about a given name and a birthday under another family name were one human
    # (27% at 100k). Without a shared contact point or identifier, no steward is asked.
    unqueued = (
        "name_partly_agrees_birth_date_only" in guards
        and best.score.level("name") == "family_changed"
    )
    matched_on = (
        ("name", *agreeing) if best.score.name_similarity >= thresholds.review else agreeing
    )
    if confidence >= thresholds.auto_merge and not guards:
        return Decision(
            Outcome.LINK,
            Rule.PROBABILISTIC,
            confidence,
            best.person_id,
            matched_on=matched_on,
            best=best,
            candidates=tuple(ranked),
        )
    # A name alone is the commonest near miss of a large registry: a steward is asked
    # about one only when the model would have merged it but for the guard.
    review_from = thresholds.auto_merge if "name_only" in guards else thresholds.review
    if confidence >= review_from and not unqueued:
        review_with = tuple(
            c.person_id
            for c in ranked[:MAX_REVIEW_PAIRS]
            if c.score.confidence >= thresholds.review
        )
        return Decision(
            Outcome.REVIEW,
            Rule.PROBABILISTIC,
            confidence,
            review_with=review_with,
            matched_on=matched_on,
            guards=tuple(guards),
            best=best,
            candidates=tuple(ranked),
        )
    return Decision(
        Outcome.CREATE,
        Rule.PROBABILISTIC,
        confidence,
        matched_on=matched_on,
        guards=tuple(guards),
        best=best,
        candidates=tuple(ranked),
    )


def _exact_guards(candidate: Candidate, thresholds: Thresholds) -> list[str]:
    """Why a shared exact key is not enough: a relative's shared mailbox, or a name that
    agrees only in part without the rest of the evidence to carry it."""
    guards = evidence_conflicts(candidate.score)
    level = candidate.score.level("name")
    if level in DISAGREEING_NAMES:
        guards.append("names_disagree")
    elif level in PARTLY_AGREEING_NAMES and candidate.score.confidence < thresholds.auto_merge:
        guards.append("names_partly_agree")
    return guards


def _decide_exact(exact: list[Candidate], thresholds: Thresholds) -> Decision:
    hinted = [c for c in exact if "person_id" in c.exact_keys]
    if hinted:
        # The caller named the person: that is the only candidate that counts.
        exact = hinted
    ranked = sorted(exact, key=lambda c: -c.score.confidence)
    # A shared key (a family mailbox) can point at several persons: the one whose name and
    # evidence agree is the match; if several or none agree, a steward decides.
    consistent = [c for c in ranked if not _exact_guards(c, thresholds)]
    persons = {c.person_id for c in consistent}
    rule = Rule.PERSON_ID_HINT if hinted else Rule.EXACT_KEY
    if len(persons) == 1:
        best = consistent[0]
        return Decision(
            Outcome.LINK,
            rule,
            1.0,
            best.person_id,
            matched_on=tuple(_KEY_ATTRIBUTE.get(k, k) for k in best.exact_keys),
            best=best,
            candidates=tuple(ranked),
        )
    if len(persons) > 1:
        best = consistent[0]
        return Decision(
            Outcome.REVIEW,
            Rule.EXACT_KEY_CONFLICT,
            min(best.score.confidence, thresholds.auto_merge - 1e-6),
            review_with=tuple(c.person_id for c in consistent[:MAX_REVIEW_PAIRS]),
            matched_on=tuple(_KEY_ATTRIBUTE.get(k, k) for k in best.exact_keys),
            guards=("exact_keys_point_to_different_persons",),
            best=best,
            candidates=tuple(ranked),
        )
    best = ranked[0]
    # A shared mailbox or a data error: a steward decides, never an automatic merge.
    return Decision(
        Outcome.REVIEW,
        rule,
        min(best.score.confidence, thresholds.auto_merge - 1e-6),
        review_with=(best.person_id,),
        matched_on=tuple(_KEY_ATTRIBUTE.get(k, k) for k in best.exact_keys),
        guards=tuple(_exact_guards(best, thresholds)),
        best=best,
        candidates=tuple(ranked),
    )


def bridged(
    candidates: Sequence[Candidate], linked_to: UUID, thresholds: Thresholds
) -> list[Candidate]:
    """The other persons this record would link to on its own.

    A record that links to two persons is the evidence that they are one human: records
    arrive in any order, and the one that ties a work address to a personal phone often
    comes last. Load order must not decide who is merged (Senzing's sequence neutrality).
    A caller's `person_id` hint names one person and bridges nothing.
    """
    return [
        c
        for c in candidates
        if c.person_id != linked_to
        and "person_id" not in c.exact_keys
        and decide([c], thresholds).outcome == Outcome.LINK
    ]


def merge_conflicts(
    a: Sequence[MatchFeatures], b: Sequence[MatchFeatures], scorer: Scorer
) -> list[str]:
    """Why the persons holding records `a` and `b` must not become one, whatever links
    them: two birth dates, two national ids, two employee ids from one system, or names
    that belong to two members of a household. Every pair of records is checked, so a
    merge never rests on one neighbour alone.

    Two employee ids of one system with the same national id are one human's two
    employments (a rehire is given a new number), not two humans."""
    guards: set[str] = set()
    for x in a:
        for y in b:
            score = scorer.score(x, y)
            guards.update(evidence_conflicts(score))
            if score.level("name") in DISAGREEING_NAMES:
                guards.add("names_disagree")
            if (
                x.source == y.source
                and x.employee_id
                and y.employee_id
                and x.employee_id != y.employee_id
                and score.level("national_id") != "exact"
            ):
                guards.add("conflicting_employee_id")
    return sorted(guards)
