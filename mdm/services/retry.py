"""Retry a unit of work that lost a race with a concurrent one."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from mdm.model.errors import ConcurrentUpdate
from mdm.store.errors import is_transient

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 8


def run_with_retries(work: Callable[[], T]) -> T:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return work()
        except Exception as exc:
            if attempt == MAX_ATTEMPTS or not (
                isinstance(exc, ConcurrentUpdate) or is_transient(exc)
            ):
                raise
            log.info("unit of work lost a race (attempt %d): %s", attempt, type(exc).__name__)
            # Jittered back-off so two retrying writers do not collide again in lock-step.
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
    raise AssertionError("unreachable")
