"""Dependencies: the registry of the app, and the caller's identity.

They are `async` because they never block: a plain `def` dependency costs a hop through
the thread pool on every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.middleware import request_id_var
from mdm.model.keys import Principal
from mdm.services.context import Registry
from mdm.services.keys import authenticate

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")


async def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


# The scope each operation needs; an operation missing here is refused to every key but
# an admin's (deny by default). The authorisation matrix test walks this table.
ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("POST", "/v1/records"): "records:write",
    ("POST", "/v1/records:batch"): "records:write",
    ("POST", "/v1/match"): "persons:read",
    ("POST", "/v1/records/{source}/{source_id}/split"): "persons:merge",
    ("GET", "/v1/persons"): "persons:read",
    ("GET", "/v1/persons/{person_id}"): "persons:read",
    ("GET", "/v1/persons/{person_id}/fields/{field}"): "persons:read",
    ("GET", "/v1/persons/{person_id}/history"): "audit:read",
    ("DELETE", "/v1/persons/{person_id}"): "persons:erase",
    ("GET", "/v1/audit"): "audit:read",
    ("POST", "/v1/persons/{person_id}/merge"): "persons:merge",
    ("GET", "/v1/persons/{person_id}/consents"): "persons:read",
    ("PUT", "/v1/persons/{person_id}/consents/{purpose}"): "records:write",
    ("GET", "/v1/reviews"): "reviews:resolve",
    ("GET", "/v1/reviews/{review_id}"): "reviews:resolve",
    ("POST", "/v1/reviews/{review_id}/resolve"): "reviews:resolve",
    ("GET", "/v1/sources"): "records:read",
    ("GET", "/v1/sources/{source}/mapping"): "records:read",
    ("GET", "/v1/rejections"): "records:read",
    ("GET", "/v1/rejections/{rejection_id}"): "records:read",
    ("POST", "/v1/rejections/{rejection_id}/replay"): "records:write",
    ("POST", "/v1/webhooks"): "webhooks:manage",
    ("GET", "/v1/webhooks"): "webhooks:manage",
    ("GET", "/v1/webhooks/{subscription_id}"): "webhooks:manage",
    ("DELETE", "/v1/webhooks/{subscription_id}"): "webhooks:manage",
    ("GET", "/v1/webhooks/{subscription_id}/deliveries"): "webhooks:manage",
    ("POST", "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/replay"): "webhooks:manage",
    ("GET", "/v1/health/sync"): "records:read",
}


async def get_actor(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller, authenticated by its key and authorised for this operation's scope:
    401 without a valid key, 403 without the scope."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "An API key is required", {"WWW-Authenticate": "Bearer"})
    principal = authenticate(request.app.state.registry, credentials.credentials)
    if principal is None:
        raise HTTPException(
            401, "The API key is not valid (unknown, revoked or expired)",
            {"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    wait = request.app.state.rate_limits.take(str(principal.key_id or principal.name))
    if wait:
        raise HTTPException(
            429, "Too many requests for this API key; slow down", {"Retry-After": str(wait)}
        )
    route = request.scope.get("route")
    needed = ROUTE_SCOPES.get((request.method, getattr(route, "path", "")))
    if needed is None and not principal.holds("admin"):
        raise HTTPException(403, "This operation is open to admin keys only")
    if needed is not None and not principal.holds(needed):
        raise HTTPException(403, f"This operation needs the scope {needed}")
    request.state.principal = principal
    return principal.name


async def get_principal(request: Request, actor: Annotated[str, Depends(get_actor)]) -> Principal:
    principal: Principal = request.state.principal
    return principal


# Kept on the route object itself: it lives and dies with the route (routes do not hash,
# and an id() could be reused by a later app's route).
_QUERY_NAMES = "mdm_query_names"


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {f.alias for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


async def known_query(request: Request) -> None:
    """An unknown query parameter is refused (422 naming it), not ignored: `?staus=open`
    would otherwise answer every item as if no filter had been asked for. So is a NUL
    character in a parameter, which no database text column holds."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known: frozenset[str] | None = getattr(route, _QUERY_NAMES, None)
    if known is None:
        known = _query_names(dependant)
        setattr(route, _QUERY_NAMES, known)
    errors = [
        {"loc": ("query", name), "msg": "not a parameter of this operation", "type": "extra"}
        for name in sorted({name for name in request.query_params if name not in known})
    ]
    errors += [
        {"loc": ("query", name), "msg": "contains a NUL character", "type": "nul"}
        for name, value in request.query_params.multi_items()
        if "\x00" in value
    ]
    errors += [
        {"loc": ("path", name), "msg": "contains a NUL character", "type": "nul"}
        for name, value in request.path_params.items()
        if isinstance(value, str) and "\x00" in value
    ]
    if errors:
        raise RequestValidationError(errors)


async def get_correlation_id() -> str | None:
    return request_id_var.get()


RegistryDep = Annotated[Registry, Depends(get_registry)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
ActorDep = Annotated[str, Depends(get_actor)]
CorrelationDep = Annotated[str | None, Depends(get_correlation_id)]
