"""Sources and their mapping profiles: read a payload through its source's profile, and
describe the profiles (the published data dictionary)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mdm.flow.map import map_record
from mdm.flow.normalise import normalise
from mdm.mapping.paths import JsonPath
from mdm.mapping.profile import FieldSpec, FieldType, PayRange, Source
from mdm.model.errors import InvalidRecord, UnknownSource
from mdm.model.record import IncomingRecord, NormalisedRecord
from mdm.model.redaction import ENCRYPTED_FIELDS, sensitive_fields
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
    record = normalise(incoming, blind_index_key=registry.settings.blind_index_key, mapped=mapped)
    sealed = source.profile.locations(incoming.data, ENCRYPTED_FIELDS)
    return replace(record, sealed=sealed) if sealed else record


def sealed_locations(registry: Registry, source: str, data: Any) -> tuple[str, ...]:
    """Where a payload holds values never stored in clear; none for an unknown source."""
    found = registry.sources.get(source)
    if found is None or not isinstance(data, Mapping):
        return ()
    return found.profile.locations(data, ENCRYPTED_FIELDS)


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
    shown_with = sensitive_fields().get(spec.name)
    out: dict[str, Any] = {
        "field": spec.name,
        "type": spec.type.value,
        "paths": [p.text for p in spec.paths],
        "required": spec.required,
        "sensitive": spec.sensitive or shown_with is not None,
        "scope": shown_with,
        "encrypted": spec.name in ENCRYPTED_FIELDS,
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
            "ranges": _ranges(comp.ranges),
        }
    return out


def _ranges(ranges: Iterable[PayRange]) -> dict[str, dict[str, list[float | None]]]:
    out: dict[str, dict[str, list[float | None]]] = {}
    for r in ranges:
        out.setdefault(r.currency, {})[r.period] = [
            float(r.low) if r.low is not None else None,
            float(r.high) if r.high is not None else None,
        ]
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


@dataclass(slots=True)
class FieldReport:
    mapped: int = 0
    transformed: int = 0
    unmapped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    warnings: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mapped": self.mapped,
            "transformed": self.transformed,
            "unmapped": dict(self.unmapped),
            "truncated": self.truncated,
            "warnings": dict(self.warnings),
            "failures": dict(self.failures),
        }


@dataclass(slots=True)
class MappingReport:
    source: str
    records: int = 0
    failed: int = 0
    fields: dict[str, FieldReport] = field(default_factory=dict)
    unread: Counter[str] = field(default_factory=Counter)  # payload keys no field reads

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "records": self.records,
            "failed": self.failed,
            "fields": {name: r.as_dict() for name, r in self.fields.items()},
            "unread": dict(self.unread),
        }


def check_payloads(
    source: Source, payloads: Iterable[Mapping[str, Any]], *, blind_index_key: str
) -> MappingReport:
    """Map and normalise sample payloads with `source`'s profile, writing nothing, and
    count per field what was mapped, transformed, left unmapped, warned about or refused."""
    profile = source.profile
    report = MappingReport(source.key)
    report.fields = {spec.name: FieldReport() for spec in profile.fields}
    read = {spec_path.text.split(".")[0].split("[")[0] for spec in profile.fields
            for spec_path in _all_paths(spec)}  # fmt: skip
    for n, data in enumerate(payloads):
        report.records += 1
        if isinstance(data, Mapping):
            report.unread.update(k for k, v in data.items() if k not in read and v is not None)
        incoming = IncomingRecord(source.key, f"sample-{n}", data)
        try:
            mapped = map_record(data, profile)
            normalised = normalise(incoming, blind_index_key=blind_index_key, mapped=mapped)
        except InvalidRecord as exc:
            report.failed += 1
            for issue in exc.errors:
                _report_of(report, issue.canonical or issue.field).failures[issue.message] += 1
            continue
        for name, value in mapped.values.items():
            report.fields[name].mapped += 1 if value is not None else 0
        for name in mapped.notes.get("values", {}):
            report.fields[name].transformed += 1
        for name, value in mapped.notes.get("unmapped", {}).items():
            report.fields[name].unmapped[str(value)] += 1
        for name in mapped.notes.get("truncated", {}):
            report.fields[name].truncated += 1
        for issue in normalised.warnings:
            _report_of(report, issue.canonical or issue.field).warnings[issue.message] += 1
    return report


def _all_paths(spec: FieldSpec) -> list[JsonPath]:
    comp = spec.compensation
    if comp is None:
        return list(spec.paths)
    return [p for p in (comp.amount, comp.currency, comp.period) if p is not None]


def _report_of(report: MappingReport, name: str) -> FieldReport:
    return report.fields.setdefault(name, FieldReport())
