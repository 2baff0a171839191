"""Compare two records attribute by attribute, each comparison landing on a level."""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import NamedTuple

from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from mdm.model.record import MatchFeatures


class Comparison(NamedTuple):
    """One attribute's comparison level. A named tuple rather than a frozen dataclass:
    six are made for every record pair scored, and a tuple is built twice as fast."""

    attribute: str
    level: str
    similarity: float | None = None
    # The agreeing names ("given|family", either part may be empty), for the
    # term-frequency adjustment of name levels.
    value: str | None = None


# Jaro-Winkler from which a spelling that is not a known name counts as a typo.
TYPO = 0.88


# Levels that count as "another attribute agrees" for the name-only guard.
AGREEING_LEVELS = frozenset(("exact", "transposed", "off_by_one"))


Similarity = Callable[[str, str], float]


def jaro_winkler(a: str, b: str) -> float:
    """The string similarity of every name comparison. The batch path passes its own,
    backed by a matrix computed for a whole block at once, giving the same values."""
    return 1.0 if a == b else JaroWinkler.similarity(a, b)


def _given_similarity(a: MatchFeatures, b: MatchFeatures, jw: Similarity) -> float:
    if not a.given or not b.given:
        return 0.0
    if a.given_keys & b.given_keys:
        return 1.0
    first_a, first_b = a.given.split(" ")[0], b.given.split(" ")[0]
    # An initial ("J.") is consistent with any name it starts, but is weak evidence.
    if (len(first_a) == 1 or len(first_b) == 1) and first_a[0] == first_b[0]:
        return 0.9
    return jw(first_a, first_b)


def _family_similarity(x: str, y: str, jw: Similarity) -> float:
    # Double surnames are often cut to one part ("garcia lopez" / "garcia").
    best = jw(x, y)
    if best < 1.0 and " " in x + y:
        parts_x, parts_y = x.split(" "), y.split(" ")
        if set(parts_x) & set(parts_y):
            best = max(best, 0.97)
    return best


def name_similarity(a: MatchFeatures, b: MatchFeatures, jw: Similarity = jaro_winkler) -> float:
    """How well two names agree, in [0, 1]: the weaker of given and family name similarity,
    best over the given/family swap, with nicknames counting as the same given name.

    The weaker part rather than the whole string, because full-name Jaro-Winkler scores
    "john smith" / "jane smith" at 0.85: a shared surname is not a shared identity.
    """
    if a.family and b.family:
        straight_family = _family_similarity(a.family, b.family, jw)
        if a.given and b.given:
            straight = min(_given_similarity(a, b, jw), straight_family)
            swapped = min(jw(a.given, b.family), jw(a.family, b.given))
            return max(straight, swapped)
        return straight_family
    if a.given and b.given:
        return _given_similarity(a, b, jw)
    # One record has only a given name, the other only a family name.
    return jw(a.given or a.family or "", b.given or b.family or "")


def _first(given: str) -> str:
    return given.split(" ")[0]


def _given_agreement(
    a: str,
    b: str,
    keys_a: frozenset[str],
    keys_b: frozenset[str],
    known: Container[str],
    jw: Similarity,
) -> str:
    """exact | nickname | close | initial | other_name | differs, for two folded given
    names; other_name when both are known names (another person's name, not a typo)."""
    first_a, first_b = _first(a), _first(b)
    if first_a == first_b:
        return "exact"
    if keys_a & keys_b:
        return "nickname"
    if (len(first_a) == 1 or len(first_b) == 1) and first_a[0] == first_b[0]:
        return "initial"
    # Two real names a letter apart (robert / roberta, michael / michelle) are two people;
    # a typo is a spelling that is not a name of its own.
    if first_a in known and first_b in known:
        return "other_name"
    if jw(first_a, first_b) >= TYPO or DamerauLevenshtein.distance(first_a, first_b) <= 1:
        return "close"
    # A spelling that is no known name and far from the other ("swra" / "sarah"): a
    # garbled name or another name, the rest of the evidence must tell.
    return "differs"


def _family_agreement(a: str, b: str, jw: Similarity) -> str:
    """exact | close | partial | differs, for two folded family names."""
    if a == b:
        return "exact"
    if jw(a, b) >= TYPO:
        return "close"
    # Double surnames are often cut to one part ("garcia lopez" / "garcia").
    if " " in a + b and set(a.split(" ")) & set(b.split(" ")):
        return "partial"
    return "differs"


