"""A record the registry refused, kept verbatim until it is replayed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Rejection:
    id: UUID
    source: str | None
    source_id: str | None
    raw: dict[str, Any]  # the envelope as posted: source, source_id, data, updated_at...
    errors: list[dict[str, Any]]
    correlation_id: str | None
    created_at: datetime
    status: str = "open"  # open | replayed
    attempts: int = 1
    last_attempt_at: datetime | None = None
    replayed_at: datetime | None = None
    person_id: UUID | None = None  # the person the replayed record resolved to
