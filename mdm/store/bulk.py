"""Bulk inserts: COPY or pipelined statements on PostgreSQL, executemany elsewhere.

The registry writes a handful of tables per unit of work (persons, records, keys, audit,
outbox). Through the ORM layer each statement costs more in Python than on the server;
COPY sends a whole table's rows at once. Rows are rendered to COPY's text format here,
which is several times cheaper than adapting them value by value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from psycopg import Connection as PgConnection
from psycopg import Cursor, sql
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    String,
    Table,
    TypeDecorator,
    insert,
    text,
)

from mdm.model.errors import ConcurrentUpdate

# Below this many rows a pipelined INSERT beats setting up a COPY.
COPY_THRESHOLD = 32
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def dumps_json(value: Any) -> str:
    """JSON text for a statement parameter: orjson, and dates of any subclass."""
    return orjson.dumps(value, default=_iso).decode()


def _iso(value: Any) -> str:
    """What orjson leaves to the caller: subclasses of date and datetime."""
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def _json_text(value: Any) -> str:
    if value is None:
        return "\\N"
    # orjson escapes control characters inside strings; only backslashes remain to double.
    return dumps_json(value).replace("\\", "\\\\")


def _renderer(column: Column[Any]) -> Callable[[Any], str]:
    """COPY text rendering for one column, chosen once per column rather than per value."""
    kind = column.type
    if isinstance(kind, JSON):
        return _json_text
    if isinstance(kind, DateTime | TypeDecorator):
        return lambda v: "\\N" if v is None else v.isoformat()
    if isinstance(kind, String):
        return lambda v: "\\N" if v is None else _escape(v)
    return lambda v: "\\N" if v is None else str(v)


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

    On PostgreSQL large row sets go by COPY (which a pipeline cannot carry) and the rest
    in pipelines: a single round trip however many statements. A checked statement whose
    row count differs raises `ConcurrentUpdate` (the caller's transaction is then void).
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
    small: list[tuple[Table, Sequence[dict[str, Any]]]] = []
    with driver.cursor() as cursor:

        def send_small() -> None:
            if small or (checked and not checks):
                with driver.pipeline():
                    if not checks:
                        for statement in checked:
                            check = driver.cursor()
                            check.execute(statement.query, statement.params)
                            checks.append((check, statement.expected_rows))
                    for small_table, small_rows in small:
                        _execute_inserts(cursor, small_table, small_rows)
                small.clear()

        # Table order is foreign-key order: a COPY first sends the small inserts before it.
        for table, rows in tables:
            if len(rows) < COPY_THRESHOLD:
                small.append((table, rows))
            else:
                send_small()
                _copy(cursor, table, rows)
        send_small()
    for check, expected in checks:
        updated = check.rowcount
        check.close()
        if updated != expected:
            raise ConcurrentUpdate("a row changed concurrently")


def _target(table: Table, columns: list[str]) -> sql.Composed:
    return sql.SQL("{} ({})").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def _copy(cursor: Cursor[Any], table: Table, rows: Sequence[dict[str, Any]]) -> None:
    columns = list(rows[0])
    renderers = [(c, _renderer(table.c[c])) for c in columns]
    payload = "".join("\t".join([render(row[c]) for c, render in renderers]) + "\n" for row in rows)
    with cursor.copy(sql.SQL("COPY {} FROM STDIN").format(_target(table, columns))) as copy:
        copy.write(payload.encode())


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
