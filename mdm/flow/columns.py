"""Records' match features as columns: the batch dedupe's view of a whole registry.

Every value is interned to an integer: names (full given and family names, their first
words and every word, and the given keys) in one vocabulary sorted like the strings, so
that comparing two ids compares the strings; the other values each in their own. Sets
(given keys, emails, phones) become rows of ids padded with -1. A million records take a
few array passes rather than a million objects.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain
from operator import attrgetter
from typing import Any, cast

import numpy as np

from mdm.model.record import MatchFeatures


def _padded(rows: Sequence[Sequence[int]]) -> np.ndarray:
    """Rows of ids as a matrix padded with -1 (one column at least)."""
    width = max((len(r) for r in rows), default=0) or 1
    out = np.full((len(rows), width), -1, dtype=np.int32)
    for k, row in enumerate(rows):
        if row:
            out[k, : len(row)] = row
    return out


@dataclass(frozen=True, eq=False)
class FeatureColumns:
    """The match features of many records as arrays, one row per record.

    Names (full given and family names, their first words and every word) share one
    vocabulary sorted like the strings; -1 stands for "none".
    """

    names: list[str]  # the vocabulary
    name_objects: np.ndarray  # the same, as an array to index with arrays of ids
    # The other interned values by id, to name a blocking key again.
    values: dict[str, list[str]]
    given: np.ndarray
    family: np.ndarray
    given_first: np.ndarray
    family_first: np.ndarray
    given_words: np.ndarray  # padded rows
    family_words: np.ndarray
    given_keys: np.ndarray
    emails: np.ndarray
    phones: np.ndarray
    birth: np.ndarray  # the date as an interned string
    birth_parts: np.ndarray  # (year, month, day) ids of each part's string
    birth_numbers: np.ndarray  # (year, month, day) as numbers
    birth_odd: np.ndarray  # a date that is not three numbers: compared one pair at a time
    national_id: np.ndarray
    employee_id: np.ndarray
    source: np.ndarray
    # Per name id: its length, first character, whether it holds a space, and whether it
    # is a known given name (`known` of `of`).
    name_length: np.ndarray
    name_initial: np.ndarray
    name_spaced: np.ndarray
    name_known: np.ndarray

    @classmethod
    def of(cls, features: Sequence[MatchFeatures], known: Container[str]) -> FeatureColumns:
        return cls.from_values(
            known,
            **{name: list(map(attrgetter(name), features)) for name in FIELDS},
        )

    @classmethod
    def from_values(
        cls,
        known: Container[str],
        run: Runner | None = None,
        /,
        *,
        source: list[str],
        given: list[str | None],
        family: list[str | None],
        given_keys: list[Collection[str]],
        emails: list[Collection[str]],
        phones: list[Collection[str]],
        birth_date: list[str | None],
        national_id_index: list[str | None],
        employee_id: list[str | None],
    ) -> FeatureColumns:
        """The columns of records given field by field (`FIELDS`, a list per field).
        `run` may build the names' and the other values' columns and the emails' and
        phones' columns side by side (in two processes); by default one after the other.
        (The emails' and phones' distinct values come back as copies: in this process the
        others are the very strings of the lists.)"""
        # Built with C-level loops (map, set, fancy indexing) over the records and Python
        # loops over distinct values only.
        parts = (run or _in_turn)(
            [
                partial(_name_and_value_columns, known, source, given, family, given_keys,
                        birth_date, national_id_index, employee_id),
                partial(_contact_columns, emails, phones),
            ]
        )  # fmt: skip
        columns, contacts = parts
        values = {**contacts.pop("values"), **columns.pop("values")}
        return cls(**columns, **contacts, values=values)

    def __len__(self) -> int:
        return len(self.given)

    def take(self, order: np.ndarray) -> FeatureColumns:
        """The same records in another order (or some of them): row k is record order[k]."""
        return replace(self, **{name: getattr(self, name)[order] for name in _PER_RECORD})

    def record(self, k: int) -> MatchFeatures:
        """Record k's features as compared (what `compare.compare` would be given)."""
        names, values = self.names, self.values

        def name(i: int) -> str | None:
            return names[i] if i >= 0 else None

        def value(kind: str, i: int) -> str | None:
            return values[kind][i] if i >= 0 else None

        return MatchFeatures(
            source=values["source"][self.source[k]],
            given=name(self.given[k]),
            family=name(self.family[k]),
            given_keys=frozenset(names[i] for i in self.given_keys[k] if i >= 0),
            emails=frozenset(values["email"][i] for i in self.emails[k] if i >= 0),
            phones=frozenset(values["phone"][i] for i in self.phones[k] if i >= 0),
            birth_date=value("birth", self.birth[k]),
            national_id_index=value("nid", self.national_id[k]),
            employee_id=value("emp", self.employee_id[k]),
        )


