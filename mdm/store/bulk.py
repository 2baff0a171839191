"""Bulk inserts: COPY or pipelined statements on PostgreSQL, executemany elsewhere.

The registry writes a handful of tables per unit of work (persons, records, keys, audit,
outbox). Through the ORM layer each statement costs more in Python than on the server;
COPY sends a whole table's rows at once. Rows are rendered to COPY's text format here,
which is several times cheaper than adapting them value by value.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

import orjson
from psycopg import Connection as PgConnection
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Table, insert
from sqlalchemy.orm import Session

# Below this many rows a pipelined INSERT beats setting up a COPY.
COPY_THRESHOLD = 32
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, uuid.UUID | int | float):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.isoformat()
    raise TypeError(f"no COPY rendering for {type(value).__name__}")


def _json_text(value: Any) -> str:
    if value is None:
        return "\\N"
    return orjson.dumps(value).decode().translate(_ESCAPES)


def driver_connection(session: Session) -> PgConnection[Any]:
    raw = session.connection().connection.driver_connection
    assert isinstance(raw, PgConnection)
    return raw


def pipeline(session: Session) -> AbstractContextManager[object]:
    if session.get_bind().dialect.name != "postgresql":
        return nullcontext()
    return driver_connection(session).pipeline()


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), list(rows))
        return
    columns = list(rows[0])
    json_columns = {c.name for c in table.c if isinstance(c.type, JSON)}
    target = sql.SQL("{} ({})").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    conn = driver_connection(session)
    with conn.cursor() as cursor:
        if len(rows) >= COPY_THRESHOLD:
            renderers: list[Callable[[Any], str]] = [
                _json_text if c in json_columns else _text for c in columns
            ]
            payload = "".join(
                "\t".join(render(row[c]) for render, c in zip(renderers, columns, strict=True))
                + "\n"
                for row in rows
            )
            with cursor.copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
                copy.write(payload.encode())
            return
        placeholders = sql.SQL(", ").join(sql.Placeholder() * len(columns))
        statement = sql.SQL("INSERT INTO {} VALUES ({})").format(target, placeholders)
        for row in rows:
            cursor.execute(
                statement,
                tuple(
                    Jsonb(row[c], dumps=_dumps)
                    if c in json_columns and row[c] is not None
                    else row[c]
                    for c in columns
                ),
            )
