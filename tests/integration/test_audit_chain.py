"""The audit trail is append-only and tamper-evident: the database refuses UPDATE, DELETE
and TRUNCATE, and an edit made past the guard (a superuser's) breaks the hash chain at
the event edited, which `mdm audit verify` names."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner, Result

from mdm.cli import app
from mdm.config import get_settings
from mdm.services.context import Registry
from mdm.services.ingest import ingest_many
from mdm.store.audit import verify
from tests.factories import incoming


def _seed(registry: Registry, n: int = 6) -> None:
    ingest_many(
        registry,
        [incoming("crm", f"c-{i}", given_name=f"Ana{i}", email=f"ana{i}@x.io") for i in range(n)],
        actor="t",
    )


def _verify(registry: Registry):  # type: ignore[no-untyped-def]
    with registry.database.engine.connect() as conn:
        return verify(conn)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'mallory'",
        "DELETE FROM audit_events WHERE seq = 2",
        "TRUNCATE audit_events",
    ],
)
def test_the_database_refuses_to_change_the_trail(registry: Registry, statement: str) -> None:
    _seed(registry)
    if statement.startswith("TRUNCATE") and registry.database.dialect == "sqlite":
        statement = "DELETE FROM audit_events"  # SQLite's truncate
    with pytest.raises(DBAPIError, match="append-only"), registry.database.engine.begin() as conn:
        conn.execute(text(statement))
    result = _verify(registry)
    assert result.ok and result.events == 12


def _bypass(registry: Registry) -> str:
    """What a superuser (or anyone with the file) can do: switch the guard off."""
    if registry.database.dialect == "postgresql":
        return "SET LOCAL session_replication_role = replica"
    return "DROP TRIGGER audit_events_no_update"


def test_an_edit_past_the_guard_is_named_by_verify(registry: Registry) -> None:
    _seed(registry)
    assert _verify(registry).ok
    with registry.database.engine.begin() as conn:
        conn.execute(text(_bypass(registry)))
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5"))
    result = _verify(registry)
    assert not result.ok
    assert (result.broken_seq, result.reason) == (5, "its content was changed")

    cli = _cli(registry, "--json")
    assert cli.exit_code == 1
    assert '"broken_seq": 5' in cli.stdout


def test_a_deleted_event_breaks_the_chain_at_the_next(registry: Registry) -> None:
    _seed(registry)
    with registry.database.engine.begin() as conn:
        if registry.database.dialect == "postgresql":
            conn.execute(text(_bypass(registry)))
        else:
            conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        conn.execute(text("DELETE FROM audit_events WHERE seq = 7"))
    result = _verify(registry)
    assert (result.broken_seq, result.reason) == (8, "does not follow the event before it")


def test_verify_passes_on_an_intact_trail(registry: Registry) -> None:
    _seed(registry)
    cli = _cli(registry)
    assert cli.exit_code == 0, cli.output
    assert "12 events" in cli.output


def test_concurrent_writers_chain_in_commit_order(pg_registry: Registry) -> None:
    """Eight writers at once: the chain follows commit order, so it verifies whole."""
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(15):
                record = incoming("ats", f"w{worker}-{i}", given_name=f"W{worker}x{i}",
                                  email=f"w{worker}.{i}@x.io")  # fmt: skip
                ingest_many(pg_registry, [record], actor=f"w{worker}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = _verify(pg_registry)
    assert result.ok, result
    assert result.events == 8 * 15 * 2


def _cli(registry: Registry, *args: str) -> Result:
    get_settings.cache_clear()  # the command reads the settings of this test's database
    try:
        env = {"MDM_DATABASE_URL": registry.settings.database_url}
        return CliRunner().invoke(app, ["audit", "verify", *args], env=env)
    finally:
        get_settings.cache_clear()