# The fields of `MatchFeatures` that comparing reads, as `from_values` takes them.
FIELDS = ("source", "given", "family", "given_keys", "emails", "phones", "birth_date",
          "national_id_index", "employee_id")  # fmt: skip
_SETS = ("given_keys", "emails", "phones")
# The columns with a row per record (the others are per name or per value).
_PER_RECORD = ("given", "family", "given_first", "family_first", "given_words", "family_words",
               "given_keys", "emails", "phones", "birth", "birth_parts", "birth_numbers",
               "birth_odd", "national_id", "employee_id", "source")  # fmt: skip


class FeatureLists:
    """Records' features gathered field by field from their stored form
    (`MatchFeatures.as_json`), one record at a time, then made columns."""

    def __init__(self) -> None:
        self.fields: dict[str, list[Any]] = {name: [] for name in FIELDS}
        self._append = [(name, self.fields[name].append) for name in FIELDS]

    def append(self, document: Mapping[str, Any]) -> None:
        for name, append in self._append:
            append(document.get(name) or (() if name in _SETS else None))

    def columns(self, known: Container[str], run: Runner | None = None) -> FeatureColumns:
        return FeatureColumns.from_values(known, run, **self.fields)


def columns_of(documents: Iterable[Mapping[str, Any]], known: Container[str]) -> FeatureColumns:
    """Columns of features in their stored form."""
    lists = FeatureLists()
    for document in documents:
        lists.append(document)
    return lists.columns(known)


def _date_parts(value: str) -> list[str] | None:
    """(year, month, day) of a date written as three numbers, else None."""
    pieces = value.split("-")
    if len(pieces) == 3 and all(p.isdigit() and p.isascii() for p in pieces):
        return pieces
    return None


def _present(*columns: Iterable[str | None]) -> set[str]:
    """The distinct values of the columns, none and "" left out. Built by the set's own
    loops: a comprehension's Python loop took twice as long over millions of values."""
    found: set[str | None] = set()
    for column in columns:
        found.update(column)
    found.difference_update((None, ""))
    return cast(set[str], found)


def _interned(values: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """Ids of the values (-1 for none) and the distinct values by id."""
    distinct = sorted(_present(values))
    ids: dict[str | None, int] = {v: k for k, v in enumerate(distinct)}
    ids[None], ids[""] = -1, -1
    return np.fromiter(map(ids.__getitem__, values), np.int32, len(values)), distinct


def _padded_ids(sets: Sequence[Collection[str]], lookup: Callable[[str], int]) -> np.ndarray:
    """Each record's set as a row of ids padded with -1."""
    lengths = np.fromiter(map(len, sets), np.int64, len(sets))
    flat = np.fromiter(map(lookup, chain.from_iterable(sets)), np.int32, int(lengths.sum()))
    width = max(int(lengths.max(initial=0)), 1)
    out = np.full((len(sets), width), -1, dtype=np.int32)
    rows = np.repeat(np.arange(len(sets)), lengths)
    columns = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, columns] = flat
    return out


