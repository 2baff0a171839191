"""Survivorship: build a person's golden record, field by field, from its source records.

Each canonical field has a rule (`FieldRule`): a strategy, the source kinds that own the
field in priority order, and flags. The golden record is a pure function of the linked
records, the rules and the values stewards accepted: recomputing it from scratch always
gives what is stored, whatever order the record versions arrived in. Time is the source's
`updated_at` (the registry's receipt time only for a source that sends none); ties are
broken by source and source id, never by arrival.

Sensitive changes are guarded rather than applied: a value that differs from an immutable
field's value, or from the owner's compensation by more than the tolerance, is returned as
a `Conflict` for a steward, and the golden value stays until one is accepted.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

MULTI_VALUED = ("emails", "phones")


class Strategy(StrEnum):
    SOURCE_PRIORITY = "source_priority"  # the owners in order, most recent within a kind
    MOST_RECENT = "most_recent"
    MOST_FREQUENT = "most_frequent"  # held by most records; ties to the most recent
    UNION = "union"  # every value; the primary is the owners' most recent
    FIRST_SEEN = "first_seen"  # the earliest value: for fields that never change


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How the golden value of a field is chosen.

    `owners` are source kinds, highest priority first: a kind outside them is used only
    when no owner holds a value. `immutable`: once set, a different value is a conflict,
    never applied. `tolerance`: a relative difference from the chosen value, beyond which
    a value from a non-owner is a conflict (compensation: 2%).
    """

    strategy: Strategy
    owners: tuple[str, ...] = ()
    immutable: bool = False
    sensitive: bool = False
    tolerance: float | None = None


NAME_OWNERS = ("hris", "ats", "crm")
DEFAULT_RULES: Mapping[str, FieldRule] = {
    "given_name": FieldRule(Strategy.SOURCE_PRIORITY, NAME_OWNERS),
    "middle_name": FieldRule(Strategy.SOURCE_PRIORITY, NAME_OWNERS),
    "family_name": FieldRule(Strategy.SOURCE_PRIORITY, NAME_OWNERS),
    "emails": FieldRule(Strategy.UNION, NAME_OWNERS),
    "phones": FieldRule(Strategy.UNION, NAME_OWNERS),
    "country": FieldRule(Strategy.MOST_RECENT),
    "birth_date": FieldRule(Strategy.SOURCE_PRIORITY, ("hris", "ats"), sensitive=True),
    "national_id": FieldRule(Strategy.SOURCE_PRIORITY, ("hris",), sensitive=True),
    "employee_id": FieldRule(Strategy.SOURCE_PRIORITY, ("hris",)),
    "hire_date": FieldRule(Strategy.FIRST_SEEN, ("hris", "ats"), immutable=True),
    "department": FieldRule(Strategy.SOURCE_PRIORITY, ("hris",)),
    "cost_center": FieldRule(Strategy.SOURCE_PRIORITY, ("hris",)),
    "job_title": FieldRule(Strategy.SOURCE_PRIORITY, ("hris", "ats")),
    "compensation": FieldRule(Strategy.SOURCE_PRIORITY, ("ats",), sensitive=True, tolerance=0.02),
    "status": FieldRule(Strategy.MOST_RECENT),
    "interview_feedback": FieldRule(Strategy.SOURCE_PRIORITY, ("ats",), sensitive=True),
}
FALLBACK_RULE = FieldRule(Strategy.MOST_RECENT)


_LIST_OF = {"email": "emails", "phone": "phones"}


def field_rule(name: str, rules: Mapping[str, FieldRule] = DEFAULT_RULES) -> FieldRule:
    """The rule `build_golden` applies to a field (`email` and `phone` feed the lists)."""
    return rules.get(_LIST_OF.get(name, name), FALLBACK_RULE)


@dataclass(frozen=True, slots=True)
class RecordView:
    source: str
    source_id: str
    version: int
    attributes: Mapping[str, Any]
    updated_at: datetime
    kind: str | None = None  # crm | ats | hris; None for a source no longer configured


