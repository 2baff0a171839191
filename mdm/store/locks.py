"""Serialise concurrent units of work that touch the same exact keys.

On PostgreSQL: transaction-scoped advisory locks, taken in one statement in sorted order
so two transactions never wait on each other in opposite orders (the repository sends it
with the look-up that must follow it). On SQLite every unit of work already holds the
database write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import hashlib

# The subquery sorts before the aggregate consumes the rows, so locks are taken in order.
LOCK_SQL = (
    "SELECT count(pg_advisory_xact_lock(k)) FROM "
    "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered"
)


def lock_id(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
