"""The stewards' UI session: a signed cookie naming the steward and the form token.

The cookie is HttpOnly and SameSite=Strict; its signature is an HMAC keyed from the admin
key, so every worker process checks it alike and rotating the key ends every session.
Each form carries the session's CSRF token, compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "mdm_session"
LIFETIME_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    actor: str
    csrf: str
    expires: int
    scopes: frozenset[str] = frozenset()  # the signing-in key's: they drive redaction


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"mdm-ui-session:" + secret.encode()).digest()


def issue(
    actor: str, secret: str, now: float | None = None, scopes: frozenset[str] = frozenset()
) -> tuple[str, Session]:
    session = Session(
        actor, secrets.token_urlsafe(24), int((now or time.time()) + LIFETIME_SECONDS), scopes
    )
    data = {"a": session.actor, "c": session.csrf, "e": session.expires, "s": sorted(scopes)}
    payload = base64.urlsafe_b64encode(json.dumps(data).encode()).decode()
    signature = hmac.new(_key(secret), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{signature}", session


def read(cookie: str | None, secret: str | None, now: float | None = None) -> Session | None:
    """The session a cookie holds, or None if it is missing, forged or expired."""
    if not cookie or not secret or "." not in cookie:
        return None
    payload, signature = cookie.rsplit(".", 1)
    expected = hmac.new(_key(secret), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload))
        session = Session(
            str(data["a"]), str(data["c"]), int(data["e"]), frozenset(data.get("s") or ())
        )
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > (now or time.time()) else None


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), (token or "").encode())
