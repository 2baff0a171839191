"""A person and its linked source records, as the registry holds them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple
from uuid import UUID

from mdm.model.record import MatchFeatures


class PersonStatus(StrEnum):
    ACTIVE = "active"
    MERGED = "merged"
    ERASED = "erased"


class LinkSource(StrEnum):
    AUTO = "AUTO"
    MANUAL = "MANUAL"


class LinkState(StrEnum):
    """HAPI FHIR MDM's vocabulary: how sure the registry is of a record's link."""

    MATCH = "MATCH"
    POSSIBLE_MATCH = "POSSIBLE_MATCH"
    NO_MATCH = "NO_MATCH"


# Why a review item closed without a steward: its two persons became one.
MERGED_NOTE = "merged automatically: a record linked both persons"


@dataclass(slots=True)
class LinkedRecord:
    """A source record and its link to a person."""

    id: UUID
    source: str
    source_id: str
    person_id: UUID
    attributes: dict[str, Any]
    features: MatchFeatures
    source_updated_at: datetime | None
    received_at: datetime
    version: int
    link_source: LinkSource
    link_state: LinkState
    link_score: float
    link_rule: str
    linked_at: datetime
    explanation: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] | None = None  # loaded only where it is shown

    @property
    def effective_updated_at(self) -> datetime:
        return self.source_updated_at or self.received_at


class RecordValues(NamedTuple):
    """What a merge reads of a record: the values its person's golden record is built
    from (`updated_at`: the source's time, else the registry's receipt time) and its
    features (its person's keys)."""

    id: UUID
    source: str
    source_id: str
    version: int
    attributes: dict[str, Any]
    updated_at: datetime
    features: MatchFeatures


@dataclass(slots=True)
class PersonState:
    """A person as loaded into a unit of work: mutable while the work is under way."""

    id: UUID
    status: PersonStatus
    version: int
    created_at: datetime
    updated_at: datetime
    golden: dict[str, Any]
    lineage: dict[str, Any]
    records: list[LinkedRecord]
    merged_into: UUID | None = None
    aliases: list[UUID] = field(default_factory=list)
    # Values stewards accepted for conflicting fields: {field: {source, source_id, value}}
    choices: dict[str, Any] = field(default_factory=dict)
    # The keys of the conflicts already put to a steward: each is raised once.
    raised: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class ReviewItem:
    id: UUID
    kind: str
    status: str
    person_a: UUID
    person_b: UUID
    score: float
    explanation: dict[str, Any]
    created_at: datetime
    source: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    decision: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: UUID
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    correlation_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Erasure:
    """The tombstone of an erased person."""

    person_id: UUID
    erased_at: datetime
    requested_by: str
    reason: str
    records: tuple[tuple[str, str], ...]  # (source, source_id) of every record it had
    aliases: tuple[UUID, ...]  # ids merged into it, erased with it


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: UUID
    type: str
    person_id: UUID | None
    payload: dict[str, Any]
    created_at: datetime
