"""API keys: stored as hashes, found by their public prefix."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Connection, Table, insert, select, update

from mdm.model.keys import ApiKey
from mdm.store.tables import ApiKeyRow

keys_t = cast(Table, ApiKeyRow.__table__)


class KeyRepository:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def insert(self, key: ApiKey, digest: str) -> None:
        self.conn.execute(
            insert(keys_t).values(
                id=key.id,
                prefix=key.prefix,
                hash=digest,
                name=key.name,
                scopes=list(key.scopes),
                source=key.source,
                created_at=key.created_at,
                created_by=key.created_by,
                expires_at=key.expires_at,
            )
        )

    def by_prefix(self, prefix: str) -> tuple[ApiKey, str] | None:
        row = self.conn.execute(select(keys_t).where(keys_t.c.prefix == prefix)).first()
        return (_key(row._mapping), row.hash) if row is not None else None

    def find(self, id_or_prefix: str) -> ApiKey | None:
        try:
            condition = keys_t.c.id == UUID(id_or_prefix)
        except ValueError:
            condition = keys_t.c.prefix == id_or_prefix
        row = self.conn.execute(select(keys_t).where(condition)).first()
        return _key(row._mapping) if row is not None else None

    def all(self) -> list[ApiKey]:
        rows = self.conn.execute(select(keys_t).order_by(keys_t.c.created_at))
        return [_key(r._mapping) for r in rows]

    def revoke(self, key_id: UUID, at: datetime) -> None:
        self.conn.execute(
            update(keys_t)
            .where(keys_t.c.id == key_id, keys_t.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )

    def touch(self, key_id: UUID, at: datetime) -> None:
        self.conn.execute(update(keys_t).where(keys_t.c.id == key_id).values(last_used_at=at))

    def expiring(self, now: datetime, until: datetime) -> list[ApiKey]:
        rows = self.conn.execute(
            select(keys_t).where(
                keys_t.c.revoked_at.is_(None),
                keys_t.c.expires_at.is_not(None),
                keys_t.c.expires_at > now,
                keys_t.c.expires_at <= until,
            )
        )
        return [_key(r._mapping) for r in rows]


def _key(m: Any) -> ApiKey:
    return ApiKey(
        id=m["id"],
        prefix=m["prefix"],
        name=m["name"],
        scopes=tuple(m["scopes"]),
        source=m["source"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
    )
