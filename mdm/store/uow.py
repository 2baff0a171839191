"""The unit of work: one transaction, the repositories inside it, commit or roll back."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine, RootTransaction

from mdm.store.consents import ConsentRepository
from mdm.store.health import HealthRepository
from mdm.store.keys import KeyRepository
from mdm.store.registry import RegistryRepository
from mdm.store.rejections import RejectionRepository
from mdm.store.sealing import Sealer
from mdm.store.webhooks import WebhookRepository


class UnitOfWork:
    """`with uow: ...; uow.commit()`; leaving the block without commit rolls back.

    A Core connection rather than an ORM session: the registry maps rows itself, and a
    session's bookkeeping costs measurable CPU on every request.
    """

    def __init__(
        self, engine: Engine, sealer: Sealer, *, read_only: bool = False, flushed: bool = True
    ) -> None:
        self._engine = engine
        self._sealer = sealer
        self._read_only = read_only
        self._flushed = flushed
        self._conn: Connection | None = None
        self._transaction: RootTransaction | None = None

    def __enter__(self) -> UnitOfWork:
        self._conn = self._engine.connect()
        if self._read_only and self._engine.dialect.name == "postgresql":
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

    def uow(self, *, read_only: bool = False, flushed: bool = True) -> UnitOfWork:
        """A unit of work; `read_only` for reads that need no transaction (PostgreSQL).

        With `flushed=False` its commit returns before the server has flushed it to disk
        (PostgreSQL's `synchronous_commit = off`): a server crash in the next fraction of a
        second may undo it whole, never in part. Only for work that is redone when it is
        lost, such as the nightly dedupe's chunks (see `flush_all`).
        """
        return UnitOfWork(self.engine, self.sealer, read_only=read_only, flushed=flushed)

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
