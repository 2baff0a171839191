"""The match model: name levels, term-frequency adjustments, parameters as data."""

from __future__ import annotations

import uuid

import pytest

from mdm.flow.compare import compare_names
from mdm.flow.decide import Candidate, Outcome, Thresholds, decide
from mdm.flow.normalise import KNOWN_GIVEN_NAMES
from mdm.flow.score import TF_BONUS_MAX, FellegiSunterScorer, ModelParameters
from tests.factories import decide_pair, features


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        (("Ana", "García"), ("ANA", "garcia"), "exact"),
        (("Ana", "García"), ("García", "Ana"), "exact"),
        (("Mary Ann", "Lee"), ("Mary", "Lee"), "exact"),
        (("Bill", "Smith"), ("William", "Smith"), "nickname"),
        (("Jonathan", "Smith"), ("Jonahtan", "Smith"), "typo"),
        (("Yan", "Liang"), ("Yzn", "Liang"), "typo"),
        (("Ana", "García López"), ("Ana", "García"), "typo"),
        (("Kevin", "Richardson"), ("Kevin", "Richatdson"), "typo"),
        (("Jennifer", "Dunmore"), ("Jennifer", "Langer"), "family_changed"),
        (("J.", "Smith"), ("John", "Smith"), "initial"),
        (("John", "Smith"), ("Mary", "Smith"), "relative"),
        # A garbled given name is no known name: the rest of the evidence must tell.
        (("Sarah", "Wright"), ("Swra", "Wright"), "given_mismatch"),
        # Two real names a letter apart are two people, not a typo.
        (("Michael", "Brown"), ("Michelle", "Brown"), "relative"),
        (("Robert", "Jones"), ("Roberta", "Jones"), "relative"),
        (("Maria", "Garcia"), ("Xiomara", "Quintanilla"), "differs"),
    ],
)
def test_name_levels(a: tuple[str, str], b: tuple[str, str], level: str) -> None:
    fa = features(given_name=a[0], family_name=a[1])
    fb = features(given_name=b[0], family_name=b[1])
    assert compare_names(fa, fb, KNOWN_GIVEN_NAMES).level == level
    assert compare_names(fb, fa, KNOWN_GIVEN_NAMES).level == level


def _trained() -> FellegiSunterScorer:
    return FellegiSunterScorer(
        ModelParameters(
            version="t-1",
            term_frequencies={
                "given": {"maria": 0.03, "xiomara": 0.00002},
                "family": {"garcia": 0.02, "quintanilla": 0.00003},
            },
            average_u={"given": 0.004, "family": 0.001},
            rare={"given": 0.00001, "family": 0.00001},
            records=100_000,
        )
    )


def test_a_rare_name_counts_for_more_than_a_common_one() -> None:
    scorer = _trained()
    common = scorer.score(
        features(given_name="Maria", family_name="Garcia"),
        features(given_name="María", family_name="García"),
    )
    rare = scorer.score(
        features(given_name="Xiomara", family_name="Quintanilla"),
        features(given_name="Xiomara", family_name="Quintanilla"),
    )
    assert common.level("name") == rare.level("name") == "exact"
    assert rare.comparisons[0].weight > common.comparisons[0].weight + 8
    untrained = FellegiSunterScorer().score(
        features(given_name="Xiomara", family_name="Quintanilla"),
        features(given_name="Xiomara", family_name="Quintanilla"),
    )
    # The adjustment is bounded: a rare name is evidence, never proof.
    assert rare.comparisons[0].weight <= untrained.comparisons[0].weight + TF_BONUS_MAX


def test_a_name_unseen_in_training_counts_as_rare() -> None:
    scorer = _trained()
    unseen = scorer.tf_adjustment("zebulon|okonkwo")
    assert unseen == scorer.tf_adjustment("xiomara|quintanilla") or unseen == TF_BONUS_MAX
    assert unseen > 0


def test_frequent_given_names_of_the_registry_are_known_names() -> None:
    scorer = _trained()
    assert "maria" in scorer.known_given
    assert "xiomara" not in scorer.known_given  # two records in 100,000: could be a typo


def test_parameters_round_trip_as_json() -> None:
    parameters = _trained().parameters
    assert ModelParameters.from_json(parameters.as_json()) == parameters


def test_a_married_name_with_shared_mailbox_and_phone_links() -> None:
    d = decide_pair(
        {"given_name": "Jennifer", "family_name": "Dunmore", "phone": "+17709221116"},
        {"given_name": "Jennifer", "family_name": "Langer", "phone": "+17709221116"},
        exact=("email",),
    )
    assert d.outcome == Outcome.LINK


