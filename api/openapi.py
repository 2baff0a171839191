"""The OpenAPI document: every error an operation can answer, declared as what it is.

Each operation's own `responses` say when it answers 404 or 409 and why; the errors that
any operation can answer (no key, too little scope, a body too large, a request that is
not valid, too many requests, the database away) are added here once, all as RFC 9457
problem details, so that the document a client generates code from is the whole truth.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "One entry per field that is not valid",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_REF = {"$ref": "#/components/schemas/Problem"}

# Every operation behind a key.
_GUARDED = {
    "401": "No valid API key (`WWW-Authenticate: Bearer`)",
    "403": "The key lacks this operation's scope, or the record's source",
    "422": "The request is not valid: `errors` names each field",
    "429": "Too many requests for this key: retry after `Retry-After` seconds",
    "503": "The registry's database is not available: retry after `Retry-After` seconds",
}
_WITH_BODY = {"413": "The body is larger than the registry accepts"}
_WITH_PATH = {"404": "Nothing has this id"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _REF}}}


def _declare(operation: dict[str, Any], errors: dict[str, str]) -> None:
    responses = operation.setdefault("responses", {})
    for status, description in errors.items():
        known = responses.get(status, {})
        responses[status] = _problem(known.get("description") or description)


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        # FastAPI's own shape for a 422 is not what the registry answers.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path, item in document.get("paths", {}).items():
            for method, operation in item.items():
                errors = {
                    status: (spec.get("description") or "")
                    for status, spec in operation.get("responses", {}).items()
                    if status.startswith(("4", "5"))
                }
                if operation.get("security"):
                    errors = {**_GUARDED, **errors}
                if method in ("post", "put", "patch"):
                    errors = {**_WITH_BODY, **errors}
                if "{" in path:
                    errors = {**_WITH_PATH, **errors}
                _declare(operation, errors)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
