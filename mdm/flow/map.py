"""Map a source's payload onto the canonical fields and check their JSON types.

Sources without a mapping profile post canonical field names; a value of the wrong JSON
type is an error naming the field, an unknown field is kept in the raw payload and reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mdm.model.errors import FieldIssue, InvalidRecord

TEXT_FIELDS = (
    "given_name",
    "middle_name",
    "family_name",
    "country",
    "birth_date",
    "national_id",
    "hire_date",
    "department",
    "cost_center",
    "job_title",
    "status",
    "interview_feedback",
)
# Identifiers some systems send as numbers; they are text to the registry.
TEXT_OR_NUMBER_FIELDS = ("employee_id", "email", "phone")
LIST_FIELDS = ("emails", "phones")
CANONICAL_FIELDS = frozenset((*TEXT_FIELDS, *TEXT_OR_NUMBER_FIELDS, *LIST_FIELDS, "compensation"))
COMPENSATION_PERIODS = ("annual", "monthly", "hourly")


def map_canonical(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldIssue]]:
    """Return the canonical fields of `data` and warnings for fields that are not canonical."""
    errors: list[FieldIssue] = []
    warnings: list[FieldIssue] = []
    mapped: dict[str, Any] = {}
    for name, value in data.items():
        path = f"data.{name}"
        if value is None:
            continue
        if name not in CANONICAL_FIELDS:
            warnings.append(FieldIssue(path, "not a canonical field; kept in the raw payload"))
            continue
        if name in TEXT_FIELDS:
            if not isinstance(value, str):
                errors.append(FieldIssue(path, "must be a string"))
                continue
        elif name in TEXT_OR_NUMBER_FIELDS:
            if isinstance(value, bool) or not isinstance(value, str | int):
                errors.append(FieldIssue(path, "must be a string"))
                continue
            value = str(value)
        elif name in LIST_FIELDS:
            if not isinstance(value, list):
                errors.append(FieldIssue(path, "must be a list of strings"))
                continue
            bad = [i for i, item in enumerate(value) if not isinstance(item, str)]
            if bad:
                errors.extend(FieldIssue(f"{path}.{i}", "must be a string") for i in bad)
                continue
        elif name == "compensation":
            value = _compensation(value, path, errors)
            if value is None:
                continue
        mapped[name] = value
    if errors:
        raise InvalidRecord(errors)
    return mapped, warnings


def _compensation(value: Any, path: str, errors: list[FieldIssue]) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        errors.append(FieldIssue(path, "must be an object {amount, currency, period}"))
        return None
    amount = value.get("amount")
    currency = value.get("currency")
    period = value.get("period", "annual")
    before = len(errors)
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        errors.append(FieldIssue(f"{path}.amount", "must be a non-negative number"))
    if not isinstance(currency, str) or len(currency.strip()) != 3 or not currency.isalpha():
        errors.append(FieldIssue(f"{path}.currency", "must be an ISO 4217 code such as USD"))
    if period not in COMPENSATION_PERIODS:
        errors.append(
            FieldIssue(f"{path}.period", f"must be one of {', '.join(COMPENSATION_PERIODS)}")
        )
    unknown = sorted(set(value) - {"amount", "currency", "period"})
    errors.extend(FieldIssue(f"{path}.{k}", "unknown field") for k in unknown)
    if len(errors) > before:
        return None
    assert isinstance(currency, str)
    return {"amount": amount, "currency": currency.strip().upper(), "period": period}
