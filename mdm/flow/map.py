"""Map a source's payload onto the canonical fields with the source's profile.

Every failure is collected, not just the first: the sender gets one answer naming every
field to fix, each with its location in the payload they sent. What the mapping did to a
value (the source value an enum was translated from, a truncation, a pay conversion) is
kept as the record's mapping notes, next to the raw payload it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from mdm.mapping.paths import JsonPath
from mdm.mapping.profile import (
    CANONICAL_FIELDS,
    CANONICAL_PROFILE,
    EnumBranch,
    FieldSpec,
    FieldType,
    PayRange,
    Profile,
    Rule,
)
from mdm.mapping.transform import (
    PERIODS,
    Unconvertible,
    apply_case,
    convert_pay,
    currency_code,
    money,
    parse_amount,
    parse_date,
)
from mdm.model.errors import FieldIssue, InvalidRecord

_SHOWN_VALUE_CHARS = 80


@dataclass(slots=True)
class MappedRecord:
    """Canonical values, where each came from, warnings and the mapping notes."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Any] = field(default_factory=dict)  # field -> location (or list)
    warnings: list[FieldIssue] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    phone_region: str | None = None
    # Values refused with a warning rather than an error, by field: normalise needs them
    # to tell "no identifying value sent" from "the only one sent was unreadable".
    dropped: dict[str, FieldIssue] = field(default_factory=dict)

    def where(self, name: str, index: int | None = None) -> str:
        origin = self.origins.get(name, f"data.{name}")
        if index is None:
            return origin if isinstance(origin, str) else f"data.{name}"
        return origin[index] if isinstance(origin, list) else f"{origin}.{index}"


def map_record(
    data: Any, profile: Profile = CANONICAL_PROFILE, *, today: date | None = None
) -> MappedRecord:
    """Apply `profile` to one payload; raise `InvalidRecord` listing every failing field."""
    if not (type(data) is dict or isinstance(data, Mapping)):
        raise InvalidRecord([FieldIssue("data", "must be an object")])
    out = MappedRecord(phone_region=profile.phone_region)
    errors: list[FieldIssue] = []
    for spec in profile.fields:
        _map_field(spec, data, out, errors, today)
    if profile.report_unknown:
        out.warnings.extend(
            FieldIssue(f"data.{name}", "not a canonical field; kept in the raw payload")
            for name, value in data.items()
            if value is not None and name not in CANONICAL_FIELDS
        )
    for rule in profile.rules:
        _check_rule(rule, profile, out, errors)
    if errors:
        raise InvalidRecord(errors)
    return out


def _issue(spec: FieldSpec, where: str, message: str, value: Any = None) -> FieldIssue:
    shown = None
    if value is not None and not spec.sensitive:
        shown = value[:_SHOWN_VALUE_CHARS] if isinstance(value, str) else value
        if not isinstance(shown, str | int | float | bool):
            shown = None
    return FieldIssue(where, message, shown, spec.name)


def _missing_at(spec: FieldSpec) -> str:
    return f"data.{spec.paths[0].text}"


