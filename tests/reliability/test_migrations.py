"""Migrations, checked by pytest-alembic on SQLite and on PostgreSQL: a single head, every
step upgrades from empty, the migrated schema is the models' schema, every step goes down
and up again, and a seeded registry survives going down to the first revision and back,
still resolving records and with its audit chain intact."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_alembic import Config
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Engine, func, select

from fixtures.generator import generate
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import ingest_many
from mdm.store.audit import verify
from mdm.store.db import make_engine
from mdm.store.migrate import ROOT
from mdm.store.tables import PersonRow, SourceRecordRow
from tests.conftest import PG_URL, settings_for
from tests.databases import fresh_database

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]

MIGRATIONS_DB = "mdm_migrations_test"


@pytest.fixture(params=["sqlite", "postgresql"])
def migrations_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    request.getfixturevalue("pg_url")  # skips (or fails under CI) without PostgreSQL
    return fresh_database(PG_URL, MIGRATIONS_DB, migrate=False)


@pytest.fixture
def alembic_config(migrations_url: str) -> Config:
    return Config(
        config_options={
            "file": str(ROOT / "alembic.ini"),
            "script_location": str(ROOT / "migrations"),
            "sqlalchemy.url": migrations_url,
        }
    )


@pytest.fixture
def alembic_engine(migrations_url: str) -> Iterator[Engine]:
    engine = make_engine(migrations_url, pool_size=1)
    yield engine
    engine.dispose()


def _counts(engine: Engine) -> dict[str, Any]:
    links = select(SourceRecordRow.source_id, SourceRecordRow.person_id)
    with engine.connect() as conn:
        return {
            "persons": conn.scalar(select(func.count()).select_from(PersonRow)),
            "records": conn.scalar(select(func.count()).select_from(SourceRecordRow)),
            "links": set(conn.execute(links).all()),
        }


def _seed(url: str, records: list[IncomingRecord]) -> None:
    registry = Registry.from_settings(settings_for(url))
    try:
        ingest_many(registry, records, actor="seed")
    finally:
        registry.close()


def test_a_seeded_registry_goes_down_and_up_again_and_keeps_working(
    alembic_runner: Any, alembic_engine: Engine, migrations_url: str
) -> None:
    alembic_runner.migrate_up_to("heads")
    records = [IncomingRecord(g.source, g.source_id, g.data) for g in generate(300, seed=7)]
    _seed(migrations_url, records[:200])
    before = _counts(alembic_engine)
    assert before["records"] == 200 and 0 < before["persons"] < 200

    alembic_runner.migrate_down_to("0008_trust")
    alembic_runner.migrate_up_to("heads")

    assert _counts(alembic_engine) == before
    _seed(migrations_url, records[200:])
    assert _counts(alembic_engine)["records"] == 300
    with alembic_engine.connect() as conn:
        chain = verify(conn)
    assert chain.ok and chain.events > 300, chain


def test_going_below_the_persons_keys_is_refused_and_changes_nothing(
    alembic_runner: Any, alembic_engine: Engine, migrations_url: str
) -> None:
    alembic_runner.migrate_up_to("heads")
    _seed(migrations_url, [IncomingRecord(g.source, g.source_id, g.data) for g in generate(20)])
    before = _counts(alembic_engine)

    with pytest.raises(RuntimeError, match="cannot downgrade below 0008_trust"):
        alembic_runner.migrate_down_to("0007_api_keys")

    assert alembic_runner.current == "0008_trust"  # the refused step rolled back
    assert _counts(alembic_engine) == before


def test_events_written_before_the_chain_join_it_on_upgrade(
    alembic_runner: Any, alembic_engine: Engine
) -> None:
    """A registry with an audit trail from before 0008_trust: the upgrade chains it, and
    `verify` accepts the chain (SQLite stores the ids differently from PostgreSQL)."""
    alembic_runner.migrate_up_to("0007_api_keys")
    for n in range(3):
        alembic_runner.insert_into(
            "audit_events",
            {
                "id": uuid.uuid4().hex,  # as SQLite keeps it; PostgreSQL reads it too
                "at": datetime(2026, 1, 1, 12, n, tzinfo=UTC),
                "actor": "legacy",
                "action": "person.updated",
                "entity_type": "person",
                "entity_id": str(uuid.uuid4()),
                "correlation_id": None,
                "before": None,
                "after": {"n": n},
            },
        )
    alembic_runner.migrate_up_to("heads")
    with alembic_engine.connect() as conn:
        chain = verify(conn)
    assert chain.ok and chain.events == 3, chain
