"""Serialise concurrent units of work that touch the same exact keys.

On PostgreSQL: transaction-scoped advisory locks, taken in one statement in sorted order
so two transactions never wait on each other in opposite orders. On SQLite every unit of
work already holds the database write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.types import BigInteger

_LOCK_SQL = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM "
    "(SELECT k FROM unnest(:keys) AS k ORDER BY k) AS ordered"
).bindparams(bindparam("keys", type_=ARRAY(BigInteger())))


def lock_id(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_keys(session: Session, keys: Iterable[str]) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({lock_id(k) for k in keys})
    if ids:
        session.execute(_LOCK_SQL, {"keys": ids})
