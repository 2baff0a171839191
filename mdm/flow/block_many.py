"""Blocking many records at once: the batch dedupe's keys and candidate pairs as arrays.

Each record is filed under `block.candidate_keys`, built here column by column from
`FeatureColumns` as integer codes (the kind in the top bits, the interned value below), so
that a million records' keys are a few array passes. A key held by more persons than the
block cap is generic: no pairs, and its emails and phones are not compared. Every other key
held by two persons or more is a block; every pair of records of two persons in a block is
a candidate, once however many blocks the two share, with the kinds of the exact keys they
share.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from mdm.flow.block import Key, sound
from mdm.flow.columns import (
    FeatureColumns,
)

KINDS = ("email", "nid", "emp", "phone", "nk", "dob")
_KIND = {kind: code for code, kind in enumerate(KINDS)}
# Bits of the exact kinds a pair shares.
EXACT_BITS = {"email": 1, "nid": 2, "emp": 4}
_SHIFT = 56
_PAYLOAD = (1 << _SHIFT) - 1
_CHAR = 1 << 21  # above every code point


def exact_kinds(bits: int) -> frozenset[str]:
    return frozenset(kind for kind, bit in EXACT_BITS.items() if bits & bit)


_KIND_BITS = np.array([EXACT_BITS.get(kind, 0) for kind in KINDS], dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class RecordKeys:
    """Which record is filed under which key: one row per (record, key), each once."""

    columns: FeatureColumns
    record: np.ndarray  # int64, the record of each row
    key: np.ndarray  # int64, index into `codes`
    codes: np.ndarray  # the distinct key codes, sorted
    sounds: list[str]  # the sound of each name id (`block.sound`)
    sound_of: np.ndarray

    def kind(self, k: np.ndarray) -> np.ndarray:
        return (self.codes[k] >> _SHIFT).astype(np.int8)

    def named(self, k: int) -> Key:
        """The key as `block.candidate_keys` names it."""
        code = int(self.codes[k])
        kind, payload = KINDS[code >> _SHIFT], code & _PAYLOAD
        values = self.columns.values
        if kind == "nk":
            width = len(self.columns.names) + 1
            return kind, f"{self.sounds[payload // width]}:{self.columns.names[payload % width]}"
        if kind == "dob":
            return kind, f"{values['birth'][payload // _CHAR]}:{chr(payload % _CHAR)}"
        return kind, values[kind][payload]


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted. By sorting: numpy's hashing `unique` took four times
    as long on millions of distinct integers."""
    values = np.sort(values)
    if not len(values):
        return values
    return values[np.r_[True, values[1:] != values[:-1]]]


def record_keys(columns: FeatureColumns) -> RecordKeys:
    """Every record's candidate keys (`block.candidate_keys`)."""
    c = columns
    n = len(c.given)
    everyone = np.arange(n, dtype=np.int64)
    sounds: dict[str, int] = {}
    sound_of = np.array([sounds.setdefault(sound(w), len(sounds)) for w in c.names] or [0],
                        dtype=np.int64)  # fmt: skip
    width = len(c.names) + 1
    records: list[np.ndarray] = []
    codes: list[np.ndarray] = []

    def add(kind: str, present: np.ndarray, payload: np.ndarray) -> None:
        records.append(everyone[present])
        codes.append((np.int64(_KIND[kind]) << _SHIFT) | payload[present].astype(np.int64))

    for kind, matrix in (("email", c.emails), ("phone", c.phones)):
        for j in range(matrix.shape[1]):
            add(kind, matrix[:, j] >= 0, matrix[:, j])
    add("nid", c.national_id >= 0, c.national_id)
    add("emp", c.employee_id >= 0, c.employee_id)
    dated = (c.birth >= 0) & (c.given >= 0)
    initial = c.name_initial[np.maximum(c.given, 0)] if len(c.names) else np.zeros(n, np.int32)
    add("dob", dated, c.birth.astype(np.int64) * _CHAR + initial)
    # The family name's words, each with every given key; and read swapped, the given
    # name's words with the family name's first word.
    has_family = c.family >= 0
    for i in range(c.family_words.shape[1]):
        word = c.family_words[:, i]
        for j in range(c.given_keys.shape[1]):
            name = c.given_keys[:, j]
            present = has_family & (word >= 0) & (name >= 0)
            add("nk", present, sound_of[np.maximum(word, 0)] * width + name)
    swapped = has_family & (c.given >= 0)
    for i in range(c.given_words.shape[1]):
        word = c.given_words[:, i]
        present = swapped & (word >= 0)
        add("nk", present, sound_of[np.maximum(word, 0)] * width + c.family_first)

    record = np.concatenate(records) if records else np.zeros(0, np.int64)
    code = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    distinct, key = np.unique(code, return_inverse=True)
    # A record may reach one key twice (a double surname's two words sounding alike).
    rows = _distinct(record * max(len(distinct), 1) + key)
    return RecordKeys(
        columns=columns,
        record=rows // max(len(distinct), 1),
        key=rows % max(len(distinct), 1),
        codes=distinct,
        sounds=list(sounds),
        sound_of=sound_of,
    )


