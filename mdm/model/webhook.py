"""Webhook subscriptions and their deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

EVENT_TYPES = (
    "person.created",
    "person.updated",
    "person.merged",
    "person.split",
    "person.hired",
    "person.employee_id_assigned",
    "person.erased",
    "person.consent_changed",
    "record.linked",
    "record.updated",
    "review.opened",
    "review.resolved",
    "alert.raised",
)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: UUID
    url: str
    events: tuple[str, ...]  # ("*",) for every type
    system: str | None  # the source key of the system it feeds: no echo, no owned fields
    fields: tuple[str, ...] | None  # golden fields it receives; None: every allowed field
    scopes: tuple[str, ...]
    secret: str
    status: str  # active | disabled
    created_at: datetime
    updated_at: datetime
    created_by: str
    disabled_reason: str | None = None

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


@dataclass(frozen=True, slots=True)
class Delivery:
    id: UUID
    subscription_id: UUID
    event_seq: int
    event_id: UUID
    event_type: str
    person_id: UUID | None
    payload: dict[str, Any]
    status: str  # pending | delivering | delivered | dead | disabled
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    lease_until: datetime | None = None
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """An outbox event as the fan-out reads it."""

    seq: int
    id: UUID
    type: str
    person_id: UUID | None
    payload: dict[str, Any]
    created_at: datetime
