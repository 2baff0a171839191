"""The audit trail: append-only, hash-chained, personal values under each person's key.

Every event's hash covers the previous event's hash and the event itself, so an edit, a
deletion or a reordering anywhere breaks the chain from there on (`verify`). Events are
chained in the order they commit: a writer takes one lock for the chain's head and holds
it to the end of its transaction, which is why events are appended last in a unit of work.

The trail is a few such chains, its lanes: the API, the workers and the stewards write on
lane 0; each of the nightly dedupe's writing processes on a lane of its own (`DEDUPE_LANE`
onwards). A dedupe chunk appends hundreds of events, and an online ingest waiting for its
lock would wait for all of them; on lanes of their own, neither waits for the other. An
event moved to another lane breaks both chains.

What an event says about a person (before and after values) is sealed under that person's
own key; erasing the person destroys the key, and the trail keeps its shape and its
hashes without a readable personal value (crypto-shredding).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

import orjson
from sqlalchemy import Connection, Table, select, tuple_

from mdm.crypto import UnreadableValue, open_document, seal_document
from mdm.model.person import AuditEvent
from mdm.store.tables import AuditEventRow

audit_t = cast(Table, AuditEventRow.__table__)
GENESIS = "0" * 64
# Person events whose content names no personal value: kept in clear, readable after an
# erasure (the erasure's own event lists the records it reached).
CLEAR_ACTIONS = frozenset({"person.erased"})
# pg_advisory_xact_lock key of lane 0's head ("mdmaudit" as 8 bytes); lane n's is n more.
_CHAIN_LOCK = 0x6D646D6175646974
ONLINE_LANE = 0
DEDUPE_LANE = 1  # the first of the dedupe's lanes, one per writing process


def digest(prev: str, event: Mapping[str, Any]) -> str:
    """The hash of one stored event, chained to `prev`."""
    body = orjson.dumps(
        [
            str(event["id"]),
            event["at"].isoformat(),
            event["actor"],
            event["action"],
            event["entity_type"],
            event["entity_id"],
            event["correlation_id"],
            event["before"],
            event["after"],
        ],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(prev.encode() + body).hexdigest()


LOCK_SQL = f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK} + %s)"
HEAD_SQL = "SELECT hash FROM audit_events WHERE lane = %s ORDER BY seq DESC LIMIT 1"
SQLITE_HEAD_SQL = "SELECT hash FROM audit_events WHERE lane = :lane ORDER BY seq DESC LIMIT 1"


def chained(rows: Sequence[dict[str, Any]], head: str) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        row = {**row, "prev_hash": head}
        head = row["hash"] = digest(head, row)
        out.append(row)
    return out


def seal_event(event: AuditEvent, key: bytes | None) -> dict[str, Any]:
    """An event as stored: a person event's values sealed under the person's key."""
    row: dict[str, Any] = {
        "id": event.id,
        "at": event.at,
        "actor": event.actor,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "correlation_id": event.correlation_id,
        "before": event.before,
        "after": event.after,
    }
    if key is not None:
        for side in ("before", "after"):
            if row[side] is not None:
                row[side] = {"sealed": seal_document(key, row[side])}
    return row


def personal(event: AuditEvent) -> bool:
    return event.entity_type == "person" and event.action not in CLEAR_ACTIONS


def open_event(m: Mapping[str, Any], key: bytes | None) -> AuditEvent:
    """A stored event, its sealed values opened, or marked erased when the key is gone."""
    sides: dict[str, Any] = {}
    for side in ("before", "after"):
        value = m[side]
        if isinstance(value, Mapping) and set(value) == {"sealed"}:
            try:
                value = open_document(key, value["sealed"]) if key else {"erased": True}
            except UnreadableValue:
                value = {"unreadable": True}
        sides[side] = value
    return AuditEvent(
        id=m["id"],
        at=m["at"],
        actor=m["actor"],
        action=m["action"],
        entity_type=m["entity_type"],
        entity_id=m["entity_id"],
        correlation_id=m["correlation_id"],
        before=sides["before"],
        after=sides["after"],
    )


@dataclass(frozen=True, slots=True)
class Verification:
    events: int
    heads: dict[int, str]  # each lane's last hash
    broken_seq: int | None = None
    broken_id: UUID | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_seq is None

    @property
    def head(self) -> str:
        """Lane 0's last hash."""
        return self.heads.get(ONLINE_LANE, GENESIS)


def verify(conn: Connection, *, batch: int = 20_000) -> Verification:
    """Walk every lane's chain in order; name the first event that does not hold."""
    heads: dict[int, str] = {}
    count = 0
    for row in _stream(conn, batch):
        count += 1
        lane = row["lane"]
        head = heads.get(lane, GENESIS)
        if row["prev_hash"] != head:
            return Verification(
                count, heads, row["seq"], row["id"], "does not follow the event before it"
            )
        if digest(head, row) != row["hash"]:
            return Verification(count, heads, row["seq"], row["id"], "its content was changed")
        heads[lane] = row["hash"]
    return Verification(count, heads)


def _stream(conn: Connection, batch: int) -> Iterator[Any]:
    """Every event, lane by lane, each lane in order."""
    after = (-1, -1)
    c = audit_t.c
    while True:
        rows = conn.execute(
            select(audit_t)
            .where(tuple_(c.lane, c.seq) > after)
            .order_by(c.lane, c.seq)
            .limit(batch)
        ).all()
        if not rows:
            return
        for r in rows:
            yield r._mapping
        after = (rows[-1].lane, rows[-1].seq)
