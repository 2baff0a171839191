"""Compare many record pairs at once: the batch dedupe's comparisons, column by column.

`compare.py` defines every comparison of one pair. This module finds the same levels for
millions of pairs with array operations: every value is interned to an integer (names in
sorted order, so that comparing ids compares the strings), sets become padded rows of ids,
and the name similarities come from rapidfuzz `cpdist` over the pairs' strings. A pair the
policy decides gets its `Score` from the one formula, `FellegiSunterScorer.score_comparisons`,
fed with the levels found here; the tests hold both paths equal, level for level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from mdm.flow.compare import NAME_LEVELS, TYPO, Comparison, _name_level, compare_birth_dates
from mdm.flow.score import (
    TF_BONUS_MAX,
    TF_PENALTY_MAX,
    FellegiSunterScorer,
    ModelParameters,
    Score,
)
from mdm.model.record import MatchFeatures

# Levels of the other attributes, by code.
SET_LEVELS = ("missing", "exact", "differs")
BIRTH_LEVELS = ("missing", "exact", "transposed", "off_by_one", "differs")
ATTRIBUTES = ("name", "email", "phone", "birth_date", "national_id", "employee_id")

_NAME = {level: code for code, level in enumerate(NAME_LEVELS)}
# Given-name agreement (compare._given_agreement) and family-name agreement
# (compare._family_agreement) by code; the last code of each is "one side has none".
_GIVEN = ("exact", "nickname", "initial", "other_name", "close", "differs", None)
_FAMILY = ("exact", "close", "partial", "differs", None)
G_EXACT, G_NICKNAME, G_INITIAL, G_OTHER, G_CLOSE, G_DIFFERS, G_NONE = range(7)
F_EXACT, F_CLOSE, F_PARTIAL, F_DIFFERS, F_NONE = range(5)
# The name level of each (given, family) agreement, from compare._name_level itself.
_LEVEL_OF = np.array([[_NAME[_name_level(g, f)] for f in _FAMILY] for g in _GIVEN], dtype=np.int8)
_MISSING, _EXACT, _DIFFERS = 0, 1, 2
_B_TRANSPOSED, _B_OFF_BY_ONE, _B_DIFFERS = 2, 3, 4
_NICKNAME = _NAME["nickname"]


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
        """The columns of records given field by field (`FIELDS`, a list per field)."""
        # Built with C-level loops (map, set, fancy indexing) over the records and Python
        # loops over distinct values only.
        n = len(source)
        full = {v for v in chain(given, family) if v}
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
        email_ids, email_values = _interned_sets(emails)
        phone_ids, phone_values = _interned_sets(phones)
        return cls(
            names=names,
            values={
                "email": email_values,
                "phone": phone_values,
                "birth": birth_values,
                "nid": nid_values,
                "emp": emp_values,
                "source": source_values,
            },
            given=given_ids,
            family=family_ids,
            given_first=first_of[given_ids],
            family_first=first_of[family_ids],
            given_words=words_of[given_ids],
            family_words=words_of[family_ids],
            given_keys=_padded_ids(given_keys, lookup),
            emails=email_ids,
            phones=phone_ids,
            birth=birth,
            birth_parts=date_parts[birth],
            birth_numbers=date_numbers[birth],
            birth_odd=odd_dates[birth],
            national_id=national_id,
            employee_id=employee,
            source=sources,
            name_length=np.array([len(s) for s in names], dtype=np.int32),
            name_initial=np.array([ord(s[0]) if s else -1 for s in names], dtype=np.int32),
            name_spaced=np.array([" " in s for s in names], dtype=bool),
            name_known=np.array([s in known for s in names], dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.given)

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


class FeatureLists:
    """Records' features gathered field by field from their stored form
    (`MatchFeatures.as_json`), one record at a time, then made columns."""

    def __init__(self) -> None:
        self.fields: dict[str, list[Any]] = {name: [] for name in FIELDS}
        self._append = [(name, self.fields[name].append) for name in FIELDS]

    def append(self, document: Mapping[str, Any]) -> None:
        for name, append in self._append:
            append(document.get(name) or (() if name in _SETS else None))

    def columns(self, known: Container[str]) -> FeatureColumns:
        return FeatureColumns.from_values(known, **self.fields)


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


def _interned(values: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """Ids of the values (-1 for none) and the distinct values by id."""
    distinct = sorted({v for v in values if v})
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


class PairComparisons(NamedTuple):
    """The comparison levels of pairs (a[k], b[k]), by code, one array per attribute."""

    a: np.ndarray
    b: np.ndarray
    name: np.ndarray  # code into compare.NAME_LEVELS
    email: np.ndarray  # code into SET_LEVELS
    phone: np.ndarray
    birth_date: np.ndarray  # code into BIRTH_LEVELS
    national_id: np.ndarray  # code into SET_LEVELS
    employee_id: np.ndarray
    # The agreeing names of the term-frequency adjustment (name ids, -1: none), and
    # whether the name level is the straight reading (only that one carries them).
    tf_given: np.ndarray
    tf_family: np.ndarray


def _intersect(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row by row, whether two padded id matrices share an id."""
    out = np.zeros(len(x), dtype=bool)
    if x.shape[1] * y.shape[1] > 16:
        # Wide rows (a name that is a nickname of many): the present ids only, matched as
        # (row, id) codes, rather than every column against every column.
        rx, cx = np.nonzero(x >= 0)
        ry, cy = np.nonzero(y >= 0)
        if not len(rx) or not len(ry):
            return out
        width = int(max(x.max(), y.max())) + 1
        found = np.isin(rx * width + x[rx, cx], ry * width + y[ry, cy])
        out[rx[found]] = True
        return out
    for i in range(x.shape[1]):
        column = x[:, i]
        present = column >= 0
        if not present.any():
            continue
        for j in range(y.shape[1]):
            out |= present & (column == y[:, j])
    return out


