"""Database errors, sorted: which mean "lost a race, run the unit of work again", and which
mean "the database cannot be reached"."""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# serialization_failure, deadlock_detected, unique_violation
_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}


def _driver_error(exc: BaseException) -> BaseException | None:
    """The driver's exception, whether SQLAlchemy wrapped it or psycopg raised it directly
    (bulk writes and pipelines talk to psycopg)."""
    if isinstance(exc, DBAPIError):
        return exc.orig
    if isinstance(exc, psycopg.Error):
        return exc
    return None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    orig = _driver_error(exc)
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) in _RETRYABLE_SQLSTATES:
        return True
    return "database is locked" in str(orig)


# The database is down, unreachable or refusing connections.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
