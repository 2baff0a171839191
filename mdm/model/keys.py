"""API keys (service accounts) and the caller a request is made by."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from mdm.model.redaction import ADMIN_SCOPE


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: UUID
    prefix: str  # public: shown in lists, used to find the key
    name: str
    scopes: tuple[str, ...]
    source: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who calls: a key's name (the audit actor), its scopes, the source it is bound to."""

    name: str
    scopes: frozenset[str]
    source: str | None = None
    key_id: UUID | None = None

    def holds(self, scope: str) -> bool:
        return ADMIN_SCOPE in self.scopes or scope in self.scopes
