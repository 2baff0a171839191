"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.deps import ActorDep, RegistryDep
from api.problems import problem, problem_response
from mdm.services.health import sync_health
from mdm.store.migrate import at_head

router = APIRouter(tags=["health"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process is up; checks nothing else."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Database down or not migrated"}})
async def readyz(registry: RegistryDep) -> JSONResponse:
    """The database answers and its schema is at the latest migration."""
    try:
        migrated = at_head(registry.database.engine)
    except SQLAlchemyError:
        return problem_response(problem(503, "The database is not reachable"))
    if not migrated:
        return problem_response(problem(503, "The database schema is not at the latest migration"))
    return JSONResponse({"status": "ok", "database": registry.database.dialect})


@router.get("/v1/health/sync")
async def sync(registry: RegistryDep, actor: ActorDep) -> dict[str, Any]:
    """Per source: last record received, the last 24 hours' records and rejections, and
    today's volume per lifecycle status against the same hours of earlier days; failing
    webhook endpoints; and the `problems` that need attention (empty when healthy)."""
    return sync_health(registry).as_dict()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (no personal data in values or labels)."""
    body, content_type = request.app.state.metrics.exposition()
    return Response(body, media_type=content_type)
