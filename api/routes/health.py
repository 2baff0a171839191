"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from api.deps import RegistryDep
from api.problems import problem, problem_response
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
