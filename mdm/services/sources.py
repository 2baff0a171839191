"""Sources and their mapping profiles: read a payload through its source's profile, and
describe the profiles (the published data dictionary)."""

from __future__ import annotations

from typing import Any

from mdm.flow.map import map_record
from mdm.flow.normalise import normalise
from mdm.mapping.profile import FieldSpec, FieldType, Source
from mdm.model.errors import UnknownSource
from mdm.model.record import IncomingRecord, NormalisedRecord
from mdm.services.context import Registry


def source_of(registry: Registry, key: str) -> Source:
    source = registry.sources.get(key)
    if source is None:
        raise UnknownSource(key, [s.key for s in registry.sources])
    return source


def prepare(registry: Registry, incoming: IncomingRecord) -> NormalisedRecord:
    """Map a payload with its source's profile, then validate and normalise it."""
    source = source_of(registry, incoming.source)
    mapped = map_record(incoming.data, source.profile)
    return normalise(incoming, blind_index_key=registry.settings.blind_index_key, mapped=mapped)


def describe_source(source: Source) -> dict[str, Any]:
    return {
        "key": source.key,
        "kind": source.kind.value,
        "description": source.description,
        "profile": source.profile.name,
        "phone_region": source.profile.phone_region,
        "fields": len(source.profile.fields),
    }


def describe_mapping(source: Source) -> dict[str, Any]:
    """The data dictionary of one source: every canonical field it maps and how."""
    profile = source.profile
    return {
        **describe_source(source),
        "origin": profile.origin if profile.name != "canonical" else "built in",
        "fields": [describe_field(spec) for spec in profile.fields],
        "rules": [
            {
                "check": rule.check,
                "fields": list(rule.fields),
                "when": rule.when,
                "in": list(rule.values),
                "severity": "error" if rule.reject else "warning",
                "message": rule.message,
            }
            for rule in profile.rules
        ],
    }


def describe_field(spec: FieldSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "field": spec.name,
        "type": spec.type.value,
        "paths": [p.text for p in spec.paths],
        "required": spec.required,
        "sensitive": spec.sensitive,
        "description": spec.description,
        "rule": _rule_text(spec),
    }
    if spec.formats:
        out["format"] = [f.text for f in spec.formats]
    if spec.default is not None:
        out["default"] = spec.default
    if spec.max_length is not None:
        out["max_length"] = spec.max_length
        out["overflow"] = "truncate" if spec.truncate else "reject"
    if spec.pattern is not None:
        out["pattern"] = spec.pattern.pattern
    if spec.enum is not None:
        out["values"] = {
            k: v
            if isinstance(v, str)
            else {"by": v.by.text, "values": dict(v.values), "default": v.default}
            for k, v in spec.enum.values.items()
        }
        out["on_unmapped"] = "reject" if spec.enum.reject_unmapped else "warn"
    comp = spec.compensation
    if comp is not None:
        out["compensation"] = {
            "amount": comp.amount.text,
            "currency": comp.currency.text if comp.currency else None,
            "currency_default": comp.currency_default,
            "period": comp.period.text if comp.period else None,
            "period_default": comp.period_default,
            "period_values": dict(comp.period_values),
            "convert_to": comp.convert_to,
            "hours_per_year": float(comp.hours_per_year) if comp.hours_per_year else None,
            "locale": comp.locale,
            "ranges": {
                r.period: [
                    float(r.low) if r.low is not None else None,
                    float(r.high) if r.high is not None else None,
                ]
                for r in comp.ranges
            },
        }
    return out


def _rule_text(spec: FieldSpec) -> str:
    """One line a reader of the dictionary can take in at a glance."""
    where = " or ".join(p.text for p in spec.paths)
    steps = [f"from {where}"]
    if spec.type is FieldType.DATE:
        steps.append("date " + " | ".join(f.text for f in spec.formats) + " -> ISO 8601")
    elif spec.type is FieldType.ENUM:
        steps.append("translated by the values table")
    elif spec.type is FieldType.COMPENSATION and spec.compensation is not None:
        comp = spec.compensation
        steps.append(
            "{amount, currency, period}"
            + (f" converted to {comp.convert_to}" if comp.convert_to else "")
        )
    if spec.case != "preserve":
        steps.append(f"{spec.case} case")
    if spec.max_length is not None:
        verb = "truncated to" if spec.truncate else "at most"
        steps.append(f"{verb} {spec.max_length} characters")
    if spec.required:
        steps.append("required")
    return "; ".join(steps)