class Candidate(NamedTuple):
    """One record's value for a field; a named tuple, built several times per record and
    field on every golden record, for the speed of making one."""

    value: Any
    source: str
    source_id: str
    version: int
    updated_at: datetime
    kind: str | None
    # The record's origin as lineage shows it, built once per record, not per field.
    shown: dict[str, Any] | None = None

    def origin(self) -> dict[str, Any]:
        if self.shown is not None:
            return self.shown
        return _origin_of(self.source, self.source_id, self.kind, self.version, self.updated_at)

    def described(self) -> dict[str, Any]:
        return {"value": self.value, **self.origin()}

    @property
    def identity(self) -> tuple[str, str]:
        return (self.source, self.source_id)


@dataclass(frozen=True, slots=True)
class Choice:
    """A value a steward accepted for a field: the record it came from and the value."""

    source: str
    source_id: str
    value: Any

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "source_id": self.source_id, "value": self.value}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Choice:
        return cls(raw["source"], raw["source_id"], raw["value"])


@dataclass(frozen=True, slots=True)
class Conflict:
    """A value the rules would not apply silently: `kept` stays golden until a steward
    accepts one of the two."""

    field: str
    kept: Candidate
    other: Candidate

    @property
    def key(self) -> str:
        """The same pair, whichever side is kept: a conflict a steward resolved stays
        resolved."""
        # A digest, not the values: the key is stored and shown with the review item, and
        # the values may be pay or a national id.
        sides = sorted(
            f"{c.source}\x1f{c.source_id}\x1f{_canonical(c.value)!r}"
            for c in (self.kept, self.other)
        )
        digest = hashlib.sha256("\x1e".join(sides).encode()).hexdigest()[:32]
        return f"{self.field}:{digest}"


@dataclass(slots=True)
class Golden:
    attributes: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)


def build_golden(
    records: Iterable[RecordView],
    rules: Mapping[str, FieldRule] = DEFAULT_RULES,
    choices: Mapping[str, Choice] | None = None,
) -> Golden:
    """The golden attributes, their lineage and the conflicts; a pure function."""
    candidates: dict[str, list[Candidate]] = {}
    for record in records:
        shown = _origin_of(
            record.source, record.source_id, record.kind, record.version, record.updated_at
        )
        for name, value in record.attributes.items():
            if value is None or value == [] or value == "":
                continue
            candidates.setdefault(name, []).append(
                Candidate(
                    value,
                    record.source,
                    record.source_id,
                    record.version,
                    record.updated_at,
                    record.kind,
                    shown,
                )
            )
    out = Golden()
    for name in sorted(candidates):
        rule = field_rule(name, rules)
        found = candidates[name]
        if rule.strategy is Strategy.UNION or name in MULTI_VALUED:
            _union(name, rule, found, out)
            continue
        if len(found) == 1:
            # Most fields of most persons have one value: no ranking, no conflict.
            chosen, why = found[0], _single_rule(rule, found[0])
        else:
            chosen, why = _choose(rule, found)
        choice = choices.get(name) if choices else None
        if choice is not None:
            accepted = next(
                (
                    c
                    for c in found
                    if (c.source, c.source_id) == (choice.source, choice.source_id)
                    and _canonical(c.value) == _canonical(choice.value)
                ),
                None,
            )
            if accepted is not None:
                chosen, why = accepted, "steward_choice"
        out.attributes[name] = chosen.value
        out.lineage[name] = {
            "rule": why,
            **chosen.origin(),
            "candidates": [c.described() for c in _by_recency(found) if c is not chosen]
            if len(found) > 1
            else [],
        }
        if len(found) > 1:
            for other in _conflicting(rule, chosen, found):
                out.conflicts.append(Conflict(name, chosen, other))
    return out


def _single_rule(rule: FieldRule, only: Candidate) -> str:
    """The rule name `_choose` would give a lone candidate."""
    strategy = rule.strategy
    if strategy is Strategy.MOST_RECENT or (
        strategy is Strategy.SOURCE_PRIORITY and not rule.owners
    ):
        return "most_recent"
    if strategy is Strategy.MOST_FREQUENT:
        return "most_frequent"
    owned = only.kind in rule.owners
    if strategy is Strategy.FIRST_SEEN:
        return "first_seen" if owned or not rule.owners else "first_seen_fallback"
    return "source_priority" if owned else "source_priority_fallback"


