"""ASGI middleware: body size cap and request ids. Plain ASGI to stay off the hot path."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON, problem
from mdm.logs import request_id_var

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class _TooLarge(Exception):
    pass


async def _send_problem(send: Send, body: dict[str, Any], request_id: str | None) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(payload)).encode()),
    ]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": body["status"], "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class RequestGuard:
    """Caps request bodies (413) and carries X-Request-ID through to the audit log."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        raw_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = raw_id if _SAFE_ID.match(raw_id) else str(uuid.uuid4())
        token = request_id_var.set(request_id)
        too_large = problem(
            413,
            f"The request body exceeds {self.max_body_bytes} bytes",
            errors=[{"field": "body", "message": f"at most {self.max_body_bytes} bytes"}],
        )
        try:
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                await _send_problem(send, too_large, request_id)
                return
            received = 0
            exceeded = replied = False

            async def limited_receive() -> Message:
                nonlocal received, exceeded
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body_bytes:
                        exceeded = True
                        raise _TooLarge
                return message

            async def send_with_id(message: Message) -> None:
                nonlocal replied
                if exceeded:
                    # The framework answers a failed body read with its own 400; the
                    # caller is owed the 413 instead.
                    if not replied:
                        replied = True
                        await _send_problem(send, too_large, request_id)
                    return
                if message["type"] == "http.response.start":
                    replied = True
                    message["headers"] = [
                        *message.get("headers", []),
                        (b"x-request-id", request_id.encode()),
                    ]
                await send(message)

            try:
                await self.app(scope, limited_receive, send_with_id)
            except _TooLarge:
                if not replied:
                    await _send_problem(send, too_large, request_id)
        finally:
            request_id_var.reset(token)
