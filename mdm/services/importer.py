"""Import a CSV or JSONL file of records, streamed in batches."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mdm.flow.normalise import parse_timestamp
from mdm.model.errors import MdmError
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestFailure, ingest_many

BATCH_SIZE = 500


@dataclass
class ImportSummary:
    lines: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    record: IncomingRecord | None
    error: str | None = None


def _records(path: Path, handle: TextIO, source: str, id_field: str) -> Iterator[_Line]:
    if path.suffix.lower() == ".csv":
        for number, row in enumerate(csv.DictReader(handle), start=2):
            data: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
            source_id = data.pop(id_field, None)
            updated = data.pop("updated_at", None)
            if not source_id:
                yield _Line(number, None, f"no {id_field} column value")
                continue
            yield _Line(number, _incoming(source, source_id, data, updated))
        return
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            yield _Line(number, None, f"not JSON: {exc.msg}")
            continue
        if not isinstance(obj, dict):
            yield _Line(number, None, "not a JSON object")
            continue
        if isinstance(obj.get("data"), dict):
            data, line_source = obj["data"], obj.get("source") or source
            source_id, updated = obj.get(id_field) or obj.get("source_id"), obj.get("updated_at")
        else:
            data, line_source = dict(obj), source
            source_id, updated = data.pop(id_field, None), data.pop("updated_at", None)
        if not source_id:
            yield _Line(number, None, f"no {id_field}")
            continue
        try:
            yield _Line(number, _incoming(line_source, str(source_id), data, updated))
        except ValueError as exc:
            yield _Line(number, None, str(exc))


def _incoming(source: str, source_id: str, data: dict[str, Any], updated: Any) -> IncomingRecord:
    try:
        updated_at = parse_timestamp(updated) if isinstance(updated, str) and updated else None
    except ValueError:
        raise ValueError("updated_at: not an ISO 8601 timestamp") from None
    return IncomingRecord(source=source, source_id=source_id, data=data, updated_at=updated_at)


def import_file(
    registry: Registry,
    path: Path,
    *,
    source: str,
    rejects: Path,
    id_field: str = "source_id",
    actor: str = "import",
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Ingest every line; write each rejected line with its number and reasons to `rejects`."""
    summary = ImportSummary()
    with path.open(newline="", encoding="utf-8") as handle, rejects.open("w") as reject_out:

        def reject(number: int, reasons: list[dict[str, str]]) -> None:
            summary.rejected += 1
            reject_out.write(json.dumps({"line": number, "errors": reasons}) + "\n")

        batch: list[_Line] = []

        def flush() -> None:
            outcomes = iter(
                ingest_many(
                    registry,
                    [b.record for b in batch if b.record],
                    actor=actor,
                    correlation_id=f"import:{path.name}",
                )
            )
            for line in batch:  # in line order, so the reject file reads top to bottom
                if line.record is None:
                    reject(line.number, [{"field": "line", "message": line.error or "unreadable"}])
                    continue
                outcome = next(outcomes)
                if isinstance(outcome, IngestFailure):
                    reject(line.number, _reasons(outcome.error))
                else:
                    summary.decisions[outcome.decision] += 1
            if progress:
                progress(len(batch))
            batch.clear()

        for line in _records(path, handle, source, id_field):
            summary.lines += 1
            batch.append(line)
            if len(batch) >= BATCH_SIZE:
                flush()
        if batch:
            flush()
    return summary


def _reasons(error: MdmError) -> list[dict[str, str]]:
    errors = getattr(error, "errors", None)
    if errors:
        return [e.as_dict() for e in errors]
    return [{"field": "record", "message": error.detail}]
