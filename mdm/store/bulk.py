"""Bulk inserts: pipelined statements on PostgreSQL, executemany elsewhere.

The registry writes a handful of tables per unit of work (persons, records, keys, audit,
outbox). Through the ORM layer each statement costs more in Python than on the server.
Here each table's rows travel as one JSON document (rendered by orjson, in C) expanded by
`json_populate_recordset`, and every table of a unit goes in one pipeline: one round trip.
Rendering rows to COPY's text format value by value in Python cost a worker 0.1 ms per
ingested record more than the JSON document, for 0.04 ms less on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from psycopg import Connection as PgConnection
from psycopg import Cursor, sql
from sqlalchemy import Connection, Table, insert, text

from mdm.model.errors import ConcurrentUpdate


def dumps_json(value: Any) -> str:
    """JSON text for a statement parameter: orjson (UUIDs in their canonical text, as
    str() writes them, in C), and dates of any subclass."""
    return orjson.dumps(value, default=_iso).decode()


def _iso(value: Any) -> str:
    """What orjson leaves to the caller: subclasses of date and datetime."""
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def driver_connection(conn: Connection) -> PgConnection[Any]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, PgConnection)
    return raw


@dataclass(frozen=True, slots=True)
class CheckedStatement:
    """A statement sent with the inserts, whose row count must come out as expected."""

    query: str
    params: list[Any]
    expected_rows: int


def write_tables(
    conn: Connection,
    tables: Sequence[tuple[Table, Sequence[dict[str, Any]]]],
    checked: Sequence[CheckedStatement] = (),
) -> None:
    """Run `checked` statements, then insert rows into several tables in order.

    On PostgreSQL the checks and the inserts go in one pipeline: a single round trip
    however many statements. A checked statement whose row count differs raises
    `ConcurrentUpdate` (the caller's transaction is then void).
    """
    tables = [(table, rows) for table, rows in tables if rows]
    if not tables and not checked:
        return
    if conn.dialect.name != "postgresql":
        for statement in checked:
            result = conn.execute(text(statement.query), statement.params)
            if result.rowcount != statement.expected_rows:
                raise ConcurrentUpdate("a row changed concurrently")
        for table, rows in tables:
            conn.execute(insert(table), list(rows))
        return
    driver = driver_connection(conn)
    checks: list[tuple[Cursor[Any], int]] = []
    with driver.cursor() as cursor, driver.pipeline():
        for statement in checked:
            check = driver.cursor()
            check.execute(statement.query, statement.params)
            checks.append((check, statement.expected_rows))
        # Table order is foreign-key order.
        for table, rows in tables:
            _execute_inserts(cursor, table, rows)
    for check, expected in checks:
        updated = check.rowcount
        check.close()
        if updated != expected:
            raise ConcurrentUpdate("a row changed concurrently")


def _target(table: Table, columns: list[str]) -> sql.Composed:
    return sql.SQL("{} ({})").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _execute_inserts(cursor: Cursor[Any], table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """All rows in one statement with one parameter, the rows as a JSON array: psycopg
    parses a statement's placeholders again for every call once it has more than 50 (a
    multi-row VALUES list), which cost more than the insert; one parameter keeps the
    statement short, parsed once, and the same for any number of rows."""
    columns = tuple(rows[0])
    cursor.execute(_insert_sql(cursor.connection, table, columns), [dumps_json(list(rows))])


_statements: dict[tuple[str, tuple[str, ...]], str] = {}


def _insert_sql(conn: PgConnection[Any], table: Table, columns: tuple[str, ...]) -> str:
    key = (table.name, columns)
    statement = _statements.get(key)
    if statement is None:
        names = sql.SQL(", ").join(map(sql.Identifier, columns))
        # json (not jsonb) keeps a json column's text as sent: raw payloads stay verbatim.
        statement = (
            sql.SQL("INSERT INTO {} SELECT {} FROM json_populate_recordset(NULL::{}, %s)")
            .format(_target(table, list(columns)), names, sql.Identifier(table.name))
            .as_string(conn)
        )
        _statements[key] = statement
    return statement
