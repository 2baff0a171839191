"""A source record as posted, and as normalised for matching."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from mdm.model.errors import FieldIssue


@dataclass(frozen=True, slots=True)
class IncomingRecord:
    """What an upstream system sends: its own id for the record and the record's fields."""

    source: str
    source_id: str
    data: Mapping[str, Any]
    updated_at: datetime | None = None
    person_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class MatchFeatures:
    """The comparison-ready view of a record: folded names, normalised identifiers."""

    source: str
    given: str | None = None
    family: str | None = None
    middle: str | None = None
    # The folded given name plus the canonical names it is a nickname of.
    given_keys: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    birth_date: str | None = None
    national_id_index: str | None = None
    employee_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "given": self.given,
            "family": self.family,
            "middle": self.middle,
            "given_keys": sorted(self.given_keys),
            "emails": sorted(self.emails),
            "phones": sorted(self.phones),
            "birth_date": self.birth_date,
            "national_id_index": self.national_id_index,
            "employee_id": self.employee_id,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> MatchFeatures:
        return cls(
            source=raw["source"],
            given=raw.get("given"),
            family=raw.get("family"),
            middle=raw.get("middle"),
            given_keys=frozenset(raw.get("given_keys") or ()),
            emails=frozenset(raw.get("emails") or ()),
            phones=frozenset(raw.get("phones") or ()),
            birth_date=raw.get("birth_date"),
            national_id_index=raw.get("national_id_index"),
            employee_id=raw.get("employee_id"),
        )


@dataclass(frozen=True, slots=True)
class NormalisedRecord:
    """A record after mapping and normalisation.

    `attributes` is what the golden record is built from (display spellings, E.164 phones,
    ISO dates); `features` is what the matcher compares; `warnings` name every optional
    value that was dropped because it could not be parsed.
    """

    incoming: IncomingRecord
    attributes: dict[str, Any]
    features: MatchFeatures
    warnings: tuple[FieldIssue, ...] = field(default=())
    # What the source's profile did to the payload: enum source values, truncations, pay
    # conversions. Kept with the record so every canonical value can be traced back.
    mapping: dict[str, Any] = field(default_factory=dict)
    # Locations in the payload of values never stored in clear (national ids).
    sealed: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        return self.incoming.source

    @property
    def source_id(self) -> str:
        return self.incoming.source_id