def _map_field(
    spec: FieldSpec,
    data: Mapping[str, Any],
    out: MappedRecord,
    errors: list[FieldIssue],
    today: date | None,
) -> None:
    if spec.type is FieldType.COMPENSATION:
        _map_compensation(spec, data, out, errors)
        return
    if spec.type is FieldType.STRINGS:
        _map_list(spec, data, out, errors)
        return
    found = _first(spec.paths, data)
    if found is None:
        if spec.default is not None:
            out.values[spec.name] = spec.default
            out.origins[spec.name] = "profile default"
        elif spec.required:
            errors.append(_issue(spec, _missing_at(spec), "required"))
        return
    where, raw = found

    def refuse(message: str) -> None:
        issue = _issue(spec, where, message, raw)
        if spec.reject_invalid:
            errors.append(issue)
        else:
            out.warnings.append(issue)
            out.dropped[spec.name] = issue

    if spec.type is FieldType.ID:
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            errors.append(_issue(spec, where, "must be a string", raw))
            return
        raw_text = str(raw)
    elif spec.type is FieldType.ENUM:
        if isinstance(raw, list | dict):
            errors.append(_issue(spec, where, "must be a single value", raw))
            return
        raw_text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    elif not isinstance(raw, str) and not (
        spec.type is FieldType.DATE
        and isinstance(raw, int | float)
        and not isinstance(raw, bool)
        and any(f.text.startswith("epoch") for f in spec.formats)
    ):
        errors.append(_issue(spec, where, "must be a string", raw))
        return
    else:
        raw_text = raw if isinstance(raw, str) else ""

    value: Any = raw_text.strip() if spec.trim else raw_text
    if spec.type is FieldType.DATE:
        try:
            value = parse_date(
                raw if not isinstance(raw, str) else value,
                spec.formats,
                past=spec.canonical.past,
                today=today,
            )
        except Unconvertible as exc:
            refuse(str(exc))
            return
        if value != raw:
            out.notes.setdefault("values", {})[spec.name] = {
                "value": value,
                "source_value": raw,
            }
    elif spec.type is FieldType.ENUM:
        assert spec.enum is not None
        translated = _translate(spec, value, data)
        if translated is None:
            issue = _issue(spec, where, f"no translation for {value!r} in the profile", raw)
            (errors if spec.enum.reject_unmapped else out.warnings).append(issue)
            out.notes.setdefault("unmapped", {})[spec.name] = raw
            return
        value, by_value = translated
        note: dict[str, Any] = {"value": value, "source_value": raw}
        if by_value is not None:
            note["by"] = by_value
        out.notes.setdefault("values", {})[spec.name] = note
    else:
        value = apply_case(value, spec.case)
        if not value:
            if spec.required:
                errors.append(_issue(spec, where, "required", raw))
            return
        if spec.pattern is not None and not spec.pattern.fullmatch(value):
            refuse(f"does not match the format {spec.pattern.pattern}")
            return
        if spec.max_length is not None and len(value) > spec.max_length:
            if not spec.truncate:
                errors.append(
                    _issue(spec, where, f"longer than {spec.max_length} characters", None)
                )
                return
            out.warnings.append(
                FieldIssue(
                    where,
                    f"truncated from {len(value)} to {spec.max_length} characters; "
                    "the full text is kept in the raw payload",
                    canonical=spec.name,
                )
            )
            out.notes.setdefault("truncated", {})[spec.name] = {
                "length": len(value),
                "kept": spec.max_length,
                "original": where,
            }
            value = value[: spec.max_length]
    out.values[spec.name] = value
    out.origins[spec.name] = where


def _first(paths: tuple[JsonPath, ...], data: Mapping[str, Any]) -> tuple[str, Any] | None:
    for path in paths:
        found = path.first(data)
        if found is not None:
            return found
    return None


def _translate(spec: FieldSpec, value: str, data: Mapping[str, Any]) -> tuple[str, Any] | None:
    assert spec.enum is not None
    target = spec.enum.values.get(value.casefold())
    if target is None or isinstance(target, str):
        return None if target is None else (target, None)
    branch: EnumBranch = target
    second = branch.by.first(data)
    by_value = None if second is None else str(second[1]).strip()
    chosen = branch.values.get(by_value.casefold()) if by_value is not None else None
    if chosen is None:
        chosen = branch.default
    return None if chosen is None else (chosen, by_value)


def _map_list(
    spec: FieldSpec, data: Mapping[str, Any], out: MappedRecord, errors: list[FieldIssue]
) -> None:
    items: list[str] = []
    origins: list[str] = []
    for path in spec.paths:
        for where, raw in path.find(data):
            if isinstance(raw, list):
                pairs = [(f"{where}.{i}", item) for i, item in enumerate(raw)]
            elif path.single and not spec.accept_scalar:
                errors.append(_issue(spec, where, "must be a list of strings", raw))
                continue
            else:
                pairs = [(where, raw)]
            for item_where, item in pairs:
                if item is None:
                    continue
                if not isinstance(item, str):
                    errors.append(_issue(spec, item_where, "must be a string", item))
                    continue
                text = item.strip() if spec.trim else item
                if text:
                    items.append(apply_case(text, spec.case))
                    origins.append(item_where)
    if items:
        out.values[spec.name] = items
        out.origins[spec.name] = origins
    elif spec.required:
        errors.append(_issue(spec, _missing_at(spec), "required"))