@dataclass(frozen=True, eq=False)
class Blocks:
    """The keys' blocks: which keys are generic, and the candidate pairs."""

    generic: np.ndarray  # key indices held by more persons than the cap
    blocks: int  # keys held by two persons or more, up to the cap (and one changed)
    first: np.ndarray  # candidate pairs of records, first < second
    second: np.ndarray
    exact: np.ndarray  # uint8 bits (EXACT_BITS) of the exact kinds each pair shares


def block(
    keys: RecordKeys,
    owner: np.ndarray,
    cap: int,
    changed: np.ndarray | None = None,
) -> Blocks:
    """Blocks of at most `cap` persons and their pairs of records of two persons, at least
    one of them changed when `changed` (per record) is given."""
    owner = np.asarray(owner, dtype=np.int64)
    key, record = keys.key, keys.record
    n_keys = len(keys.codes)
    persons_of_key = _distinct(key * (int(owner.max(initial=0)) + 1) + owner[record])
    persons = np.bincount(persons_of_key // (int(owner.max(initial=0)) + 1), minlength=n_keys)
    generic = np.flatnonzero(persons > cap)
    kept = (persons >= 2) & (persons <= cap)
    if changed is not None:
        touched = np.bincount(key, weights=changed[record], minlength=n_keys) > 0
        kept &= touched
    rows = np.flatnonzero(kept[key])
    order = rows[np.argsort(key[rows], kind="stable")]
    sorted_keys, sorted_records = key[order], record[order]
    starts = (
        np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        if len(order)
        else (np.zeros(0, np.int64))
    )
    sizes = np.diff(np.r_[starts, len(order)])
    bits_of_key = (
        _KIND_BITS[keys.kind(sorted_keys[starts])] if len(starts) else np.zeros(0, np.uint8)
    )
    n = len(owner)
    # Each pair as one number, (first * n + second) * 8 + the exact kinds' bits, so that
    # one in-place sort puts each pair's copies together: a million persons' blocks make
    # tens of millions of copies, and the arrays of first, second, bits and a sort order
    # held side by side took a gigabyte and a half.
    codes: list[np.ndarray] = []
    for size in np.unique(sizes):
        at = sizes == size
        left, right = np.triu_indices(int(size), 1)
        base = starts[at][:, None]
        x = sorted_records[(base + left).ravel()]
        y = sorted_records[(base + right).ravel()]
        b = np.repeat(bits_of_key[at], len(left))
        keep = owner[x] != owner[y]
        if changed is not None:
            keep &= changed[x] | changed[y]
        x, y = x[keep], y[keep]
        codes.append((np.minimum(x, y) * n + np.maximum(x, y)) * 8 + b[keep])
        del x, y, b, keep
    first, second, exact = _distinct_pairs(codes, n)
    return Blocks(generic=generic, blocks=int(kept.sum()), first=first, second=second,
                  exact=exact)  # fmt: skip


def _distinct_pairs(codes: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair once, with the exact kinds of all the blocks it came from. Empties
    `codes` as it goes."""
    code = np.concatenate(codes) if codes else np.zeros(0, np.int64)
    codes.clear()
    if not len(code):
        return code, code, np.zeros(0, np.uint8)
    code.sort()
    bit = code.astype(np.uint8) & 7  # the low byte, then its three bits
    code >>= 3
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    exact = np.bitwise_or.reduceat(bit, starts)
    del bit
    distinct = code[starts]
    del code
    return distinct // n, distinct % n, exact.astype(np.uint8)


def without_generic(columns: FeatureColumns, generic: Iterable[Key]) -> FeatureColumns:
    """The columns as scored: the emails and phones of generic keys blanked
    (`block.without_generic`)."""
    out = {"email": columns.emails, "phone": columns.phones}
    for kind in out:
        known = columns.values[kind]  # sorted
        ids = []
        for key_kind, value in generic:
            if key_kind == kind:
                at = bisect_left(known, value)
                if at < len(known) and known[at] == value:
                    ids.append(at)
        if ids:
            matrix = out[kind].copy()
            matrix[np.isin(matrix, np.array(ids, dtype=matrix.dtype))] = -1
            out[kind] = matrix
    return replace(columns, emails=out["email"], phones=out["phone"])
