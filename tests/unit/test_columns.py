"""Interning in parts: records interned a batch at a time, or in several processes' parts
merged afterwards, give the columns of the records interned at once."""

from __future__ import annotations

import pickle
from itertools import pairwise

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mdm.flow.columns import (
    _PER_RECORD,
    FeatureColumns,
    FeatureInterner,
    columns_of,
    merged,
)
from mdm.model.record import MatchFeatures
from tests.unit.test_compare_many import features

KNOWN = frozenset({"william", "robert", "maria", "anna", "john"})


def _same(a: FeatureColumns, b: FeatureColumns) -> None:
    assert (a.names, a.values) == (b.names, b.values)
    for name in _PER_RECORD:
        x, y = getattr(a, name), getattr(b, name)
        if name in ("given_keys", "emails", "phones"):  # a set's members in any order
            x, y = np.sort(x, axis=1), np.sort(y, axis=1)
        assert np.array_equal(x, y), name
    for name in ("name_length", "name_initial", "name_spaced", "name_known"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@settings(max_examples=60, deadline=None)
@given(st.lists(features(), max_size=40), st.lists(st.integers(0, 40), max_size=4))
def test_records_interned_in_batches_or_in_parts_give_the_same_columns(
    records: list[MatchFeatures], cuts: list[int]
) -> None:
    whole = FeatureColumns.of(records, KNOWN)
    bounds = [0, *sorted(min(c, len(records)) for c in cuts), len(records)]
    pieces = [records[a:b] for a, b in pairwise(bounds)]
    batched = FeatureInterner()
    parts = []
    for piece in pieces:
        batched.add_documents([r.as_json() for r in piece])
        part = FeatureInterner()
        part.add_documents([r.as_json() for r in piece])
        parts.append(part.interned())
    _same(FeatureColumns.from_interned(batched.interned(), KNOWN), whole)
    _same(FeatureColumns.from_interned(merged(parts), KNOWN), whole)
    order = np.arange(len(records))[::-1].copy()
    _same(FeatureColumns.from_interned(merged(parts), KNOWN, order), whole.take(order))
    for k, record in enumerate(records):
        assert whole.record(k) == record


def test_documents_of_an_older_form_read_as_none() -> None:
    # Stored before a field existed, or with a set as null: "none", not an error.
    columns = columns_of(
        [{"source": "crm", "given": "ana", "emails": None},
         {"source": "crm", "given": "ana", "family": "", "emails": ["a@x.io"], "phones": []}],
        frozenset(),
    )  # fmt: skip
    assert [columns.record(k).emails for k in range(2)] == [frozenset(), frozenset({"a@x.io"})]
    assert columns.record(1).family is None and columns.record(0).birth_date is None
    assert columns.given.tolist() == [columns.names.index("ana")] * 2


def test_interned_features_survive_pickling_whatever_their_values() -> None:
    # Sent between processes with each vocabulary joined by NUL; one holding a NUL (SQLite
    # text may) goes as a list.
    interner = FeatureInterner()
    interner.add_documents(
        [{"source": "crm", "given": "ana", "emails": ["a\x00b@x.io", "c@x.io"]},
         {"source": "crm", "given": "", "family": "lee"}]
    )  # fmt: skip
    interned = interner.interned()
    again = pickle.loads(pickle.dumps(interned))
    assert again.vocabularies == interned.vocabularies
    assert again.vocabularies["phone"] == [] and again.vocabularies["email"][0] == "a\x00b@x.io"
    _same(FeatureColumns.from_interned(again, KNOWN), FeatureColumns.from_interned(interned, KNOWN))
