"""Survivorship: build a person's golden record, field by field, from its source records.

For now every single-valued field takes the most recent value (by the source's
`updated_at`, else the time the registry received it); emails and phones are the union
of all records, the most recent first (it is the primary). Every value carries lineage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MULTI_VALUED = ("emails", "phones")


@dataclass(frozen=True, slots=True)
class FieldRule:
    """How the golden value of a field is chosen: the strategy, and the source kinds that
    own the field, highest priority first (empty: no source is preferred)."""

    strategy: str
    owners: tuple[str, ...] = ()


def field_rule(field: str) -> FieldRule:
    """The rule `build_golden` applies to `field`, as the data dictionary publishes it."""
    if field in MULTI_VALUED or field in ("email", "phone"):
        return FieldRule("union_most_recent_first")
    return FieldRule("most_recent")


@dataclass(frozen=True, slots=True)
class RecordView:
    source: str
    source_id: str
    version: int
    attributes: Mapping[str, Any]
    updated_at: datetime


def build_golden(records: Iterable[RecordView]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the golden attributes and their lineage; a pure function of the records."""
    newest_first = sorted(
        records, key=lambda r: (r.updated_at, r.source, r.source_id), reverse=True
    )
    golden: dict[str, Any] = {}
    lineage: dict[str, Any] = {}
    for record in newest_first:
        origin = _origin(record)
        for field, value in record.attributes.items():
            if field in MULTI_VALUED:
                values = golden.setdefault(field, [])
                sources = lineage.setdefault(
                    field, {"rule": "union_most_recent_first", "values": []}
                )
                for item in value:
                    if item not in values:
                        values.append(item)
                        sources["values"].append({"value": item, **origin})
            elif field not in golden:
                golden[field] = value
                lineage[field] = {"rule": "most_recent", **origin}
    return golden, lineage


def _origin(record: RecordView) -> dict[str, Any]:
    return {
        "source": record.source,
        "source_id": record.source_id,
        "version": record.version,
        "updated_at": record.updated_at.isoformat(),
    }
