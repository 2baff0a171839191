"""The unit of work: one transaction, the repositories inside it, commit or roll back."""

from __future__ import annotations

import re
from types import TracebackType

from sqlalchemy import Connection, Engine, RootTransaction

from mdm.store.consents import ConsentRepository
from mdm.store.db import make_engine
from mdm.store.health import HealthRepository
from mdm.store.keys import KeyRepository
from mdm.store.registry import RegistryRepository
from mdm.store.rejections import RejectionRepository
from mdm.store.sealing import Sealer
from mdm.store.webhooks import WebhookRepository

# What pg_export_snapshot returns: hexadecimal numbers joined by dashes.
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")


class UnitOfWork:
    """`with uow: ...; uow.commit()`; leaving the block without commit rolls back.

    A Core connection rather than an ORM session: the registry maps rows itself, and a
    session's bookkeeping costs measurable CPU on every request.
    """

    def __init__(
        self,
        engine: Engine,
        sealer: Sealer,
        *,
        read_only: bool = False,
        flushed: bool = True,
        consistent: bool = False,
        snapshot: str | None = None,
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._read_only = read_only
        self._flushed = flushed
        if snapshot is not None and not _SNAPSHOT_ID.fullmatch(snapshot):
            raise ValueError(f"not a snapshot id: {snapshot!r}")
        self._consistent = consistent or snapshot is not None
        self._snapshot = snapshot
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None

    def __enter__(self) -> UnitOfWork:
        self._conn = self._engine.connect()
        postgres = self._engine.dialect.name == "postgresql"
        if self._consistent and postgres:
            # A read-only transaction whose statements all see one snapshot (the first
            # statement's, or another transaction's exported one).
            self._transaction = self._conn.begin()
            self._conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            if self._snapshot is not None:
                # SET takes no bound parameters: the id, checked when given, is quoted in.
                self._conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{self._snapshot}'")
                # The exporting transaction holds the locks this one asks for; a lock
                # this one must wait for was requested behind those (an ALTER TABLE, a
                # TRUNCATE) and waits for the exporter in turn: a deadlock the server
                # cannot see. Better to fail, and the exporter with it.
                self._conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
        elif self._read_only and postgres:
            # Reads that need no common snapshot (each statement of READ COMMITTED has its
            # own anyway) go without a transaction: no BEGIN, no ROLLBACK round trip. On
            # SQLite every unit keeps its transaction: there the driver, not the server,
            # pays for it.
            self._conn = self._conn.execution_options(isolation_level="AUTOCOMMIT")
            self._transaction = None
        else:
            # Begun explicitly: the repository also talks to the driver directly, and the
            # transaction must be SQLAlchemy's to commit.
            self._transaction = self._conn.begin()
            if not self._flushed and self._engine.dialect.name == "postgresql":
                self._conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        self.registry = RegistryRepository(self._conn, self._sealer)
        self.rejections = RejectionRepository(self._conn, self._sealer)
        self.webhooks = WebhookRepository(self._conn, self._sealer)
        self.health = HealthRepository(self._conn)
        self.keys = KeyRepository(self._conn)
        self.consents = ConsentRepository(self._conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if self._transaction is not None and self._transaction.is_active:
                self._transaction.rollback()
        finally:
            self._conn.close()
            self._conn = self._transaction = None

    def commit(self) -> None:
        assert self._transaction is not None, "a read-only unit of work has nothing to commit"
        self._transaction.commit()


class Database:
    """Owns the engine and hands out units of work."""

    def __init__(self, engine: Engine, sealer: Sealer) -> None:
        self.engine = engine
        self.sealer = sealer

    def uow(
        self,
        *,
        read_only: bool = False,
        flushed: bool = True,
        consistent: bool = False,
        snapshot: str | None = None,
    ) -> UnitOfWork:
        """A unit of work; `read_only` for reads that need no transaction (PostgreSQL).

        With `consistent`, a read-only transaction whose every statement reads one
        snapshot; with `snapshot`, the one another unit exported
        (`RegistryRepository.export_snapshot`), so that units on several connections read
        the same registry (PostgreSQL; on SQLite a unit is one transaction anyway).

        With `flushed=False` its commit returns before the server has flushed it to disk
        (PostgreSQL's `synchronous_commit = off`): a server crash in the next fraction of a
        second may undo it whole, never in part. Only for work that is redone when it is
        lost, such as the nightly dedupe's chunks (see `flush_all`).
        """
        return UnitOfWork(
            self.engine,
            self.sealer,
            read_only=read_only,
            flushed=flushed,
            consistent=consistent,
            snapshot=snapshot,
        )

    def detached(self) -> Database:
        """The same database through an engine of its own, for a forked process: a pool's
        connections must not be shared between processes."""
        url = self.engine.url.render_as_string(hide_password=False)
        return Database(make_engine(url, pool_size=1), self.sealer)

    def flush_all(self) -> None:
        """Return once every commit made so far is on disk, those of `flushed=False` units
        included. A commit waits for the log to be flushed up to its own record, and so
        past every commit before it, only when its transaction wrote to the log: this one
        writes a transactional message (read by nobody but logical decoding)."""
        if self.dialect != "postgresql":
            return
        with self.engine.connect() as conn, conn.begin():
            conn.exec_driver_sql(
                "SELECT pg_logical_emit_message(true, %s, %s)", ("mdm", "flush_all")
            )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()
