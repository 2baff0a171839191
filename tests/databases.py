"""PostgreSQL databases made for one test or benchmark run, next to a base URL's."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mdm.store.db import make_engine
from mdm.store.migrate import upgrade


def _recreate(base_url: str, name: str, template: str | None = None) -> str:
    url = make_url(base_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    # A copy by files, not through the write-ahead log: a copy of a million-person registry
    # logged page by page (PostgreSQL's default) wrote 5 GB of WAL, and the checkpoint it
    # set off ran through the measured run that followed.
    like = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"{like}'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def fresh_database(base_url: str, name: str, *, migrate: bool = True) -> str:
    """An empty database `name` on `base_url`'s server (dropped first if it exists),
    migrated to the latest schema unless told not to; its URL."""
    target = _recreate(base_url, name)
    if migrate:
        engine = make_engine(target, pool_size=1)
        upgrade(engine)
        engine.dispose()
    return target


def copy_database(base_url: str, template: str, name: str) -> str:
    """`name` as a copy of the database `template` (set-up for a measured run), brought to
    the latest schema should the template be older; its URL."""
    target = _recreate(base_url, name, template)
    engine = make_engine(target, pool_size=1)
    upgrade(engine)
    engine.dispose()
    return target