def _interned_sets(sets: Sequence[Collection[str]]) -> tuple[np.ndarray, list[str]]:
    distinct = sorted(set().union(*sets))
    ids = {v: k for k, v in enumerate(distinct)}
    return _padded_ids(sets, ids.__getitem__), distinct


# Runs each of a list of functions and returns their results in order.
Runner = Callable[[Sequence[Callable[[], Any]]], list[Any]]


def _in_turn(parts: Sequence[Callable[[], Any]]) -> list[Any]:
    return [part() for part in parts]


def _name_and_value_columns(
    known: Container[str],
    source: list[str],
    given: list[str | None],
    family: list[str | None],
    given_keys: list[Collection[str]],
    birth_date: list[str | None],
    national_id_index: list[str | None],
    employee_id: list[str | None],
) -> dict[str, Any]:
    n = len(source)
    full = _present(given, family)
    vocabulary = set(full).union(*(v.split(" ") for v in full), *given_keys)
    names = sorted(vocabulary)
    ids: dict[str | None, int] = {name: k for k, name in enumerate(names)}
    ids[None], ids[""] = -1, -1
    lookup = ids.__getitem__
    # Per name id its first word and its words; row -1 (no name) reads "none".
    first_of = np.fromiter((ids[s.split(" ")[0]] for s in names), np.int32, len(names))
    first_of = np.append(first_of, -1).astype(np.int32)
    words_of = _padded([[ids[w] for w in s.split(" ")] for s in names] + [[]])
    given_ids = np.fromiter(map(lookup, given), np.int32, n)
    family_ids = np.fromiter(map(lookup, family), np.int32, n)

    birth, birth_values = _interned(birth_date)
    parsed = [_date_parts(d) for d in birth_values]
    part_ids: dict[str, int] = {}
    date_parts = np.array(
        [[part_ids.setdefault(x, len(part_ids)) for x in p] if p else [-1, -1, -1]
         for p in parsed] + [[-1, -1, -1]], dtype=np.int32,
    ).reshape(-1, 3)  # fmt: skip
    date_numbers = np.array(
        [[int(x) for x in p] if p else [0, 0, 0] for p in parsed] + [[0, 0, 0]],
        dtype=np.int64,
    ).reshape(-1, 3)
    odd_dates = np.array([p is None for p in parsed] + [False], dtype=bool)
    national_id, nid_values = _interned(national_id_index)
    employee, emp_values = _interned(employee_id)
    sources, source_values = _interned(source)
    return {
        "names": names,
        "name_objects": np.array(names, dtype=object),
        "values": {
            "birth": birth_values,
            "nid": nid_values,
            "emp": emp_values,
            "source": source_values,
        },
        "given": given_ids,
        "family": family_ids,
        "given_first": first_of[given_ids],
        "family_first": first_of[family_ids],
        "given_words": words_of[given_ids],
        "family_words": words_of[family_ids],
        "given_keys": _padded_ids(given_keys, lookup),
        "birth": birth,
        "birth_parts": date_parts[birth],
        "birth_numbers": date_numbers[birth],
        "birth_odd": odd_dates[birth],
        "national_id": national_id,
        "employee_id": employee,
        "source": sources,
        "name_length": np.array([len(s) for s in names], dtype=np.int32),
        "name_initial": np.array([ord(s[0]) if s else -1 for s in names], dtype=np.int32),
        "name_spaced": np.array([" " in s for s in names], dtype=bool),
        "name_known": np.array([s in known for s in names], dtype=bool),
    }


def _contact_columns(
    emails: list[Collection[str]], phones: list[Collection[str]]
) -> dict[str, Any]:
    email_ids, email_values = _interned_sets(emails)
    phone_ids, phone_values = _interned_sets(phones)
    return {
        "emails": email_ids,
        "phones": phone_ids,
        "values": {"email": email_values, "phone": phone_values},
    }
