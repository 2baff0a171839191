"""One scorer: the column-wise comparisons of the batch dedupe give, pair for pair, the
levels and the confidence of the one-record path."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm.flow.columns import (
    _PER_RECORD,
    FeatureColumns,
    _padded,
)
from mdm.flow.compare import compare, name_similarity
from mdm.flow.compare_many import (
    _intersect,
    compare_pairs,
    comparisons_of,
    name_similarities,
)
from mdm.flow.normalise import given_name_keys
from mdm.flow.score import FellegiSunterScorer
from mdm.flow.score_many import (
    ComparisonWeights,
    PairScores,
    score_keys,
)
from mdm.model.record import MatchFeatures
from tests.unit.pool import SCORERS, _pool

# Names that reach every branch: nicknames, two known names a letter apart, typos,
# initials, double surnames, a given name that is also a family name.
GIVEN = ["bill", "william", "will", "robert", "roberta", "rbert", "j", "john", "jon",
         "maria", "mari", "maria jose", "smith", "anna", "ana", "x"]  # fmt: skip
FAMILY = ["smith", "smyth", "garcia", "garcia lopez", "lopez garcia", "lopez", "john",
          "jones", "robert", "o brien", "obrien", "s"]  # fmt: skip
DATES = ["1980-05-07", "1980-07-05", "1980-05-08", "1981-05-07", "1979-05-07", "1990-01-01",
         "1980-05-06", "1980-5-7"]  # fmt: skip


@st.composite
def features(draw: st.DrawFn) -> MatchFeatures:
    given_name = draw(st.none() | st.sampled_from(GIVEN))
    return MatchFeatures(
        source=draw(st.sampled_from(["crm", "ats", "hris"])),
        given=given_name,
        family=draw(st.none() | st.sampled_from(FAMILY)),
        given_keys=given_name_keys(given_name) if given_name else frozenset(),
        emails=frozenset(
            draw(st.lists(st.sampled_from(["a@x.io", "b@x.io", "c@y.io"]), max_size=3))
        ),
        phones=frozenset(draw(st.lists(st.sampled_from(["+1555", "+1666"]), max_size=2))),
        birth_date=draw(st.none() | st.sampled_from(DATES)),
        national_id_index=draw(st.none() | st.sampled_from(["n1", "n2"])),
        employee_id=draw(st.none() | st.sampled_from(["e1", "e2"])),
    )


def _check(records: list[MatchFeatures], a: list[int], b: list[int],
           scorer: FellegiSunterScorer) -> None:  # fmt: skip
    columns = FeatureColumns.of(records, scorer.known_given)
    pairs = compare_pairs(columns, np.array(a), np.array(b))
    similarities = name_similarities(columns, np.array(a), np.array(b))
    confidences = ComparisonWeights(scorer, columns).confidences(pairs)
    for k, (i, j) in enumerate(zip(a, b, strict=True)):
        expected = compare(records[i], records[j], scorer.known_given)
        assert similarities[k] == name_similarity(records[i], records[j])
        found = comparisons_of(columns, pairs, k, float(similarities[k]))
        assert found == expected, (records[i], records[j])
        single = scorer.score(records[i], records[j])
        assert abs(confidences[k] - single.confidence) <= 1e-9
        assert scorer.score_comparisons(found, found[0].similarity or 0.0) == single


@settings(max_examples=300, deadline=None)
@given(st.lists(features(), min_size=2, max_size=12), st.sampled_from(SCORERS), st.data())
def test_columns_compare_as_the_one_record_path(
    records: list[MatchFeatures], scorer: FellegiSunterScorer, data: st.DataObject
) -> None:
    n = len(records)
    pairs = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1, max_size=40)
    )
    _check(records, [i for i, _ in pairs], [j for _, j in pairs], scorer)


def test_generated_records_compare_as_the_one_record_path() -> None:
    pool = list(_pool())
    # Neighbours in family-name order: the pairs blocking brings, typos and relatives.
    a = [i for i in range(len(pool)) for j in range(i + 1, min(i + 8, len(pool)))]
    b = [j for i in range(len(pool)) for j in range(i + 1, min(i + 8, len(pool)))]
    for scorer in SCORERS:
        _check(pool, a, b, scorer)
        _check(pool, b, a, scorer)


def test_no_pairs_compare_to_nothing() -> None:
    columns = FeatureColumns.of(list(_pool()[:3]), frozenset())
    pairs = compare_pairs(columns, np.array([], dtype=int), np.array([], dtype=int))
    assert len(pairs.name) == 0
    assert len(ComparisonWeights(SCORERS[0], columns).confidences(pairs)) == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(features(), min_size=1, max_size=10))
def test_a_record_reads_back_from_the_columns(records: list[MatchFeatures]) -> None:
    columns = FeatureColumns.of(records, frozenset())
    assert len(columns) == len(records)
    assert [columns.record(k) for k in range(len(records))] == records


@settings(max_examples=50, deadline=None)
@given(st.lists(features(), min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_columns_taken_in_another_order_are_those_records_in_that_order(
    records: list[MatchFeatures], rnd: random.Random
) -> None:
    order = list(range(len(records)))
    rnd.shuffle(order)
    columns = FeatureColumns.of(records, frozenset()).take(np.array(order, dtype=np.int64))
    assert [columns.record(k) for k in range(len(records))] == [records[i] for i in order]


def test_take_reorders_every_column_with_a_row_per_record() -> None:
    """The columns that grow with the records (the same records twice: twice the rows, the
    same vocabularies) are those `take` reorders; one left out would keep the first order."""
    pool = list(_pool()[:50])
    once, twice = FeatureColumns.of(pool, frozenset()), FeatureColumns.of(pool * 2, frozenset())
    grown = {
        name
        for name, value in vars(once).items()
        if isinstance(value, np.ndarray) and len(getattr(twice, name)) == 2 * len(value)
    }
    assert grown == set(_PER_RECORD)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 30), max_size=9), min_size=1, max_size=20),
    st.lists(st.lists(st.integers(0, 30), max_size=9), min_size=1, max_size=20),
)
def test_rows_share_an_id_however_wide(x: list[list[int]], y: list[list[int]]) -> None:
    rows = min(len(x), len(y))
    x, y = x[:rows], y[:rows]
    found = _intersect(_padded(x), _padded(y))
    assert found.tolist() == [bool(set(p) & set(q)) for p, q in zip(x, y, strict=True)]


def test_scores_made_once_per_key_are_each_pairs_own() -> None:
    # Namesakes of common and rare names: the same levels, other term frequencies.
    twins = [
        MatchFeatures(source="crm", given=g, family=f, given_keys=given_name_keys(g),
                      emails=frozenset({"x@y.io"}))
        for g in ("maria", "xiomara")
        for f in ("smith", "quintanilla")
        for _ in range(2)
    ]  # fmt: skip
    pool = [*twins, *_pool()]
    a = np.array([i for i in range(len(pool)) for j in range(i + 1, min(i + 6, len(pool)))])
    b = np.array([j for i in range(len(pool)) for j in range(i + 1, min(i + 6, len(pool)))])
    for scorer in SCORERS:
        columns = FeatureColumns.of(pool, scorer.known_given)
        pairs = compare_pairs(columns, a, b)
        similarities = name_similarities(columns, a, b).tolist()
        scores = PairScores(scorer, columns)
        keys = score_keys(pairs, np.arange(len(a)), ComparisonWeights(scorer, columns))
        assert len(set(keys)) < len(keys) / 4  # the point of it
        for k, key in enumerate(keys):
            found = scores.score(key, pairs, k, similarities[k])
            assert found == scorer.score(pool[a[k]], pool[b[k]])
