"""Blocking: the keys under which a record is filed and its candidates are found.

Exact keys (email, national-id index, employee id) decide on their own (DESIGN 3, rule 2);
the other keys only bring candidates to the scorer. Name keys pair the family name's sound
with the given name and every canonical name it is a nickname of, so "Bill Smith" and
"William Smyth" share one. A typo in the given name is not blocked on: with no other
shared identifier such a pair is a name-only match, which never merges automatically, and
with one (phone, birth date, email) that identifier's key brings the candidate.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import replace
from functools import lru_cache

import jellyfish

from mdm.model.record import MatchFeatures

Key = tuple[str, str]
EXACT_KINDS = frozenset(("email", "nid", "emp"))


@lru_cache(maxsize=16384)
def exact_keys(f: MatchFeatures) -> frozenset[Key]:
    keys: set[Key] = {("email", e) for e in f.emails}
    if f.national_id_index:
        keys.add(("nid", f.national_id_index))
    if f.employee_id:
        keys.add(("emp", f.employee_id))
    return frozenset(keys)


@lru_cache(maxsize=65536)
def sound(token: str) -> str:
    return jellyfish.metaphone(token) or token


def name_keys(family: str | None, given_keys: frozenset[str]) -> set[Key]:
    if not family:
        return set()
    # Each part of a double surname ("garcia lopez") is filed, as either may be dropped.
    return {("nk", f"{sound(token)}:{name}") for token in family.split(" ") for name in given_keys}


# Keys are asked for again and again while a batch is resolved (each time a person gains a
# record, for all its records): they are a pure function of the features, so cached.
@lru_cache(maxsize=16384)
def blocking_keys(f: MatchFeatures) -> frozenset[Key]:
    """Every key a record is filed under."""
    keys = set(exact_keys(f))
    keys.update(("phone", p) for p in f.phones)
    keys.update(name_keys(f.family, f.given_keys))
    if f.birth_date and f.given:
        keys.add(("dob", f"{f.birth_date}:{f.given[0]}"))
    return frozenset(keys)


@lru_cache(maxsize=16384)
def candidate_keys(f: MatchFeatures) -> frozenset[Key]:
    """The keys to look candidates up by: the filed keys plus the given/family swap."""
    keys = set(blocking_keys(f))
    if f.given and f.family:
        swapped_given = f.family.split(" ")[0]
        keys.update(name_keys(f.given, frozenset({swapped_given})))
    return frozenset(keys)


def without_generic(f: MatchFeatures, generic: Container[Key]) -> MatchFeatures:
    """The record as scored: an email or phone shared by a crowd (a placeholder, a
    switchboard) says nothing about identity, so it is not compared at all."""
    emails = frozenset(e for e in f.emails if ("email", e) not in generic)
    phones = frozenset(p for p in f.phones if ("phone", p) not in generic)
    if len(emails) == len(f.emails) and len(phones) == len(f.phones):
        return f
    return replace(f, emails=emails, phones=phones)
