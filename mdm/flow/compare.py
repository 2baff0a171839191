"""Compare two records attribute by attribute, each comparison landing on a level."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz.distance import JaroWinkler

from mdm.model.record import MatchFeatures


@dataclass(frozen=True, slots=True)
class Comparison:
    attribute: str
    level: str
    similarity: float | None = None


# Levels that count as "another attribute agrees" for the name-only guard.
AGREEING_LEVELS = frozenset(("exact", "transposed", "off_by_one"))


def _jw(a: str, b: str) -> float:
    return 1.0 if a == b else JaroWinkler.similarity(a, b)


def _given_similarity(a: MatchFeatures, b: MatchFeatures) -> float:
    if not a.given or not b.given:
        return 0.0
    if a.given_keys & b.given_keys:
        return 1.0
    first_a, first_b = a.given.split(" ")[0], b.given.split(" ")[0]
    # An initial ("J.") is consistent with any name it starts, but is weak evidence.
    if (len(first_a) == 1 or len(first_b) == 1) and first_a[0] == first_b[0]:
        return 0.9
    return _jw(first_a, first_b)


def _family_similarity(x: str, y: str) -> float:
    # Double surnames are often cut to one part ("garcia lopez" / "garcia").
    best = _jw(x, y)
    if best < 1.0 and " " in x + y:
        parts_x, parts_y = x.split(" "), y.split(" ")
        if set(parts_x) & set(parts_y):
            best = max(best, 0.97)
    return best


def name_similarity(a: MatchFeatures, b: MatchFeatures) -> float:
    """How well two names agree, in [0, 1]: the weaker of given and family name similarity,
    best over the given/family swap, with nicknames counting as the same given name.

    The weaker part rather than the whole string, because full-name Jaro-Winkler scores
    "john smith" / "jane smith" at 0.85: a shared surname is not a shared identity.
    """
    if a.family and b.family:
        straight_family = _family_similarity(a.family, b.family)
        if a.given and b.given:
            straight = min(_given_similarity(a, b), straight_family)
            swapped = min(_jw(a.given, b.family), _jw(a.family, b.given))
            return max(straight, swapped)
        return straight_family
    if a.given and b.given:
        return _given_similarity(a, b)
    # One record has only a given name, the other only a family name.
    return _jw(a.given or a.family or "", b.given or b.family or "")


def compare_names(a: MatchFeatures, b: MatchFeatures) -> Comparison:
    similarity = name_similarity(a, b)
    exact_family = a.family == b.family
    exact_given = bool(a.given and b.given and (a.given_keys & b.given_keys))
    if similarity >= 0.999 and a.given == b.given and exact_family:
        level = "exact"
    elif similarity >= 0.999 and exact_given:
        level = "nickname"
    elif similarity >= 0.94:
        level = "close"
    elif similarity >= 0.88:
        level = "similar"
    else:
        level = "differs"
    return Comparison("name", level, round(similarity, 6))


def _compare_sets(attribute: str, a: frozenset[str], b: frozenset[str]) -> Comparison:
    if not a or not b:
        return Comparison(attribute, "missing")
    return Comparison(attribute, "exact" if a & b else "differs")


def _compare_value(attribute: str, a: str | None, b: str | None) -> Comparison:
    if not a or not b:
        return Comparison(attribute, "missing")
    return Comparison(attribute, "exact" if a == b else "differs")


def compare_birth_dates(a: str | None, b: str | None) -> Comparison:
    if not a or not b:
        return Comparison("birth_date", "missing")
    if a == b:
        return Comparison("birth_date", "exact")
    ya, ma, da = a.split("-")
    yb, mb, db = b.split("-")
    if ya == yb and ma == db and da == mb:
        return Comparison("birth_date", "transposed")
    # One digit off in one part: a keying error, not a different person.
    if (ya, ma) == (yb, mb) and abs(int(da) - int(db)) == 1:
        return Comparison("birth_date", "off_by_one")
    if (ma, da) == (mb, db) and abs(int(ya) - int(yb)) == 1:
        return Comparison("birth_date", "off_by_one")
    return Comparison("birth_date", "differs")


def compare(a: MatchFeatures, b: MatchFeatures) -> tuple[Comparison, ...]:
    """All attribute comparisons of two records, in a fixed order."""
    employee = (
        _compare_value("employee_id", a.employee_id, b.employee_id)
        if a.source == b.source
        else Comparison("employee_id", "missing")
    )
    return (
        compare_names(a, b),
        _compare_sets("email", a.emails, b.emails),
        _compare_sets("phone", a.phones, b.phones),
        compare_birth_dates(a.birth_date, b.birth_date),
        _compare_value("national_id", a.national_id_index, b.national_id_index),
        employee,
    )
