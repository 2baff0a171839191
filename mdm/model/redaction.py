"""What a caller without the matching scope may not see: the same rule for API reads,
webhook payloads and logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SENSITIVE_SCOPE = "persons:read:sensitive"
COMPENSATION_SCOPE = "persons:read:compensation"
ADMIN_SCOPE = "admin"
# field -> the scope that shows it in clear
SENSITIVE_FIELDS: Mapping[str, str] = {
    "national_id": SENSITIVE_SCOPE,
    "birth_date": SENSITIVE_SCOPE,
    "interview_feedback": SENSITIVE_SCOPE,
    "compensation": COMPENSATION_SCOPE,
}


def redact(values: Mapping[str, Any], scopes: Iterable[str]) -> dict[str, Any]:
    """`values` without the sensitive fields `scopes` do not cover; a national id is
    masked to its last four characters rather than dropped, so it can still be matched
    by eye."""
    held = set(scopes)
    if ADMIN_SCOPE in held:
        return dict(values)
    out: dict[str, Any] = {}
    for name, value in values.items():
        needed = SENSITIVE_FIELDS.get(name)
        if needed is None or needed in held:
            out[name] = value
        elif name == "national_id" and isinstance(value, str) and value:
            out[name] = "*" * max(len(value) - 4, 0) + value[-4:]
    return out
