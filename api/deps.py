"""Dependencies: the registry of the app, and the caller's identity.

They are `async` because they never block: a plain `def` dependency costs a hop through
the thread pool on every request.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.middleware import request_id_var
from mdm.services.context import Registry

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


async def get_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller, authenticated by its key. Real key management adds scopes per key."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "An API key is required", {"WWW-Authenticate": "Bearer"})
    actor = actor_for_key(request.app.state.registry, credentials.credentials)
    if actor is None:
        raise HTTPException(401, "The API key is not valid", {"WWW-Authenticate": "Bearer"})
    return actor


def actor_for_key(registry: Registry, key: str) -> str | None:
    """Who holds this key, or None for a key the registry does not know."""
    admin_key = registry.settings.admin_key
    if admin_key and hmac.compare_digest(key.encode(), admin_key.encode()):
        return "admin"
    return None


async def get_correlation_id() -> str | None:
    return request_id_var.get()


RegistryDep = Annotated[Registry, Depends(get_registry)]
ActorDep = Annotated[str, Depends(get_actor)]
CorrelationDep = Annotated[str | None, Depends(get_correlation_id)]