def _name_level(given: str | None, family: str | None) -> str:
    if given is None:
        return "family_only" if family == "exact" else "differs"
    if family is None:
        return "given_only" if given in ("exact", "nickname") else "differs"
    if given == "exact" and family == "exact":
        return "exact"
    if given == "nickname" and family == "exact":
        return "nickname"
    if given in ("exact", "nickname", "close") and family in ("exact", "close", "partial"):
        return "typo"
    if given == "initial" and family in ("exact", "close", "partial"):
        return "initial"
    if given in ("exact", "nickname"):
        return "family_changed"
    if family in ("exact", "close", "partial"):
        return "relative" if given == "other_name" else "given_mismatch"
    return "differs"


def compare_names(
    a: MatchFeatures,
    b: MatchFeatures,
    known_given: Container[str] = frozenset(),
    jw: Similarity = jaro_winkler,
) -> Comparison:
    """One comparison for the whole name, because its parts are not independent evidence:
    a shared family name with different given names is a relative, not half a match.

    Levels: exact, nickname, typo (a misspelling or a cut double surname), initial,
    family_changed (marriage), given_mismatch (the family name agrees, one given name is
    no known name: garbled or another), relative (the family name agrees, the given names
    are two known names), family_only / given_only (one side lacks a part), differs.
    The straight or swapped order, whichever agrees better, is compared. `value` carries
    the agreeing names for the term-frequency adjustment.
    """
    given = (
        _given_agreement(a.given, b.given, a.given_keys, b.given_keys, known_given, jw)
        if a.given and b.given
        else None
    )
    family = _family_agreement(a.family, b.family, jw) if a.family and b.family else None
    level = _name_level(given, family)
    if level not in ("exact", "nickname") and a.given and a.family and b.given and b.family:
        # Swapped, either cross pair can play the given name: a's given against b's
        # family, or b's given against a's family. Both are tried so that comparing a with
        # b and b with a agree (the order records arrive in must not decide a match).
        none: frozenset[str] = frozenset()
        swapped = min(
            _name_level(
                _given_agreement(a.given, b.family, none, none, known_given, jw),
                _family_agreement(a.family, b.given, jw),
            ),
            _name_level(
                _given_agreement(a.family, b.given, none, none, known_given, jw),
                _family_agreement(a.given, b.family, jw),
            ),
            key=_RANK.__getitem__,
        )
        if _RANK[swapped] < _RANK[level]:
            return Comparison("name", swapped, round(name_similarity(a, b, jw), 6))
    value = None
    # The agreeing name, the same whichever record comes first (nicknames differ: the
    # first in alphabetical order stands for both).
    given_name = min(_first(a.given or ""), _first(b.given or ""))
    if level == "exact":
        value = f"{given_name}|{a.family}"
    elif level in ("nickname", "family_only"):
        value = f"|{a.family}"
    elif level in ("family_changed", "given_only"):
        value = f"{given_name}|"
    return Comparison("name", level, round(name_similarity(a, b, jw), 6), value)


# Name levels from the strongest agreement to the weakest: a swapped reading of the names
# replaces the straight one only when it ranks higher.
NAME_LEVELS = (
    "exact", "nickname", "typo", "family_changed", "initial", "family_only", "given_only",
    "given_mismatch", "relative", "differs",
)  # fmt: skip
_RANK = {level: rank for rank, level in enumerate(NAME_LEVELS)}


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


def compare(
    a: MatchFeatures,
    b: MatchFeatures,
    known_given: Container[str] = frozenset(),
    jw: Similarity = jaro_winkler,
) -> tuple[Comparison, ...]:
    """All attribute comparisons of two records, in a fixed order."""
    employee = (
        _compare_value("employee_id", a.employee_id, b.employee_id)
        if a.source == b.source
        else Comparison("employee_id", "missing")
    )
    return (
        compare_names(a, b, known_given, jw),
        _compare_sets("email", a.emails, b.emails),
        _compare_sets("phone", a.phones, b.phones),
        compare_birth_dates(a.birth_date, b.birth_date),
        _compare_value("national_id", a.national_id_index, b.national_id_index),
        employee,
    )
