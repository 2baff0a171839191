"""JSON responses serialised by pydantic's own (compiled) serialiser.

A route that returns a model lets FastAPI validate it again and encode it through the
standard library; returning the bytes directly saves most of a millisecond a request on the
ingest path. The route keeps its `response_model` for the OpenAPI document.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(
        content=model.model_dump_json(), status_code=status_code, media_type="application/json"
    )