def _origin_of(
    source: str, source_id: str, kind: str | None, version: int, at: datetime
) -> dict[str, Any]:
    return {
        "source": source,
        "source_id": source_id,
        "kind": kind,
        "version": version,
        "updated_at": at.isoformat(),
    }


def _recency(c: Candidate) -> tuple[datetime, str, str]:
    return (c.updated_at, c.source, c.source_id)


def _by_recency(found: list[Candidate]) -> list[Candidate]:
    return sorted(found, key=_recency, reverse=True)


def _owned(rule: FieldRule, found: list[Candidate]) -> tuple[list[Candidate], str | None]:
    """The candidates of the highest-priority owner kind holding a value, and that kind;
    every candidate (and None) when no owner holds one."""
    for kind in rule.owners:
        of_kind = [c for c in found if c.kind == kind]
        if of_kind:
            return of_kind, kind
    return found, None


def _choose(rule: FieldRule, found: list[Candidate]) -> tuple[Candidate, str]:
    strategy = rule.strategy
    if strategy is Strategy.MOST_RECENT:
        return max(found, key=_recency), strategy.value
    if strategy is Strategy.MOST_FREQUENT:
        counts = Counter(_canonical(c.value) for c in found)
        return max(found, key=lambda c: (counts[_canonical(c.value)], _recency(c))), "most_frequent"
    if strategy is Strategy.FIRST_SEEN:
        # Once set by any owner, never replaced: the earliest owner's value, whichever
        # owner it came from (an ATS hire date set first is not overwritten by the HRIS).
        owned = [c for c in found if c.kind in rule.owners]
        chosen = min(owned or found, key=_recency)
        return chosen, "first_seen" if owned or not rule.owners else "first_seen_fallback"
    pool, kind = _owned(rule, found)
    chosen = max(pool, key=_recency)
    if not rule.owners:
        return chosen, "most_recent"
    return chosen, "source_priority" if kind else "source_priority_fallback"


def _conflicting(rule: FieldRule, chosen: Candidate, found: list[Candidate]) -> list[Candidate]:
    if rule.immutable:
        return _distinct_values(c for c in found if _canonical(c.value) != _canonical(chosen.value))
    if rule.tolerance is not None:
        return _distinct_values(
            c
            for c in found
            if c.kind not in rule.owners and _differs(chosen.value, c.value, rule.tolerance)
        )
    return []


def _distinct_values(found: Iterable[Candidate]) -> list[Candidate]:
    """One conflict per record: its current value."""
    seen: dict[tuple[str, str], Candidate] = {}
    for c in sorted(found, key=_recency):
        seen[c.identity] = c
    return list(seen.values())


def _differs(kept: Any, other: Any, tolerance: float) -> bool:
    """Whether two values differ beyond the relative tolerance. Pay in another currency or
    another period cannot be compared without a guess, so it differs."""
    if isinstance(kept, Mapping) and isinstance(other, Mapping):
        if (kept.get("currency"), kept.get("period")) != (
            other.get("currency"),
            other.get("period"),
        ):
            return True
        kept, other = kept.get("amount"), other.get("amount")
    if isinstance(kept, int | float) and isinstance(other, int | float):
        base = max(abs(kept), abs(other))
        return base > 0 and abs(kept - other) / base > tolerance
    return _canonical(kept) != _canonical(other)


def _union(name: str, rule: FieldRule, found: list[Candidate], out: Golden) -> None:
    """Every value, each once; the primary (first) is the owners' most recent value, the
    rest follow from the most recent."""
    items: list[Candidate] = [
        Candidate(item, c.source, c.source_id, c.version, c.updated_at, c.kind, c.shown)
        for c in found
        for item in c.value
    ]
    pool, _ = _owned(rule, items)
    primary = max(pool, key=_recency)
    ordered = [primary, *_by_recency([c for c in items if c is not primary])]
    values: list[Any] = []
    described: list[dict[str, Any]] = []
    for c in ordered:
        if c.value not in values:
            values.append(c.value)
            described.append(c.described())
    out.attributes[name] = values
    out.lineage[name] = {"rule": "union", "primary": described[0], "values": described}


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_canonical(v) for v in value)
    return value
