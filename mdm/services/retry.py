"""Retry a unit of work that lost a race with a concurrent one."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from mdm.model.errors import ConcurrentUpdate

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 8
# serialization_failure, deadlock_detected, unique_violation
_RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ConcurrentUpdate):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in _RETRYABLE_SQLSTATES:
            return True
        return "database is locked" in str(exc.orig)
    return False


def run_with_retries(work: Callable[[], T]) -> T:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return work()
        except Exception as exc:
            if attempt == MAX_ATTEMPTS or not _retryable(exc):
                raise
            log.info("unit of work lost a race (attempt %d): %s", attempt, type(exc).__name__)
            # Jittered back-off so two retrying writers do not collide again in lock-step.
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
    raise AssertionError("unreachable")
