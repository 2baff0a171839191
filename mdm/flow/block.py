"""Blocking: the keys under which a record is filed and its candidates are found.

Exact keys (email, national-id index, employee id) decide on their own (DESIGN 3, rule 2);
the other keys only bring candidates to the scorer.
"""

from __future__ import annotations

import jellyfish

from mdm.model.record import MatchFeatures

Key = tuple[str, str]
EXACT_KINDS = frozenset(("email", "nid", "emp"))


def exact_keys(f: MatchFeatures) -> set[Key]:
    keys: set[Key] = {("email", e) for e in f.emails}
    if f.national_id_index:
        keys.add(("nid", f.national_id_index))
    if f.employee_id:
        keys.add(("emp", f.employee_id))
    return keys


def _name_keys(given: str | None, family: str | None, given_keys: frozenset[str]) -> set[Key]:
    if not family:
        return set()
    keys: set[Key] = set()
    for token in family.split(" "):
        sound = jellyfish.metaphone(token) or token
        if given:
            keys.add(("fi", f"{sound}:{given[0]}"))
        keys.update(("nk", f"{sound}:{name}") for name in given_keys)
    return keys


def blocking_keys(f: MatchFeatures) -> set[Key]:
    """Every key a record is filed under."""
    keys = exact_keys(f)
    keys.update(("phone", p) for p in f.phones)
    keys.update(_name_keys(f.given, f.family, f.given_keys))
    full_name = " ".join(part for part in (f.given, f.family) if part)
    if full_name:
        keys.add(("name", full_name))
    if f.birth_date and f.given:
        keys.add(("dob", f"{f.birth_date}:{f.given[0]}"))
    return keys


def candidate_keys(f: MatchFeatures) -> set[Key]:
    """The keys to look candidates up by: the filed keys plus the given/family swap."""
    keys = blocking_keys(f)
    if f.given and f.family:
        swapped_given = f.family.split(" ")[0]
        keys.update(_name_keys(swapped_given, f.given, frozenset({swapped_given})))
    return keys
