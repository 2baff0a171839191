from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from mdm.store.errors import is_transient


@pytest.mark.parametrize(
    "error",
    [errors.DeadlockDetected(), errors.SerializationFailure(), errors.UniqueViolation()],
    ids=lambda e: type(e).__name__,
)
def test_races_reported_by_the_driver_itself_are_retried(error: psycopg.Error) -> None:
    assert is_transient(error)


def test_other_errors_are_not_retried() -> None:
    assert not is_transient(errors.SyntaxError())
    assert not is_transient(ValueError("x"))
