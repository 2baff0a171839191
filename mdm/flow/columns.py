"""Records' match features as columns: the batch dedupe's view of a whole registry.

Every value is interned to an integer: names (full given and family names, their first
words and every word, and the given keys) in one vocabulary sorted like the strings, so
that comparing two ids compares the strings; the other values each in their own. Sets
(given keys, emails, phones) become rows of ids padded with -1. A million records take a
few array passes rather than a million objects.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain, compress, pairwise
from operator import attrgetter, itemgetter, ne
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
            known, **{name: list(map(attrgetter(name), features)) for name in FIELDS}
        )

    @classmethod
    def from_values(cls, known: Container[str], **fields: Sequence[Any]) -> FeatureColumns:
        """The columns of records given field by field (`FIELDS`, a list per field; the
        sets as collections)."""
        interner = FeatureInterner()
        interner.add(fields)
        return cls.from_interned(interner.interned(), known)

    @classmethod
    def from_interned(
        cls, interned: InternedFeatures, known: Container[str], order: np.ndarray | None = None
    ) -> FeatureColumns:
        """The columns of interned records; `known` are the known given names. With
        `order`, row k is record order[k] (as `take`, but the columns derived from a
        record's ids are made in that order rather than reordered)."""
        # Python loops over distinct values only; the records' rows are array indexing.
        vocabularies, scalars = interned.vocabularies, interned.scalars
        padded = {name: _padded_ids(*interned.sets[name]) for name in _SETS}
        if order is not None:
            scalars = {name: ids[order] for name, ids in scalars.items()}
            padded = {name: rows[order] for name, rows in padded.items()}
        names = vocabularies["names"]
        ids: dict[str | None, int] = {name: k for k, name in enumerate(names)}
        ids[""] = -1
        # Per name id its first word and its words; row -1 (no name) reads "none".
        first_of = np.fromiter((ids[s.split(" ")[0]] for s in names), np.int32, len(names))
        first_of = np.append(first_of, -1).astype(np.int32)
        words_of = _padded([[ids[w] for w in s.split(" ")] for s in names] + [[]])
        given, family = scalars["given"], scalars["family"]
        births = vocabularies["birth"]
        parsed = [_date_parts(d) for d in births]
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
        birth = scalars["birth_date"]
        return cls(
            names=names,
            name_objects=np.array(names, dtype=object),
            values={kind: vocabularies[kind] for kind in _VALUE_KINDS},
            given=given,
            family=family,
            given_first=first_of[given],
            family_first=first_of[family],
            given_words=words_of[given],
            family_words=words_of[family],
            given_keys=padded["given_keys"],
            emails=padded["emails"],
            phones=padded["phones"],
            birth=birth,
            birth_parts=date_parts[birth],
            birth_numbers=date_numbers[birth],
            birth_odd=odd_dates[birth],
            national_id=scalars["national_id_index"],
            employee_id=scalars["employee_id"],
            source=scalars["source"],
            name_length=np.array([len(s) for s in names], dtype=np.int32),
            name_initial=np.array([ord(s[0]) if s else -1 for s in names], dtype=np.int32),
            name_spaced=np.array([" " in s for s in names], dtype=bool),
            name_known=np.array([s in known for s in names], dtype=bool),
        )

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


# The fields of `MatchFeatures` that comparing reads, as `from_values` takes them, and the
# vocabulary each is interned in. Names share one; the sets hold collections of values.
FIELDS = ("source", "given", "family", "given_keys", "emails", "phones", "birth_date",
          "national_id_index", "employee_id")  # fmt: skip
_VOCABULARY = {"source": "source", "given": "names", "family": "names", "given_keys": "names",
               "emails": "email", "phones": "phone", "birth_date": "birth",
               "national_id_index": "nid", "employee_id": "emp"}  # fmt: skip
_SETS = ("given_keys", "emails", "phones")
_GET_FIELDS = itemgetter(*FIELDS)
_SCALARS = tuple(name for name in FIELDS if name not in _SETS)
_VALUE_KINDS = ("birth", "nid", "emp", "source", "email", "phone")
# The columns with a row per record (the others are per name or per value).
_PER_RECORD = ("given", "family", "given_first", "family_first", "given_words", "family_words",
               "given_keys", "emails", "phones", "birth", "birth_parts", "birth_numbers",
               "birth_odd", "national_id", "employee_id", "source")  # fmt: skip


@dataclass(frozen=True, eq=False)
class InternedFeatures:
    """Records' features as ids into sorted vocabularies (`_VOCABULARY`): compact and
    cheap to send between processes. -1 stands for "none"."""

    vocabularies: dict[str, list[str]]
    scalars: dict[str, np.ndarray]  # per scalar field, an id per record
    sets: dict[str, tuple[np.ndarray, np.ndarray]]  # per set field, (sizes, ids one after another)

    # Sent to another process with each vocabulary joined into one string: pickled one by
    # one, a million strings took seconds. NUL separates them (PostgreSQL's text holds
    # none; a vocabulary with one goes as a list).
    def __getstate__(self) -> dict[str, Any]:
        joined: dict[str, tuple[int, str] | list[str]] = {}
        for kind, values in self.vocabularies.items():
            text = "\0".join(values)
            clean = text.count("\0") == max(len(values) - 1, 0)
            joined[kind] = (len(values), text) if clean else values
        return {"vocabularies": joined, "scalars": self.scalars, "sets": self.sets}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vocabularies = {
            kind: _split(packed) if isinstance(packed, tuple) else packed
            for kind, packed in state["vocabularies"].items()
        }
        object.__setattr__(self, "vocabularies", vocabularies)
        object.__setattr__(self, "scalars", state["scalars"])
        object.__setattr__(self, "sets", state["sets"])


@dataclass(frozen=True, eq=False)
class Packed:
    """Byte strings as one buffer and where each ends: pickled in one piece, where a
    million strings pickled one by one took seconds."""

    blob: bytes
    ends: np.ndarray  # int64, one past each string's last byte

    @classmethod
    def of(cls, items: Sequence[bytes]) -> Packed:
        return cls(b"".join(items), np.cumsum(np.fromiter(map(len, items), np.int64, len(items))))

    @classmethod
    def joined(cls, parts: Sequence[Packed]) -> Packed:
        """The strings of several, one after the other."""
        offsets = np.cumsum([0, *(len(p.blob) for p in parts)])
        ends = [p.ends + offset for p, offset in zip(parts, offsets.tolist(), strict=False)]
        return cls(b"".join(p.blob for p in parts), np.concatenate([*ends, _NO_ENDS]))

    def __len__(self) -> int:
        return len(self.ends)

    def lengths(self) -> np.ndarray:
        return np.diff(self.ends, prepend=0)

    def items(self) -> list[bytes]:
        blob, ends = self.blob, self.ends.tolist()
        return [blob[a:b] for a, b in zip([0, *ends], ends, strict=False)]

    def fixed_width(self, width: int) -> np.ndarray:
        """The strings as numpy byte strings of `width` (at least 1) bytes (cut there;
        NUL-padded), which numpy sorts as bytes."""
        lengths, flat = self.lengths(), np.frombuffer(self.blob, dtype=np.uint8)
        starts = self.ends - lengths
        out = np.zeros((len(self), width), dtype=np.uint8)
        for j in range(width):  # a column at a time: memory for one, not for every byte
            has = np.flatnonzero(lengths > j)
            out[has, j] = flat[starts[has] + j]
        return out.view(f"S{width}").ravel()


_NO_ENDS = np.zeros(0, dtype=np.int64)


def _split(packed: tuple[int, str]) -> list[str]:
    count, text = packed
    return text.split("\0") if count else []


class _Vocabulary:
    """Distinct values met so far, each with a provisional id in no particular order."""

    def __init__(self, blank: bool) -> None:
        self.values: list[str] = []
        # None, and "" where `blank`, read "none".
        self.ids: dict[str | None, int] = {None: -1, "": -1} if blank else {}

    def of(self, values: Sequence[str | None]) -> np.ndarray:
        """The values' ids, new values given one. Every loop is the set's, the dict's or
        numpy's own: a million values take a few C passes."""
        # None and "" are in `ids` already where they read "none".
        new = cast(list[str], list(set(values).difference(self.ids)))  # iterates the values
        self.ids.update(zip(new, range(len(self.values), len(self.values) + len(new)), strict=True))
        self.values.extend(new)
        return np.fromiter(map(self.ids.__getitem__, values), np.int32, len(values))

    def sorted(self) -> tuple[list[str], np.ndarray]:
        """The values sorted, and each provisional id's place among them (at index -1,
        for "none", -1)."""
        order = sorted(range(len(self.values)), key=self.values.__getitem__)
        place = np.full(len(order) + 1, -1, dtype=np.int32)
        place[order] = np.arange(len(order), dtype=np.int32)
        return list(map(self.values.__getitem__, order)), place


class FeatureInterner:
    """Records' features interned a batch at a time: a registry read in batches holds its
    distinct values and an id per value per record, not every record's strings."""

    def __init__(self) -> None:
        kinds = set(_VOCABULARY.values())
        self._vocabularies = {k: _Vocabulary(blank=k not in ("email", "phone")) for k in kinds}
        self._scalars: dict[str, list[np.ndarray]] = {name: [] for name in _SCALARS}
        self._sizes: dict[str, list[np.ndarray]] = {name: [] for name in _SETS}
        self._members: dict[str, list[np.ndarray]] = {name: [] for name in _SETS}

    def add_documents(self, documents: Sequence[Mapping[str, Any]]) -> None:
        """Features in their stored form (`MatchFeatures.as_json`)."""
        try:
            # Transposed by C loops: a comprehension per field took a fifth of the read.
            rows = list(map(_GET_FIELDS, documents))
        except KeyError:  # a field missing: stored by an older version
            rows = [tuple(d.get(name) for name in FIELDS) for d in documents]
        columns = zip(*rows, strict=True) if rows else ((),) * len(FIELDS)
        fields: dict[str, Sequence[Any]] = dict(zip(FIELDS, columns, strict=True))
        for name in _SETS:
            if None in fields[name]:
                fields[name] = [s or () for s in fields[name]]
        self.add(fields)

    def add(self, fields: Mapping[str, Sequence[Any]]) -> None:
        """Records given field by field (`FIELDS`, a list per field; sets as collections)."""
        for name in _SCALARS:
            self._scalars[name].append(self._vocabularies[_VOCABULARY[name]].of(fields[name]))
        for name in _SETS:
            sets = fields[name]
            self._sizes[name].append(np.fromiter(map(len, sets), np.int32, len(sets)))
            members = list(chain.from_iterable(sets))
            self._members[name].append(self._vocabularies[_VOCABULARY[name]].of(members))

    def interned(self) -> InternedFeatures:
        """What was added, in sorted vocabularies; the names' holds every word of every
        full name too."""
        names = self._vocabularies["names"]
        full = np.unique(_joined([*self._scalars["given"], *self._scalars["family"]]))
        full_names = [names.values[i] for i in full[full >= 0].tolist()]
        names.of(list(chain.from_iterable(s.split(" ") for s in full_names)))
        sorted_vocabularies: dict[str, list[str]] = {}
        places: dict[str, np.ndarray] = {}
        for kind, vocabulary in self._vocabularies.items():
            sorted_vocabularies[kind], places[kind] = vocabulary.sorted()
        return InternedFeatures(
            vocabularies=sorted_vocabularies,
            scalars={
                name: places[_VOCABULARY[name]][_joined(self._scalars[name])] for name in _SCALARS
            },
            sets={
                name: (
                    _joined(self._sizes[name]),
                    places[_VOCABULARY[name]][_joined(self._members[name])],
                )
                for name in _SETS
            },
        )


def merged(parts: Sequence[InternedFeatures]) -> InternedFeatures:
    """Several parts' records one after the other, in one set of vocabularies."""
    if len(parts) == 1:
        return parts[0]
    vocabularies: dict[str, list[str]] = {}
    places: dict[str, list[np.ndarray]] = {}
    for kind in parts[0].vocabularies:
        vocabularies[kind], places[kind] = _merged_vocabularies(
            [p.vocabularies[kind] for p in parts]
        )
    return InternedFeatures(
        vocabularies=vocabularies,
        scalars={
            name: np.concatenate(
                [places[_VOCABULARY[name]][k][p.scalars[name]] for k, p in enumerate(parts)]
            )
            for name in _SCALARS
        },
        sets={
            name: (
                np.concatenate([p.sets[name][0] for p in parts]),
                np.concatenate(
                    [places[_VOCABULARY[name]][k][p.sets[name][1]] for k, p in enumerate(parts)]
                ),
            )
            for name in _SETS
        },
    )


def _merged_vocabularies(sorted_lists: list[list[str]]) -> tuple[list[str], list[np.ndarray]]:
    """The distinct values of sorted lists, sorted, and per list each value's place among
    them (at index -1, for "none", -1). The lists are runs for the sort to merge, and
    equal values are neighbours once sorted: no value is hashed, which for a million
    strings fresh from another process cost four times as much."""
    values = list(chain.from_iterable(sorted_lists))
    order = sorted(range(len(values)), key=values.__getitem__)
    ordered = list(map(values.__getitem__, order))
    first = np.fromiter(chain((True,), map(ne, ordered[1:], ordered[:-1])), bool, len(ordered))
    place = np.empty(len(values) + 1, dtype=np.int32)
    place[np.asarray(order, dtype=np.int64)] = np.cumsum(first) - 1
    bounds = np.cumsum([0, *map(len, sorted_lists)])
    return list(compress(ordered, first)), [
        np.append(place[a:b], np.int32(-1)) for a, b in pairwise(bounds.tolist())
    ]


def columns_of(documents: Iterable[Mapping[str, Any]], known: Container[str]) -> FeatureColumns:
    """Columns of features in their stored form."""
    interner = FeatureInterner()
    interner.add_documents(list(documents))
    return FeatureColumns.from_interned(interner.interned(), known)


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int32)


def _date_parts(value: str) -> list[str] | None:
    """(year, month, day) of a date written as three numbers, else None."""
    pieces = value.split("-")
    if len(pieces) == 3 and all(p.isdigit() and p.isascii() for p in pieces):
        return pieces
    return None


def _padded_ids(sizes: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Each record's set (`sizes[k]` ids of `flat` in turn) as a row padded with -1."""
    width = max(int(sizes.max(initial=0)), 1)
    out = np.full((len(sizes), width), -1, dtype=np.int32)
    sizes = sizes.astype(np.int64)
    rows = np.repeat(np.arange(len(sizes)), sizes)
    columns = np.arange(len(flat)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    out[rows, columns] = flat
    return out
