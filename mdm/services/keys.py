"""API keys as service accounts: create (the key shown once), authenticate, list, revoke,
rotate. Only a SHA-256 of each key is stored: a key is 256 random bits, so a fast hash
cannot be reversed by guessing, and look-up by its public prefix costs one row."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from mdm.model.errors import FieldIssue, InvalidRecord, MdmError
from mdm.model.ids import new_id
from mdm.model.keys import ApiKey, Principal
from mdm.model.scopes import SCOPES
from mdm.services.context import Registry

ADMIN = frozenset(SCOPES)
EXPIRING_WITHIN = timedelta(days=30)
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key


class KeyNotFound(MdmError):
    title = "API key not found"

    def __init__(self, key: str) -> None:
        super().__init__(f"No API key has the id or prefix {key!r}")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _split(key: str) -> str | None:
    """The public prefix of a key shaped ``mdm_<prefix>_<secret>``."""
    parts = key.split("_")
    if len(parts) != 3 or parts[0] != "mdm" or len(parts[1]) != 8:
        return None
    return parts[1]


def create_key(
    registry: Registry,
    *,
    name: str,
    scopes: Sequence[str],
    actor: str,
    source: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret value, which is not stored and cannot be shown again."""
    errors = []
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes or unknown:
        errors.append(FieldIssue("scopes", f"scopes from: {', '.join(SCOPES)}", unknown or None))
    if source is not None and registry.sources.get(source) is None:
        errors.append(FieldIssue("source", "not a configured source", source))
    if not name.strip():
        errors.append(FieldIssue("name", "required"))
    if errors:
        raise InvalidRecord(errors, "The API key is not valid")
    prefix = secrets.token_hex(4)
    value = f"mdm_{prefix}_{secrets.token_urlsafe(32).replace('_', 'x')}"
    key = ApiKey(
        id=new_id(),
        prefix=prefix,
        name=name.strip(),
        scopes=tuple(dict.fromkeys(scopes)),
        source=source,
        created_at=datetime.now(UTC),
        created_by=actor,
        expires_at=expires_at,
    )
    with registry.database.uow() as uow:
        uow.keys.insert(key, _digest(value))
        uow.commit()
    return key, value


_touched: dict[UUID, datetime] = {}
_touched_lock = threading.Lock()


def authenticate(registry: Registry, token: str) -> Principal | None:
    """The caller a bearer token stands for, or None (unknown, revoked or expired)."""
    admin_key = registry.settings.admin_key
    if admin_key and hmac.compare_digest(token.encode(), admin_key.encode()):
        return Principal("admin", ADMIN)
    prefix = _split(token)
    if prefix is None:
        return None
    with registry.database.uow() as uow:
        found = uow.keys.by_prefix(prefix)
        if found is None:
            return None
        key, digest = found
        now = datetime.now(UTC)
        if not hmac.compare_digest(digest, _digest(token)) or not key.usable(now):
            return None
        with _touched_lock:
            due = now - _touched.get(key.id, datetime.min.replace(tzinfo=UTC)) >= _TOUCH_EVERY
            if due:
                _touched[key.id] = now
        if due:
            uow.keys.touch(key.id, now)
            uow.commit()
    return Principal(key.name, frozenset(key.scopes), key.source, key.id)


def list_keys(registry: Registry, *, expiring: bool = False) -> list[ApiKey]:
    now = datetime.now(UTC)
    with registry.database.uow() as uow:
        if expiring:
            return uow.keys.expiring(now, now + EXPIRING_WITHIN)
        return uow.keys.all()


def revoke_key(registry: Registry, key: str) -> ApiKey:
    with registry.database.uow() as uow:
        found = uow.keys.find(key)
        if found is None:
            raise KeyNotFound(key)
        uow.keys.revoke(found.id, datetime.now(UTC))
        uow.commit()
        return uow.keys.find(str(found.id)) or found


def rotate_key(registry: Registry, key: str, *, actor: str) -> tuple[ApiKey, str]:
    """A new key with the same name, scopes, source and expiry; the old one is revoked."""
    with registry.database.uow() as uow:
        old = uow.keys.find(key)
    if old is None:
        raise KeyNotFound(key)
    new, value = create_key(
        registry, name=old.name, scopes=old.scopes, actor=actor, source=old.source,
        expires_at=old.expires_at,
    )  # fmt: skip
    revoke_key(registry, str(old.id))
    return new, value