def test_a_married_name_with_a_shared_mailbox_alone_goes_to_review() -> None:
    d = decide_pair(
        {"given_name": "Jennifer", "family_name": "Dunmore", "email": "jd@example.com"},
        {"given_name": "Jennifer", "family_name": "Langer", "email": "jd@example.com"},
        exact=("email",),
    )
    assert d.outcome == Outcome.REVIEW
    assert "names_partly_agree" in d.guards


def test_a_changed_family_name_and_a_shared_birthday_never_auto_merge() -> None:
    d = decide_pair(
        {"given_name": "Amanda", "family_name": "Selell", "birth_date": "1992-02-24",
         "email": "a1@example.com"},
        {"given_name": "Amanda", "family_name": "Bennett", "birth_date": "1992-02-24",
         "email": "a2@example.com"},
    )  # fmt: skip
    assert d.outcome != Outcome.LINK
    assert "name_partly_agrees_birth_date_only" in d.guards


def test_a_given_name_and_a_birthday_under_another_family_name_are_not_queued() -> None:
    # At a million persons such pairs are namesakes 25 times out of 26.
    d = decide_pair(
        {"given_name": "Amanda", "family_name": "Selell", "birth_date": "1992-02-24",
         "email": "a1@example.com"},
        {"given_name": "Amanda", "family_name": "Bennett", "birth_date": "1992-02-24",
         "email": "a2@example.com"},
    )  # fmt: skip
    assert d.best is not None and d.best.score.level("name") == "family_changed"
    assert d.confidence >= Thresholds().review
    assert d.outcome == Outcome.CREATE
    assert d.review_with == ()
    assert "name_partly_agrees_birth_date_only" in d.guards


def test_a_birthday_and_a_family_name_with_another_given_name_still_go_to_review() -> None:
    # A garbled given name: one family, one birthday, rarely two strangers.
    d = decide_pair(
        {"given_name": "Jxqwy", "family_name": "Selell", "birth_date": "1992-02-24",
         "email": "j1@example.com"},
        {"given_name": "Jennifer", "family_name": "Selell", "birth_date": "1992-02-24",
         "email": "j2@example.com"},
    )  # fmt: skip
    assert d.best is not None and d.best.score.level("name") == "given_mismatch"
    assert d.outcome == Outcome.REVIEW, d.explanation()


def test_relatives_sharing_a_phone_and_a_birthday_are_not_merged() -> None:
    # Twins: one family name, one birthday, one landline.
    d = decide_pair(
        {"given_name": "Michael", "family_name": "Brown", "birth_date": "1990-01-01",
         "phone": "+14155550132", "email": None},
        {"given_name": "Michelle", "family_name": "Brown", "birth_date": "1990-01-01",
         "phone": "+14155550132", "email": None},
    )  # fmt: skip
    assert d.outcome != Outcome.LINK


def test_a_garbled_given_name_with_mailbox_and_phone_links() -> None:
    d = decide_pair(
        {"given_name": "Greg", "family_name": "Olszski", "email": "olszskig@gmail.com",
         "phone": "+491778555200"},
        {"given_name": "Grzegorz", "family_name": "Olszski", "email": "olszskig@gmail.com",
         "phone": "+491778555200"},
        exact=("email",),
    )  # fmt: skip
    assert d.outcome == Outcome.LINK


def test_a_name_alone_is_reviewed_only_when_it_would_have_merged() -> None:
    rare = FellegiSunterScorer(
        ModelParameters(
            version="t",
            term_frequencies={"given": {}, "family": {}},
            average_u={"given": 0.004, "family": 0.001},
            rare={"given": 1e-5, "family": 1e-5},
            records=100_000,
        )
    )
    a = features(given_name="Xiomara", family_name="Quintanilla", email="x@a.com")
    b = features(given_name="Xiomara", family_name="Quintanilla", email="x@b.com")
    strong = decide([Candidate(uuid.uuid4(), rare.score(a, b))], Thresholds())
    assert strong.confidence >= 0.95
    assert (strong.outcome, strong.guards) == (Outcome.REVIEW, ("name_only",))
    # The same pair under a bar between review and auto-merge: a name alone, not asked.
    mid = decide(
        [Candidate(uuid.uuid4(), rare.score(a, b))],
        Thresholds(auto_merge=min(0.999999, strong.confidence + 1e-9), review=0.5),
    )
    assert mid.outcome == Outcome.CREATE
