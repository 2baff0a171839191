"""Generic values (a placeholder email shared by a crowd) are not locked, and never link."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from mdm.services.context import Registry
from mdm.services.ingest import ingest_many, ingest_one
from mdm.services.match import match_record
from mdm.store.registry import RegistryRepository
from tests.conftest import settings_for, truncate
from tests.factories import incoming

PLACEHOLDER = ("email", "test@test.com")


@pytest.fixture
def small_blocks(database_url: str) -> Iterator[Registry]:
    """A registry where three persons sharing a value make it generic."""
    reg = Registry.from_settings(settings_for(database_url, max_block_size=2))
    if reg.database.dialect == "postgresql":
        truncate(reg)
    yield reg
    reg.close()


@pytest.fixture
def locks_taken(monkeypatch: pytest.MonkeyPatch) -> list[set[str]]:
    """The advisory lock names each look-up asked for, in order."""
    taken: list[set[str]] = []
    lookup = RegistryRepository.lookup

    def recording(self: RegistryRepository, *args: Any, lock: Iterable[str] = (), **kw: Any):  # type: ignore[no-untyped-def]
        taken.append(set(lock))
        return lookup(self, *args, lock=lock, **kw)

    monkeypatch.setattr(RegistryRepository, "lookup", recording)
    return taken


def _crowd(registry: Registry) -> None:
    names = [("Liam", "Okafor"), ("Olivia", "Lindqvist"), ("Noah", "Tanaka")]
    results = ingest_many(
        registry,
        [incoming("crm", given_name=g, family_name=f, email="test@test.com") for g, f in names],
        actor="t",
    )
    assert len({r.person_id for r in results}) == 3  # type: ignore[union-attr]


def test_a_generic_value_is_learnt_and_no_longer_locked(
    small_blocks: Registry, locks_taken: list[set[str]]
) -> None:
    _crowd(small_blocks)
    # The crowd's own batch saw the value shared by nobody yet: it was locked.
    assert "email:test@test.com" in locks_taken[0]
    ingest_one(small_blocks, incoming("crm", given_name="Emma", family_name="Ruiz",
                                      email="test@test.com"), actor="t")  # fmt: skip
    assert PLACEHOLDER in small_blocks.generic_keys
    locks_taken.clear()
    result = ingest_one(
        small_blocks,
        incoming("crm", given_name="Zed", family_name="Quinn", email="test@test.com",
                 phone="+34 600 000 001"),
        actor="t",
    )  # fmt: skip
    assert result.decision == "created"
    assert len(locks_taken) == 1
    assert "email:test@test.com" not in locks_taken[0]
    assert any(name.startswith("record:crm:") for name in locks_taken[0])


def test_a_value_no_longer_generic_is_locked_and_looked_up_again(
    registry: Registry, locks_taken: list[set[str]]
) -> None:
    first = ingest_one(registry, incoming("ats", email="ana.garcia@example.com"), actor="t")
    # A stale hint: the process believes the address generic, the database does not.
    registry.generic_keys.learn({("email", "ana.garcia@example.com")}, set())
    locks_taken.clear()
    second = ingest_one(registry, incoming("hris", email="ana.garcia@example.com"), actor="t")
    assert (second.decision, second.person_id) == ("linked", first.person_id)
    assert "email:ana.garcia@example.com" not in locks_taken[0]
    assert locks_taken[1] == {"email:ana.garcia@example.com"}
    assert ("email", "ana.garcia@example.com") not in registry.generic_keys


def test_a_generic_value_is_not_evidence(small_blocks: Registry) -> None:
    _crowd(small_blocks)
    # Same name as one of the crowd and the same placeholder address: nothing else agrees.
    result = match_record(
        small_blocks,
        incoming("ats", given_name="Liam", family_name="Okafor", email="test@test.com"),
    )
    assert result.decision != "linked"
    (candidate,) = result.candidates
    levels = {c["attribute"]: c["level"] for c in candidate.explanation["comparisons"]}
    assert levels["email"] == "missing"
    assert "name_only" in result.explanation["guards"]
