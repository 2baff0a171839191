"""Counters of what the mapping did, per source, since the process started.

Each record also keeps its own notes (`raw.mapping`), so the counts can be rebuilt from
the database; these are the cheap running view operators look at.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

NOTED = ("unmapped", "truncated")


class MappingStats:
    def __init__(self) -> None:
        self.since = datetime.now(UTC)
        self._lock = threading.Lock()
        self._records: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._notes: Counter[tuple[str, str, str]] = Counter()

    def count(self, source: str, notes: dict[str, Any]) -> None:
        with self._lock:
            self._records[source] += 1
            for kind in NOTED:
                for field in notes.get(kind, ()):
                    self._notes[(source, kind, field)] += 1

    def count_rejected(self, source: str) -> None:
        with self._lock:
            self._rejected[source] += 1

    def of(self, source: str) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                "since": self.since.isoformat(),
                "records": self._records[source],
                "rejected": self._rejected[source],
            }
            for kind in NOTED:
                out[kind] = {
                    field: n
                    for (s, k, field), n in sorted(self._notes.items())
                    if s == source and k == kind
                }
            return out
