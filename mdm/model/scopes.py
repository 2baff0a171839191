"""The scopes an API key or a webhook subscription can hold."""

from __future__ import annotations

SCOPES = (
    "records:write",
    "records:read",
    "persons:read",
    "persons:read:sensitive",
    "persons:read:compensation",
    "reviews:resolve",
    "persons:merge",
    "persons:erase",
    "audit:read",
    "webhooks:manage",
    "admin",
)
