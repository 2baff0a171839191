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
# The fields in force: the defaults, and what MDM_SENSITIVE_FIELDS adds or changes
# (`configure`, once per process, from the settings).
_sensitive: dict[str, str] = dict(SENSITIVE_FIELDS)
SCOPES_THAT_SHOW = (SENSITIVE_SCOPE, COMPENSATION_SCOPE)


def configure(extra: Mapping[str, str]) -> None:
    """Make more fields sensitive, or move one to another scope. A default one stays
    sensitive: a setting can tighten what is shown, never loosen it."""
    for field, scope in extra.items():
        if scope not in SCOPES_THAT_SHOW:
            raise ValueError(f"{field}: {scope!r} is not one of {', '.join(SCOPES_THAT_SHOW)}")
    _sensitive.clear()
    _sensitive.update({**SENSITIVE_FIELDS, **extra})


def sensitive_fields() -> dict[str, str]:
    """Field -> the scope that shows it in clear, as configured."""
    return dict(_sensitive)


# Fields never stored in clear: sealed in every document the database keeps (see
# mdm/store/sealing.py) and matched through a keyed blind index instead.
ENCRYPTED_FIELDS: tuple[str, ...] = ("national_id",)


def redact(values: Mapping[str, Any], scopes: Iterable[str]) -> dict[str, Any]:
    """`values` without the sensitive fields `scopes` do not cover; a national id is
    masked to its last four characters rather than dropped, so it can still be matched
    by eye."""
    held = set(scopes)
    if ADMIN_SCOPE in held:
        return dict(values)
    out: dict[str, Any] = {}
    for name, value in values.items():
        needed = _sensitive.get(name)
        if needed is None or needed in held:
            out[name] = value
        elif name == "national_id" and isinstance(value, str) and value:
            out[name] = "*" * max(len(value) - 4, 0) + value[-4:]
    return out


def visibility(field: str, scopes: Iterable[str]) -> str:
    """clear | masked | hidden: how `field` shows to a holder of `scopes`."""
    held = set(scopes)
    needed = _sensitive.get(field)
    if needed is None or ADMIN_SCOPE in held or needed in held:
        return "clear"
    return "masked" if field == "national_id" else "hidden"


def _mask(value: Any) -> Any:
    if isinstance(value, str) and value:
        return "*" * max(len(value) - 4, 0) + value[-4:]
    return None


def redact_lineage(lineage: Mapping[str, Any], scopes: Iterable[str]) -> dict[str, Any]:
    """Lineage keeps where a value came from; the values it names follow `redact`."""
    held = set(scopes)
    out: dict[str, Any] = {}
    for field, entry in lineage.items():
        seen = visibility(field, held)
        if seen == "hidden":
            continue
        if seen == "masked" and isinstance(entry, Mapping):
            entry = {
                **entry,
                "candidates": [
                    {**c, "value": _mask(c.get("value"))} for c in entry.get("candidates", [])
                ],
            }
        out[field] = entry
    return out


def redact_mapping(mapping: Mapping[str, Any], scopes: Iterable[str]) -> dict[str, Any]:
    """A record's mapping notes without the source values of fields the caller may not see."""
    held = set(scopes)
    out = dict(mapping)
    for part in ("values", "unmapped", "truncated"):
        if isinstance(mapping.get(part), Mapping):
            out[part] = {f: v for f, v in mapping[part].items() if visibility(f, held) == "clear"}
    return out


def redact_explanation(explanation: Mapping[str, Any], scopes: Iterable[str]) -> dict[str, Any]:
    """A conflict item on a sensitive field shows where the values came from, not them."""
    field = explanation.get("field")
    if not isinstance(field, str) or visibility(field, scopes) == "clear":
        return dict(explanation)
    out = dict(explanation)
    for side in ("kept", "other"):
        if isinstance(out.get(side), Mapping):
            out[side] = {**out[side], "value": _mask(out[side].get("value"))}
    return out
