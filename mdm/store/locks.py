"""Serialise concurrent units of work that touch the same exact keys.

On PostgreSQL: transaction-scoped advisory locks, taken in one statement in sorted order
so two transactions never wait on each other in opposite orders (the repository sends it
with the look-up that must follow it). On SQLite every unit of work already holds the
database write lock (BEGIN IMMEDIATE).

A batch first tries its unit's locks without waiting (`TRY_LOCK_SQL`), so that the records
whose keys a concurrent unit holds can wait for a later unit while the rest go ahead.
"""

from __future__ import annotations

import hashlib

# The subquery sorts before the aggregate consumes the rows, so locks are taken in order.
LOCK_SQL = (
    "SELECT count(pg_advisory_xact_lock(k)) FROM "
    "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered"
)

# Without waiting: the locks another transaction holds come back; every other one is taken.
TRY_LOCK_SQL = "SELECT k FROM unnest(%s::bigint[]) AS k WHERE NOT pg_try_advisory_xact_lock(k)"


def lock_id(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