def _map_compensation(
    spec: FieldSpec, data: Mapping[str, Any], out: MappedRecord, errors: list[FieldIssue]
) -> None:
    comp = spec.compensation
    assert comp is not None
    before = len(errors)
    if comp.object_path is not None:
        whole = comp.object_path.first(data)
        if whole is None:
            if spec.required:
                errors.append(_issue(spec, _missing_at(spec), "required"))
            return
        where, raw = whole
        if not isinstance(raw, Mapping):
            errors.append(_issue(spec, where, "must be an object {amount, currency, period}"))
            return
        errors.extend(
            _issue(spec, f"{where}.{k}", "unknown field")
            for k in sorted(set(raw) - {"amount", "currency", "period"})
        )
    amount_found = comp.amount.first(data)
    if amount_found is None:
        if comp.object_path is not None or spec.required:
            errors.append(_issue(spec, f"data.{comp.amount.text}", "required"))
        return
    amount_at, raw_amount = amount_found
    try:
        amount = parse_amount(raw_amount, comp.locale)
        if amount < 0:
            raise Unconvertible("must be a non-negative number")
    except Unconvertible as exc:
        errors.append(_issue(spec, amount_at, str(exc)))
        amount = Decimal(0)

    currency_found = comp.currency.first(data) if comp.currency else None
    raw_currency = currency_found[1] if currency_found else comp.currency_default
    currency_at = (
        currency_found[0]
        if currency_found
        else f"data.{comp.currency.text}"
        if comp.currency
        else amount_at
    )
    currency = ""
    try:
        currency = currency_code(raw_currency)
    except Unconvertible as exc:
        errors.append(_issue(spec, currency_at, str(exc)))

    period_found = comp.period.first(data) if comp.period else None
    raw_period = period_found[1] if period_found else comp.period_default
    period_at = (
        period_found[0]
        if period_found
        else f"data.{comp.period.text}"
        if comp.period
        else amount_at
    )
    period = comp.period_values.get(str(raw_period).strip().casefold()) if raw_period else None
    if period is None:
        errors.append(
            _issue(
                spec,
                period_at,
                f"must be one of {', '.join(PERIODS)}"
                + ("" if raw_period is None else " (or a label the profile translates)"),
            )
        )
    if len(errors) > before:
        return
    assert period is not None
    target = comp.convert_to or period
    try:
        converted = convert_pay(amount, period, target, hours_per_year=comp.hours_per_year)
    except Unconvertible as exc:
        errors.append(_issue(spec, period_at, str(exc)))
        return
    value = {"amount": money(converted, currency), "currency": currency, "period": target}
    pay_range = _range_for(comp.ranges, currency, target)
    if pay_range is not None and not pay_range.holds(converted):
        low = "" if pay_range.low is None else format(pay_range.low.normalize(), "f")
        high = "" if pay_range.high is None else format(pay_range.high.normalize(), "f")
        shown = f"{value['amount']} {currency} {target}"
        if target != period:
            shown += f" (sent as {raw_amount} {period})"
        issue = _issue(spec, amount_at, f"{shown} is outside the plausible range {low}..{high}")
        if comp.ranges_reject:
            errors.append(issue)
            return
        out.warnings.append(issue)
    if target != period or raw_amount != value["amount"]:
        out.notes.setdefault("values", {})[spec.name] = {
            "value": value,
            "source_value": {"amount": raw_amount, "currency": raw_currency, "period": raw_period},
        }
    out.values[spec.name] = value
    out.origins[spec.name] = amount_at


def _range_for(ranges: tuple[PayRange, ...], currency: str, period: str) -> PayRange | None:
    fallback = None
    for pay_range in ranges:
        if pay_range.period == period:
            if pay_range.currency == currency:
                return pay_range
            if pay_range.currency == "*":
                fallback = pay_range
    return fallback


def _check_rule(rule: Rule, profile: Profile, out: MappedRecord, errors: list[FieldIssue]) -> None:
    values = out.values
    issues: list[FieldIssue] = []
    if rule.check == "before":
        first, second = rule.fields
        if first in values and second in values and not values[first] < values[second]:
            issues.append(
                FieldIssue(
                    out.where(second),
                    rule.message or f"{first} must be before {second}",
                    canonical=second,
                )
            )
    elif rule.check == "requires":
        assert rule.when is not None
        holds = rule.when in values and (not rule.values or values[rule.when] in rule.values)
        if holds:
            for name in rule.fields:
                if name not in values:
                    spec = profile.spec(name)
                    where = _missing_at(spec) if spec else f"data.{name}"
                    issues.append(
                        FieldIssue(
                            where,
                            rule.message or f"required when {rule.when} is {values[rule.when]}",
                            canonical=name,
                        )
                    )
    (errors if rule.reject else out.warnings).extend(issues)
