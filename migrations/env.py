"""Alembic environment: the URL comes from MDM_DATABASE_URL or the caller's config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from mdm.config import get_settings
from mdm.store.db import make_engine
from mdm.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    # SQLite alters tables by copying them (batch mode): the original is dropped while
    # other tables point at its rows, which enforced foreign keys refuse. SQLite's own
    # procedure: switch enforcement off outside the transaction, check every key before
    # committing, switch it on again.
    sqlite = connection.dialect.name == "sqlite"
    relaxed = sqlite and not connection.in_transaction()
    if relaxed:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if relaxed:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
    finally:
        if relaxed:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, Engine):  # pytest-alembic hands over its engine
        with connection.connect() as conn:
            _run(conn)
        return
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `mdm migrate`")
run_migrations_online()
