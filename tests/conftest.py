"""Databases for the tests: a migrated SQLite file and a migrated PostgreSQL database.

Every storage and API test runs on both. PostgreSQL comes from MDM_TEST_POSTGRES_URL
(default: the local server, database mdm_test, created if missing). Without a reachable
PostgreSQL its tests are skipped, except under CI, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from mdm.config import Settings
from mdm.crypto import new_key
from mdm.services.context import Registry
from mdm.store.db import make_engine
from mdm.store.migrate import upgrade
from mdm.store.tables import Base

# No per-example deadline: the properties are about results, and a loaded machine (a bench
# or a build beside the suite) once pushed a 1 ms example of a pure function past 200 ms.
settings.register_profile("mdm", deadline=None)
settings.load_profile("mdm")

ADMIN_KEY = "test-admin-key"
# Keys for the whole test session, and for the servers and workers the tests start.
os.environ.setdefault("MDM_DATA_KEYS", f"test1:{new_key()}")
os.environ.setdefault("MDM_BLIND_INDEX_KEY", new_key())
PG_URL = os.environ.get(
    "MDM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/mdm_test"
)
# Every table the models declare: a new table is emptied between tests without a change here.
TABLES = tuple(Base.metadata.tables)


def settings_for(url: str, **overrides: object) -> Settings:
    return Settings(database_url=url, admin_key=ADMIN_KEY, **overrides)  # type: ignore[arg-type]


def _ensure_pg_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
            )
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> str:
    try:
        _ensure_pg_database(PG_URL)
        engine = make_engine(PG_URL, pool_size=1)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade(engine)
        engine.dispose()
    except OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI and is not reachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    return PG_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def truncate(registry: Registry) -> None:
    with registry.database.engine.begin() as conn:
        # The audit trail refuses TRUNCATE; a superuser may switch its guard off, and so
        # do the tests, between two of them.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "mdm.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    reg = Registry.from_settings(settings_for(database_url))
    if reg.database.dialect == "postgresql":
        truncate(reg)
    yield reg
    reg.close()


@pytest.fixture
def pg_registry(pg_url: str) -> Iterator[Registry]:
    reg = Registry.from_settings(settings_for(pg_url))
    truncate(reg)
    yield reg
    reg.close()
