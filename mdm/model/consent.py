"""Consent statements: a person granted or withdrew consent for a purpose, at a time."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

PURPOSE_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"
_PURPOSE = re.compile(PURPOSE_PATTERN)


def is_purpose(value: str) -> bool:
    return _PURPOSE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Consent:
    """One statement as a source captured it. `at` is when the person gave or withdrew it
    (the source's clock); `recorded_at` is when the registry learnt of it."""

    id: UUID
    person_id: UUID  # the person it was recorded on: a survivor's may hold an alias
    purpose: str
    granted: bool
    source: str
    at: datetime
    evidence: str | None
    recorded_at: datetime
    recorded_by: str

    @property
    def order(self) -> tuple[datetime, datetime, UUID]:
        """Later statements sort last: the latest `at` speaks for the person; between two
        with the same `at`, the one recorded later (a correction) does."""
        return (self.at, self.recorded_at, self.id)

    def stated(self) -> dict[str, Any]:
        """What the statement says, as events and audit entries carry it."""
        return {
            "purpose": self.purpose,
            "granted": self.granted,
            "source": self.source,
            "at": self.at.isoformat(),
        }


def current_consents(statements: Iterable[Consent]) -> dict[str, Consent]:
    """The statement that holds for each purpose."""
    current: dict[str, Consent] = {}
    for statement in statements:
        held = current.get(statement.purpose)
        if held is None or statement.order > held.order:
            current[statement.purpose] = statement
    return dict(sorted(current.items()))


def newest_first(statements: Iterable[Consent]) -> list[Consent]:
    return sorted(statements, key=lambda s: s.order, reverse=True)
