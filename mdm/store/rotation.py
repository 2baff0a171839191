"""Key rotation: every sealed value and every person's key moved under the active key.

Table by table, in primary-key order, a batch per transaction with its rows locked: a
concurrent writer waits for one batch at most, and a run killed half-way is simply run
again (values already under the active key are left alone). Audit events are never
rewritten: their values are sealed under the persons' own keys, which are re-wrapped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, Table, select, update

from mdm.store.sealing import Sealer
from mdm.store.tables import Base

# table -> (document column -> the kind of document it holds)
DOCUMENTS: dict[str, dict[str, str]] = {
    "persons": {"golden": "attributes", "lineage": "lineage", "stewardship": "stewardship"},
    "source_records": {"attributes": "attributes", "raw": "raw"},
    "review_items": {"explanation": "explanation"},
    "rejections": {"raw": "raw"},
    "outbox": {"payload": "event"},
    "webhook_deliveries": {"payload": "event"},
}


Locate = Callable[[str, Any], tuple[str, ...]]


def rotate(
    engine: Engine,
    sealer: Sealer,
    *,
    batch: int = 1000,
    locate: Locate | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> Counter[str]:
    """Move everything under the ring's active key; counts of values moved, by table.

    `locate(source, data)` names where a payload holds encrypted fields: a raw payload
    stored before sealing existed (no `sealed` list) gets its values sealed too."""
    moved: Counter[str] = Counter()
    for name, columns in DOCUMENTS.items():
        table: Table = Base.metadata.tables[name]
        key = next(iter(table.primary_key.columns))
        extra = [table.c.data_key] if name == "persons" else []
        if "raw" in columns:
            extra.append(table.c.source)
        last: Any = None
        while True:
            with engine.begin() as conn:
                stmt = select(key, *(table.c[c] for c in columns), *extra).order_by(key)
                if last is not None:
                    stmt = stmt.where(key > last)
                if conn.dialect.name == "postgresql":
                    stmt = stmt.with_for_update()
                rows = conn.execute(stmt.limit(batch)).all()
                if not rows:
                    break
                for row in rows:
                    values: dict[str, Any] = {}
                    for column, kind in columns.items():
                        doc = row._mapping[column]
                        if kind == "raw" and locate is not None:
                            doc = _located(doc, row._mapping["source"], locate)
                        doc, n = sealer.rotate(kind, doc)
                        if n:
                            values[column], moved[name] = doc, moved[name] + n
                    wrapped = row._mapping.get("data_key")
                    if wrapped and (rewrapped := sealer.ring.rewrap(wrapped)):
                        values["data_key"] = rewrapped
                        moved["person keys"] += 1
                    if values:
                        conn.execute(update(table).where(key == row[0]).values(values))
                last = rows[-1][0]
            if progress is not None:
                progress(name, len(rows))
    return moved


def _located(raw: Any, source: str | None, locate: Locate) -> Any:
    if not isinstance(raw, dict) or raw.get("sealed") or source is None:
        return raw
    found = locate(source, raw.get("data"))
    return {**raw, "sealed": list(found)} if found else raw
