"""RFC 9457 problem details for every error the API returns."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mdm.model.errors import (
    BatchTooLarge,
    ConcurrentUpdate,
    DeliveryNotFound,
    ErasedRecord,
    InvalidCursor,
    InvalidRecord,
    MdmError,
    MergeRefused,
    PersonErased,
    PersonNotFound,
    RecordNotFound,
    RejectionNotFound,
    ReviewNotFound,
    SourceNotFound,
    StaleDecision,
    SubscriptionNotFound,
)
from mdm.store.errors import UNAVAILABLE_ERRORS

log = logging.getLogger("mdm.api")
PROBLEM_JSON = "application/problem+json"
# FastAPI's answer to a body it cannot decode at all.
_UNREADABLE_BODY = "There was an error parsing the body"

_STATUS: dict[type[MdmError], int] = {
    InvalidRecord: 422,
    InvalidCursor: 422,
    BatchTooLarge: 413,
    PersonNotFound: 404,
    PersonErased: 410,
    ErasedRecord: 409,
    ConcurrentUpdate: 409,
    ReviewNotFound: 404,
    RecordNotFound: 404,
    StaleDecision: 409,
    MergeRefused: 422,
    RejectionNotFound: 404,
    SourceNotFound: 404,
    SubscriptionNotFound: 404,
    DeliveryNotFound: 404,
}


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: MdmError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


def problem_of(exc: MdmError, instance: str | None = None) -> dict[str, Any]:
    errors = [e.as_dict() for e in getattr(exc, "errors", [])]
    extra: dict[str, Any] = {}
    if isinstance(exc, PersonErased | ErasedRecord):
        extra["person_id"] = str(exc.person_id)
    if isinstance(exc, StaleDecision):
        extra["current"] = exc.current
    if isinstance(exc, InvalidRecord) and exc.rejection_id is not None:
        extra["rejection_id"] = str(exc.rejection_id)
    return problem(
        status_of(exc), exc.detail, title=exc.title, errors=errors, instance=instance, **extra
    )


def field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(errors: Any) -> list[dict[str, str]]:
    out = []
    for e in errors:
        where = field_path(tuple(e["loc"]))
        inner = (e.get("ctx") or {}).get("field") if e.get("type") == "unstorable" else None
        if inner:  # a place inside the body, found by a check of the whole body
            where = inner if where == "body" else f"{where}.{inner}"
        out.append({"field": where, "message": e["msg"]})
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(MdmError)
    async def _mdm_error(request: Request, exc: MdmError) -> JSONResponse:
        return problem_response(problem_of(exc, request.url.path))

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        if any(e["message"].startswith("JSON decode error") for e in errors):
            detail = "The request body is not valid JSON"
        else:
            detail = "The request is not valid"
        return problem_response(problem(422, detail, errors=errors, instance=request.url.path))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
            # A body that is not even text is as invalid as one that is not JSON: 422.
            return problem_response(
                problem(
                    422,
                    "The request body is not valid JSON",
                    errors=[{"field": "body", "message": "not UTF-8 encoded JSON"}],
                    instance=request.url.path,
                )
            )
        return problem_response(
            problem(exc.status_code, str(exc.detail), instance=request.url.path),
            headers=dict(exc.headers or {}),
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning(
            "database unavailable on %s %s: %s",
            request.method,
            request.url.path,
            type(exc).__name__,
        )
        return problem_response(
            problem(
                503,
                "The registry's database is not available; try again shortly",
                instance=request.url.path,
            ),
            headers={"Retry-After": "1"},
        )

    # Handled here rather than as a generic 500, which would also drop the connection.
    for error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            problem(500, "The registry could not complete the request", instance=request.url.path)
        )