def _jw(columns: FeatureColumns, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Jaro-Winkler of name ids x[k], y[k] (both present), as `compare.jaro_winkler`."""
    out = np.ones(len(x), dtype=np.float64)
    differ = x != y
    if differ.any():
        names = columns.names
        out[differ] = process.cpdist(
            [names[i] for i in x[differ]],
            [names[i] for i in y[differ]],
            scorer=JaroWinkler.similarity,
            dtype=np.float64,
        )
    return out


def _within_one_edit(columns: FeatureColumns, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    names = columns.names
    if not len(x):
        return np.zeros(0, dtype=bool)
    distance = process.cpdist(
        [names[i] for i in x], [names[i] for i in y], scorer=DamerauLevenshtein.distance
    )
    return np.asarray(distance) <= 1


def _given_agreement(
    columns: FeatureColumns, x: np.ndarray, y: np.ndarray, nickname: np.ndarray | None
) -> np.ndarray:
    """compare._given_agreement of first words x[k], y[k] (both present); `nickname`: the
    two given names share a key (None when the comparison has no keys, as when swapped)."""
    length, initial, known = columns.name_length, columns.name_initial, columns.name_known
    exact = x == y
    nick = nickname if nickname is not None else np.zeros(len(x), dtype=bool)
    initials = ((length[x] == 1) | (length[y] == 1)) & (initial[x] == initial[y])
    other = known[x] & known[y]
    close = np.zeros(len(x), dtype=bool)
    open_ = ~(exact | nick | initials | other)
    if open_.any():
        xs, ys = x[open_], y[open_]
        near = _jw(columns, xs, ys) >= TYPO
        far = ~near
        near[far] = _within_one_edit(columns, xs[far], ys[far])
        close[open_] = near
    return np.select(
        [exact, nick, initials, other, close],
        [G_EXACT, G_NICKNAME, G_INITIAL, G_OTHER, G_CLOSE],
        G_DIFFERS,
    ).astype(np.int8)


def _family_agreement(
    columns: FeatureColumns, x: np.ndarray, y: np.ndarray, x_words: np.ndarray,
    y_words: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """compare._family_agreement of full names x[k], y[k] (both present), with their words
    as padded rows."""
    exact = x == y
    close = _jw(columns, x, y) >= TYPO
    spaced = columns.name_spaced
    partial = np.zeros(len(x), dtype=bool)
    open_ = ~(exact | close) & (spaced[x] | spaced[y])
    if open_.any():
        partial[open_] = _intersect(x_words[open_], y_words[open_])
    return np.select([exact, close, partial], [F_EXACT, F_CLOSE, F_PARTIAL], F_DIFFERS).astype(
        np.int8
    )


def _set_levels(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Padded id rows: missing, exact (one value shared) or differs."""
    present = (x >= 0).any(axis=1) & (y >= 0).any(axis=1)
    shared = _intersect(x, y)
    return np.where(present, np.where(shared, _EXACT, _DIFFERS), _MISSING).astype(np.int8)


def _value_levels(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    present = (x >= 0) & (y >= 0)
    return np.where(present, np.where(x == y, _EXACT, _DIFFERS), _MISSING).astype(np.int8)


def _birth_levels(columns: FeatureColumns, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    birth = columns.birth
    present = (birth[a] >= 0) & (birth[b] >= 0)
    pa, pb = columns.birth_parts[a], columns.birth_parts[b]
    na, nb = columns.birth_numbers[a], columns.birth_numbers[b]
    same_year, same_month = pa[:, 0] == pb[:, 0], pa[:, 1] == pb[:, 1]
    transposed = same_year & (pa[:, 1] == pb[:, 2]) & (pa[:, 2] == pb[:, 1])
    off_by_one = (same_year & same_month & (np.abs(na[:, 2] - nb[:, 2]) == 1)) | (
        same_month & (pa[:, 2] == pb[:, 2]) & (np.abs(na[:, 0] - nb[:, 0]) == 1)
    )
    levels = np.select(
        [~present, birth[a] == birth[b], transposed, off_by_one],
        [_MISSING, _EXACT, _B_TRANSPOSED, _B_OFF_BY_ONE],
        _B_DIFFERS,
    ).astype(np.int8)
    odd = present & (columns.birth_odd[a] | columns.birth_odd[b])
    for k in np.flatnonzero(odd):
        found = compare_birth_dates(
            columns.values["birth"][columns.birth[a[k]]],
            columns.values["birth"][columns.birth[b[k]]],
        )
        levels[k] = BIRTH_LEVELS.index(found.level)
    return levels


def compare_pairs(columns: FeatureColumns, a: np.ndarray, b: np.ndarray) -> PairComparisons:
    """`compare.compare(features[a[k]], features[b[k]])` for every k, as level codes."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    c = columns
    n = len(a)
    given_a, given_b = c.given[a], c.given[b]
    family_a, family_b = c.family[a], c.family[b]
    has_given = (given_a >= 0) & (given_b >= 0)
    has_family = (family_a >= 0) & (family_b >= 0)

    given = np.full(n, G_NONE, dtype=np.int8)
    if has_given.any():
        ga, gb = a[has_given], b[has_given]
        x, y = c.given_first[ga], c.given_first[gb]
        # Nicknames matter only between two different first names.
        nickname = np.zeros(len(ga), dtype=bool)
        other = x != y
        nickname[other] = _intersect(c.given_keys[ga[other]], c.given_keys[gb[other]])
        given[has_given] = _given_agreement(c, x, y, nickname)
    family = np.full(n, F_NONE, dtype=np.int8)
    if has_family.any():
        fa, fb = a[has_family], b[has_family]
        family[has_family] = _family_agreement(
            c, c.family[fa], c.family[fb], c.family_words[fa], c.family_words[fb]
        )
    level = _LEVEL_OF[given, family]
    straight = np.ones(n, dtype=bool)

    # Read swapped (given for family), either way round, when it agrees better.
    swap = (level > _NICKNAME) & has_given & has_family
    if swap.any():
        sa, sb = a[swap], b[swap]
        one = _LEVEL_OF[
            _given_agreement(c, c.given_first[sa], c.family_first[sb], None),
            _family_agreement(c, c.family[sa], c.given[sb], c.family_words[sa],
                              c.given_words[sb]),
        ]  # fmt: skip
        other = _LEVEL_OF[
            _given_agreement(c, c.family_first[sa], c.given_first[sb], None),
            _family_agreement(c, c.given[sa], c.family[sb], c.given_words[sa],
                              c.family_words[sb]),
        ]  # fmt: skip
        swapped = np.minimum(one, other)
        better = swapped < level[swap]
        level[swap] = np.where(better, swapped, level[swap])
        straight[np.flatnonzero(swap)[better]] = False

    # The agreeing names, for the term-frequency adjustment (compare.compare_names).
    first_a, first_b = c.given_first[a], c.given_first[b]
    given_name = np.minimum(np.where(first_a >= 0, first_a, first_b),
                            np.where(first_b >= 0, first_b, first_a))  # fmt: skip
    with_given = straight & np.isin(level, [_NAME["exact"], _NAME["family_changed"],
                                            _NAME["given_only"]])  # fmt: skip
    with_family = straight & np.isin(level, [_NAME["exact"], _NAME["nickname"],
                                             _NAME["family_only"]])  # fmt: skip
    tf_given = np.where(with_given, given_name, -1).astype(np.int32)
    tf_family = np.where(with_family, family_a, -1).astype(np.int32)

    same_source = c.source[a] == c.source[b]
    employee = np.where(
        same_source, _value_levels(c.employee_id[a], c.employee_id[b]), _MISSING
    ).astype(np.int8)
    return PairComparisons(
        a=a,
        b=b,
        name=level,
        email=_set_levels(c.emails[a], c.emails[b]),
        phone=_set_levels(c.phones[a], c.phones[b]),
        birth_date=_birth_levels(c, a, b),
        national_id=_value_levels(c.national_id[a], c.national_id[b]),
        employee_id=employee,
        tf_given=tf_given,
        tf_family=tf_family,
    )


def name_similarities(columns: FeatureColumns, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`compare.name_similarity` of every pair (a[k], b[k])."""
    c = columns
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    n = len(a)
    given_a, given_b = c.given[a], c.given[b]
    family_a, family_b = c.family[a], c.family[b]
    has_given = (given_a >= 0) & (given_b >= 0)
    has_family = (family_a >= 0) & (family_b >= 0)
    out = np.zeros(n, dtype=np.float64)

    given_similarity = np.zeros(n, dtype=np.float64)
    if has_given.any():
        ga, gb = a[has_given], b[has_given]
        x, y = c.given_first[ga], c.given_first[gb]
        # Shared keys matter only between two different first names, or an initial (the
        # same longer name is 1.0 either way).
        keys = np.zeros(len(ga), dtype=bool)
        other = (x != y) | (c.name_length[x] == 1)
        keys[other] = _intersect(c.given_keys[ga[other]], c.given_keys[gb[other]])
        initials = ((c.name_length[x] == 1) | (c.name_length[y] == 1)) & (
            c.name_initial[x] == c.name_initial[y]
        )
        given_similarity[has_given] = np.where(keys, 1.0, np.where(initials, 0.9, _jw(c, x, y)))
    if has_family.any():
        fa, fb = a[has_family], b[has_family]
        family = _jw(c, c.family[fa], c.family[fb])
        cut = (family < 1.0) & (c.name_spaced[c.family[fa]] | c.name_spaced[c.family[fb]])
        if cut.any():
            shared = _intersect(c.family_words[fa][cut], c.family_words[fb][cut])
            family[np.flatnonzero(cut)[shared]] = np.maximum(family[cut][shared], 0.97)
        full = has_given[has_family]
        result = family.copy()
        if full.any():
            fa2, fb2 = fa[full], fb[full]
            straight = np.minimum(given_similarity[has_family][full], family[full])
            swapped = np.minimum(
                _jw(c, c.given[fa2], c.family[fb2]), _jw(c, c.family[fa2], c.given[fb2])
            )
            result[full] = np.maximum(straight, swapped)
        out[has_family] = result
    only_given = has_given & ~has_family
    out[only_given] = given_similarity[only_given]
    rest = np.flatnonzero(~has_given & ~has_family)
    if len(rest):
        x = np.where(given_a[rest] >= 0, given_a[rest], family_a[rest])
        y = np.where(given_b[rest] >= 0, given_b[rest], family_b[rest])
        both = (x >= 0) & (y >= 0)
        values = np.where((x < 0) & (y < 0), 1.0, 0.0)  # two empty strings are equal
        if both.any():
            values[both] = _jw(c, x[both], y[both])
        none_one = (x < 0) ^ (y < 0)
        if none_one.any():
            # jaro_winkler("", s) of a non-empty s: rapidfuzz's own answer.
            values[none_one] = [
                JaroWinkler.similarity("", c.names[max(i, j)])
                for i, j in zip(x[none_one], y[none_one], strict=True)
            ]
        out[rest] = values
    return out


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


def comparisons_of(
    columns: FeatureColumns, pairs: PairComparisons, k: int, similarity: float
) -> tuple[Comparison, ...]:
    """Pair k's comparisons as `compare.compare` makes them, its name similarity given."""
    names = columns.names
    given, family = int(pairs.tf_given[k]), int(pairs.tf_family[k])
    level = NAME_LEVELS[pairs.name[k]]
    value = None
    if given >= 0 or family >= 0:
        value = f"{names[given] if given >= 0 else ''}|{names[family] if family >= 0 else ''}"
    return (
        Comparison("name", level, round(similarity, 6), value),
        Comparison("email", SET_LEVELS[pairs.email[k]]),
        Comparison("phone", SET_LEVELS[pairs.phone[k]]),
        Comparison("birth_date", BIRTH_LEVELS[pairs.birth_date[k]]),
        Comparison("national_id", SET_LEVELS[pairs.national_id[k]]),
        Comparison("employee_id", SET_LEVELS[pairs.employee_id[k]]),
    )


# What a pair's confidence depends on, in PairComparisons: its levels and agreeing names.
SCORE_KEY = ("name", "tf_given", "tf_family", "email", "phone", "birth_date", "national_id",
             "employee_id")  # fmt: skip


def score_keys(pairs: PairComparisons, chosen: np.ndarray) -> list[tuple[int, ...]]:
    """The `SCORE_KEY` of each chosen pair."""
    return list(zip(*(getattr(pairs, name)[chosen].tolist() for name in SCORE_KEY), strict=True))


class PairScores:
    """Scores of compared pairs by the one formula (`score_comparisons`), made once per
    distinct key (`SCORE_KEY`): a pair's confidence depends on its levels and agreeing
    names alone; its name similarity, which only explains, is its own."""

    def __init__(self, scorer: FellegiSunterScorer, columns: FeatureColumns) -> None:
        self.scorer, self.columns = scorer, columns
        self._made: dict[tuple[int, ...], Score] = {}

    def score(
        self, key: tuple[int, ...], pairs: PairComparisons, k: int, similarity: float
    ) -> Score:
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
