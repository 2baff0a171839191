"""Compare many record pairs at once: the batch dedupe's comparisons, column by column.

`compare.py` defines every comparison of one pair. This module finds the same levels for
millions of pairs of records held as columns (flow/columns.py) with array operations:
integer comparisons of interned values, and name similarities from rapidfuzz `cpdist` over
the pairs' strings. The tests hold both paths equal, level for level.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from mdm.flow.columns import FeatureColumns
from mdm.flow.compare import NAME_LEVELS, TYPO, Comparison, _name_level, compare_birth_dates

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
        pool = np.sort(ry * width + y[ry, cy])
        wanted = rx * width + x[rx, cx]
        at = np.minimum(np.searchsorted(pool, wanted), len(pool) - 1)
        out[rx[pool[at] == wanted]] = True
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
        names = columns.name_objects
        out[differ] = process.cpdist(
            names[x[differ]].tolist(),
            names[y[differ]].tolist(),
            scorer=JaroWinkler.similarity,
            dtype=np.float64,
        )
    return out


def _within_one_edit(columns: FeatureColumns, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    names = columns.name_objects
    if not len(x):
        return np.zeros(0, dtype=bool)
    distance = process.cpdist(
        names[x].tolist(), names[y].tolist(), scorer=DamerauLevenshtein.distance
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
