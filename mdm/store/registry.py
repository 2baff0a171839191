"""The registry repository: every query on persons, records, keys, reviews and events."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

import numpy as np
import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row
from sqlalchemy import (
    Connection,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    update,
)

from mdm.crypto import new_person_key
from mdm.model.errors import ConcurrentUpdate, PersonErased, PersonNotFound
from mdm.model.person import (
    MERGED_NOTE,
    AuditEvent,
    Erasure,
    LinkedRecord,
    LinkSource,
    LinkState,
    OutboxEvent,
    PersonState,
    PersonStatus,
    RecordValues,
    ReviewItem,
)
from mdm.model.record import MatchFeatures
from mdm.store import audit
from mdm.store.bulk import CheckedStatement, driver_connection, dumps_json, write_tables
from mdm.store.locks import LOCK_SQL, TRY_LOCK_SQL, lock_id
from mdm.store.sealing import Sealer
from mdm.store.tables import (
    AuditEventRow,
    ErasureRow,
    MatchModelRow,
    NotAMatchRow,
    OutboxRow,
    PersonKeyRow,
    PersonRow,
    ReviewItemRow,
    SourceRecordRow,
)

Key = tuple[str, str]
persons_t = cast(Table, PersonRow.__table__)
records_t = cast(Table, SourceRecordRow.__table__)
keys_t = cast(Table, PersonKeyRow.__table__)
reviews_t = cast(Table, ReviewItemRow.__table__)
audit_t = cast(Table, AuditEventRow.__table__)
outbox_t = cast(Table, OutboxRow.__table__)
models_t = cast(Table, MatchModelRow.__table__)
not_a_match_t = cast(Table, NotAMatchRow.__table__)
erasures_t = cast(Table, ErasureRow.__table__)

_RECORD_COLUMNS = [c for c in records_t.c if c.name not in ("raw", "explanation")]
# What deciding a record needs of its candidates: no golden record, no attributes. Named
# one by one: `_candidate_person` and `_candidate_record` read their rows by position.
_CANDIDATE_PERSON_COLUMNS = [
    persons_t.c[n] for n in ("id", "status", "version", "created_at", "updated_at", "merged_into")
]
_CANDIDATE_RECORD_COLUMNS = [
    records_t.c[n]
    for n in ("id", "source", "source_id", "person_id", "features", "source_updated_at",
              "received_at", "version", "link_source", "link_state", "link_score",
              "link_rule", "linked_at")
]  # fmt: skip
_LOAD_PERSONS = select(
    persons_t.c.id,
    persons_t.c.status,
    persons_t.c.version,
    persons_t.c.created_at,
    persons_t.c.updated_at,
    persons_t.c.golden,
    persons_t.c.merged_into,
    persons_t.c.stewardship,
    persons_t.c.data_key,
).where(persons_t.c.id.in_(bindparam("ids", expanding=True)))
_PG_LOAD_PERSONS = (
    "SELECT id, status, version, created_at, updated_at, golden, merged_into, stewardship, "
    "data_key FROM persons WHERE id = ANY(%s::uuid[])"
)
_RECORD_VALUE_COLUMNS = [
    records_t.c[n]
    for n in ("person_id", "id", "source", "source_id", "version", "attributes", "features",
              "source_updated_at", "received_at")
]  # fmt: skip
_LOAD_RECORD_VALUES = (
    select(*_RECORD_VALUE_COLUMNS)
    .where(records_t.c.person_id.in_(bindparam("ids", expanding=True)))
    .order_by(records_t.c.person_id, records_t.c.source, records_t.c.source_id)
)
_PG_LOAD_RECORD_VALUES = pgsql.SQL(
    "SELECT {} FROM source_records WHERE person_id = ANY(%s::uuid[]) "
    "ORDER BY person_id, source, source_id"
).format(pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in _RECORD_VALUE_COLUMNS))
_PG_LOAD_RECORDS = pgsql.SQL(
    "SELECT {} FROM source_records WHERE person_id = ANY(%s::uuid[])"
).format(pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in _RECORD_COLUMNS))
_LOAD_RECORDS = select(*_RECORD_COLUMNS).where(
    records_t.c.person_id.in_(bindparam("ids", expanding=True))
)
_LOAD_CANDIDATE_PERSONS = select(*_CANDIDATE_PERSON_COLUMNS).where(
    persons_t.c.id.in_(bindparam("ids", expanding=True))
)
_LOAD_CANDIDATE_RECORDS = select(*_CANDIDATE_RECORD_COLUMNS).where(
    records_t.c.person_id.in_(bindparam("ids", expanding=True))
)
_LOAD_ATTRIBUTES = select(records_t.c.id, records_t.c.attributes).where(
    records_t.c.id.in_(bindparam("ids", expanding=True))
)


def _pg_select(columns: Sequence[Any], table: str, where: str) -> pgsql.Composed:
    return pgsql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s::uuid[])").format(
        pgsql.SQL(", ").join(pgsql.Identifier(c.name) for c in columns),
        pgsql.Identifier(table),
        pgsql.Identifier(where),
    )


_PG_LOAD_CANDIDATE_PERSONS = _pg_select(_CANDIDATE_PERSON_COLUMNS, "persons", "id")
_PG_LOAD_CANDIDATE_RECORDS = _pg_select(_CANDIDATE_RECORD_COLUMNS, "source_records", "person_id")
_PG_LOAD_ATTRIBUTES = "SELECT id, attributes FROM source_records WHERE id = ANY(%s::uuid[])"
# Known records and key hits together: a row per key with its persons, or with none when
# it holds more than the cap (LIMIT cap + 1: a generic value costs that many index entries
# and one row). The keys travel as one JSON document: cheaper to send than two text arrays.
_PG_LOOKUP = (
    "SELECT 'k', q.kind, q.value, k.ids "
    "FROM json_to_recordset(%(keys)s::json) AS q(kind text, value text) "
    "CROSS JOIN LATERAL (SELECT count(*) AS n, "
    "CASE WHEN count(*) > %(cap)s THEN NULL ELSE array_agg(s.person_id) END AS ids "
    "FROM (SELECT person_id FROM person_keys WHERE kind = q.kind AND value = q.value "
    "LIMIT %(limit)s) AS s) AS k "
    "WHERE k.n > 0 "
    "UNION ALL "
    "SELECT 'r', r.source, r.source_id, ARRAY[r.person_id] FROM source_records r "
    "JOIN json_to_recordset(%(pairs)s::json) AS q(source text, source_id text) "
    "ON r.source = q.source AND r.source_id = q.source_id"
)
_SQLITE_CHUNK = 2000
_PG_MOVE_RECORDS = (
    "UPDATE source_records AS r SET person_id = q.p "
    "FROM json_to_recordset(%s::json) AS q(r uuid, p uuid) WHERE r.id = q.r"
)
# The open items of each merged-away person, found through the (person, status) index one
# person at a time (LATERAL ... OFFSET 0): joined as sets, a planner whose statistics
# predate a run's thousands of new items took the status index and read every open item
# for each unit of work.
_PG_REPOINT_REVIEWS = (
    "UPDATE review_items AS r SET {column} = m.n "
    "FROM (SELECT i.id, q.n FROM json_to_recordset(%s::json) AS q(o uuid, n uuid) "
    "CROSS JOIN LATERAL (SELECT id FROM review_items "
    "WHERE {column} = q.o AND status = 'open' OFFSET 0) AS i) AS m "
    "WHERE r.id = m.id"
)
# Match items whose two persons became one, closed as merged.
_PG_CLOSE_MERGED_REVIEWS = (
    "UPDATE review_items AS r SET status = 'merged', decision = 'auto_merge', "
    "resolved_at = %s, resolved_by = %s, note = %s "
    "FROM (SELECT i.id FROM unnest(%s::uuid[]) AS s(p) "
    "CROSS JOIN LATERAL (SELECT id FROM review_items WHERE person_a = s.p "
    "AND status = 'open' AND person_b = s.p AND kind = 'match' OFFSET 0) AS i) AS m "
    "WHERE r.id = m.id"
)
# Each side through its own index (an OR of the two would read the table).
_PG_NOT_A_MATCH_OF = (
    "SELECT person_a, person_b FROM not_a_match WHERE person_a = ANY(%s::uuid[]) "
    "UNION SELECT person_a, person_b FROM not_a_match WHERE person_b = ANY(%s::uuid[])"
)
_PG_SET_STEWARDSHIP = (
    "UPDATE persons AS p SET stewardship = q.s "
    "FROM json_to_recordset(%s::json) AS q(id uuid, s json) WHERE p.id = q.id"
)
# Every record with its person's id (16 bytes), unsorted and unjoined: rows stream out
# while the scan runs, and the caller orders them and keeps the live persons' (a sort here
# would hold back the first row until the last was read; a join numbering the persons in
# id order walked the persons' index, a random read of the table for each). A part is a
# range of the table's pages, read by a TID range scan: parts read side by side scan the
# table once between them.
_PG_STREAM_FEATURES = (
    "SELECT uuid_send(r.person_id), r.source, r.source_id, r.features::text "
    "FROM source_records r WHERE r.ctid >= %s::tid AND (%s::tid IS NULL OR r.ctid < %s::tid)"
)
_PG_PAGES = "SELECT pg_relation_size('source_records') / current_setting('block_size')::int"
# A share of the records for `stream_match_features`: a range of pages (the last
# open-ended) on PostgreSQL, None (all of them) elsewhere.
FeaturePart = tuple[int, int | None] | None
# The live persons' ids and update times, as bytes, in no order: a group per last byte of
# the id (a bytea holds at most a gigabyte; the first bytes of time-ordered UUIDs are
# alike).
_PG_LIVE_PERSONS = (
    "SELECT string_agg(uuid_send(id), ''::bytea), "
    "string_agg(int8send((extract(epoch FROM updated_at) * 1000000)::int8), ''::bytea) "
    "FROM persons WHERE status = 'active' GROUP BY get_byte(uuid_send(id), 15)"
)
_PG_REMOVE_KEYS = (
    "DELETE FROM person_keys AS k USING json_to_recordset(%s::json) AS q(k text, v text, p uuid) "
    "WHERE k.kind = q.k AND k.value = q.v AND k.person_id = q.p"
)
# Optimistic concurrency: the row is written only if nobody bumped its version meanwhile.
# The persons travel as parallel arrays in binary, golden record and lineage as text each,
# so that the server parses every document once. As one JSON document (json_to_recordset)
# each nested document was walked twice, in the array and as a value: about half of the
# statement's time at a merged person's few kilobytes of lineage.
_PG_UPDATE_PERSONS = (
    "UPDATE persons AS p SET status = v.status, merged_into = v.merged_into, "
    "golden = v.golden::jsonb, lineage = v.lineage::json, version = v.old_version + 1, "
    "updated_at = v.updated_at "
    "FROM unnest(%b::uuid[], %b::int[], %b::text[], %b::uuid[], %b::text[], %b::text[], "
    "%b::timestamptz[]) AS v(id, old_version, status, merged_into, golden, lineage, updated_at) "
    "WHERE p.id = v.id AND p.version = v.old_version"
)
_UPDATE_PERSON = (
    update(persons_t)
    .where(persons_t.c.id == bindparam("b_id"))
    .where(persons_t.c.version == bindparam("b_version"))
    .values(
        status=bindparam("b_status"),
        merged_into=bindparam("b_merged_into"),
        golden=bindparam("b_golden"),
        lineage=bindparam("b_lineage"),
        version=bindparam("b_new_version"),
        updated_at=bindparam("b_updated_at"),
    )
)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _record_from(m: Mapping[str, Any], *, full: bool = False) -> LinkedRecord:
    return LinkedRecord(
        id=m["id"],
        source=m["source"],
        source_id=m["source_id"],
        person_id=m["person_id"],
        attributes=m.get("attributes") or {},
        features=MatchFeatures.from_json(m["features"]),
        source_updated_at=_utc(m["source_updated_at"]),
        received_at=m["received_at"].astimezone(UTC),
        version=m["version"],
        link_source=LinkSource(m["link_source"]),
        link_state=LinkState(m["link_state"]),
        link_score=m["link_score"],
        link_rule=m["link_rule"],
        linked_at=m["linked_at"].astimezone(UTC),
        explanation=m["explanation"] if full else {},
        raw=m["raw"] if full else None,
    )


_PERSON_STATUS = {s.value: s for s in PersonStatus}
_LINK_SOURCE = {s.value: s for s in LinkSource}
_LINK_STATE = {s.value: s for s in LinkState}


def _candidate_person(row: Sequence[Any]) -> PersonState:
    """A row of `_CANDIDATE_PERSON_COLUMNS`, in their order."""
    id_, status, version, created_at, updated_at, merged_into = row
    return PersonState(id_, _PERSON_STATUS[status], version, created_at.astimezone(UTC),
                       updated_at.astimezone(UTC), {}, {}, [], merged_into)  # fmt: skip


def _candidate_record(row: Sequence[Any]) -> LinkedRecord:
    """A row of `_CANDIDATE_RECORD_COLUMNS`, in their order: what `_record_from` makes of
    it as a mapping, built positionally (several candidate records per ingested record)."""
    (id_, source, source_id, person_id, features, source_updated_at, received_at, version,
     link_source, link_state, link_score, link_rule, linked_at) = row  # fmt: skip
    return LinkedRecord(
        id_, source, source_id, person_id, {}, MatchFeatures.from_json(features),
        source_updated_at.astimezone(UTC) if source_updated_at is not None else None,
        received_at.astimezone(UTC), version, _LINK_SOURCE[link_source],
        _LINK_STATE[link_state], link_score, link_rule, linked_at.astimezone(UTC),
    )  # fmt: skip


def _person_from(m: Mapping[str, Any]) -> PersonState:
    """A person row as domain state; without a lineage column, lineage is left empty."""
    return PersonState(
        id=m["id"],
        status=PersonStatus(m["status"]),
        version=m["version"],
        created_at=m["created_at"].astimezone(UTC),
        updated_at=m["updated_at"].astimezone(UTC),
        golden=m.get("golden") or {},
        lineage=m.get("lineage") or {},
        records=[],
        merged_into=m["merged_into"],
        choices=(m.get("stewardship") or {}).get("choices") or {},
        raised=set((m.get("stewardship") or {}).get("raised") or ()),
    )


def _record_values(r: LinkedRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "source": r.source,
        "source_id": r.source_id,
        "person_id": r.person_id,
        "raw": r.raw,
        "attributes": r.attributes,
        "features": r.features.as_json(),
        "source_updated_at": r.source_updated_at,
        "received_at": r.received_at,
        "version": r.version,
        "link_source": r.link_source.value,
        "link_state": r.link_state.value,
        "link_score": r.link_score,
        "link_rule": r.link_rule,
        "explanation": r.explanation,
        "linked_at": r.linked_at,
    }


def _review(row: Row[Any]) -> ReviewItem:
    return ReviewItem(**{k: v for k, v in row._mapping.items()})


def epoch_microseconds(at: datetime) -> int:
    """Microseconds since the epoch (UTC where `at` has no zone), exactly."""
    return (at.replace(tzinfo=at.tzinfo or UTC) - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RegistryRepository:
    def __init__(self, conn: Connection, sealer: Sealer) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.sealer = sealer
        self._pending: list[tuple[Table, list[dict[str, Any]]]] | None = None
        self._checked: list[CheckedStatement] = []
        # Persons' own keys (wrapped under the key ring) as read or created in this unit.
        self._wrapped_keys: dict[UUID, str | None] = {}
        # The audit lane this unit appends to, and its head once the unit holds its lock.
        self.audit_lane = audit.ONLINE_LANE
        self._audit_head: str | None = None

    # -- sealed documents --------------------------------------------------------------------
    def _person(self, m: dict[str, Any]) -> PersonState:
        open_ = self.sealer.open
        if "golden" in m:
            m["golden"] = open_("attributes", m["golden"])
        if m.get("lineage"):
            m["lineage"] = open_("lineage", m["lineage"])
        if m.get("stewardship"):
            m["stewardship"] = open_("stewardship", m["stewardship"])
        if "data_key" in m:
            self._wrapped_keys[m["id"]] = m["data_key"]
        return _person_from(m)

    def _record(self, m: dict[str, Any], *, full: bool = False) -> LinkedRecord:
        if "attributes" in m:
            m["attributes"] = self.sealer.open("attributes", m["attributes"])
        if full:
            m["raw"] = self.sealer.open("raw", m["raw"])
        return _record_from(m, full=full)

    def _record_row(self, r: LinkedRecord) -> dict[str, Any]:
        row = _record_values(r)
        row["attributes"] = self.sealer.seal("attributes", r.attributes)
        row["raw"] = self.sealer.seal("raw", r.raw)
        return row

    def _review(self, row: Row[Any]) -> ReviewItem:
        item = _review(row)
        if item.kind != "conflict":
            return item
        return replace(item, explanation=self.sealer.open("explanation", item.explanation))

    def person_keys(self, ids: Iterable[UUID]) -> dict[UUID, bytes]:
        """The own keys of these persons (None-less: an erased person has none left)."""
        ids = set(ids)
        missing = [i for i in ids if i not in self._wrapped_keys]
        for chunk in _chunks(missing, _SQLITE_CHUNK):
            rows = self.conn.execute(
                select(persons_t.c.id, persons_t.c.data_key).where(persons_t.c.id.in_(chunk))
            )
            self._wrapped_keys.update({pid: wrapped for pid, wrapped in rows})
        ring = self.sealer.ring
        return {i: ring.unwrap(w) for i in set(ids) if (w := self._wrapped_keys.get(i)) is not None}

    def _ensure_keys(self, ids: Iterable[UUID]) -> dict[UUID, bytes]:
        """Own keys for these persons, made now for persons written before keys existed."""
        ids = set(ids)
        keys = self.person_keys(ids)
        for pid in sorted(ids - set(keys)):
            wrapped = self.sealer.ring.wrap(new_person_key())
            # An erased person gets no new key: nothing personal is written about it again.
            found = self.conn.execute(
                update(persons_t)
                .where(persons_t.c.id == pid, persons_t.c.status != "erased")
                .values(data_key=func.coalesce(persons_t.c.data_key, wrapped))
                .returning(persons_t.c.data_key)
            ).scalar()
            if found is not None:
                self._wrapped_keys[pid] = found
                keys[pid] = self.sealer.ring.unwrap(found)
        return keys

    # -- loading the working set -----------------------------------------------------------
    def held_elsewhere(self, names: Iterable[str]) -> set[str]:
        """Take the named locks that are free, without waiting; the names of those a
        concurrent transaction holds. On SQLite the unit already holds the database's
        write lock: none."""
        if self.dialect != "postgresql":
            return set()
        by_id = {lock_id(name): name for name in names}
        if not by_id:
            return set()
        with driver_connection(self.conn).cursor() as cursor:
            cursor.execute(TRY_LOCK_SQL, [sorted(by_id)])
            return {by_id[k] for (k,) in cursor.fetchall()}

    def lookup(
        self,
        pairs: Sequence[tuple[str, str]],
        keys: Iterable[Key],
        cap: int,
        *,
        lock: Iterable[str] = (),
    ) -> tuple[dict[Key, UUID], dict[Key, list[UUID]], set[Key]]:
        """Lock, then fetch what a batch needs to find its candidates.

        `lock` names the exact keys to serialise on (see locks.py); on PostgreSQL the lock
        and the look-up travel in one pipeline: the look-up starts, and takes its snapshot,
        only once the locks are held. Returns the persons of already known records by
        (source, source_id); the persons filed under each key; and the generic keys: those
        shared by more than `cap` persons (a household address, a placeholder), which
        bring no candidates.
        """
        keys = sorted(set(keys))
        pairs = sorted(set(pairs))
        known: dict[Key, UUID] = {}
        hits: dict[Key, list[UUID]] = defaultdict(list)
        if self.dialect == "postgresql":
            conn = driver_connection(self.conn)
            lock_ids = sorted({lock_id(k) for k in lock})
            with conn.cursor() as locker, conn.cursor() as cursor:
                with conn.pipeline():
                    if lock_ids:
                        locker.execute(LOCK_SQL, [lock_ids])
                    cursor.execute(
                        _PG_LOOKUP,
                        {
                            "keys": dumps_json([{"kind": k, "value": v} for k, v in keys]),
                            "cap": cap,
                            "limit": cap + 1,
                            "pairs": dumps_json([{"source": s, "source_id": i} for s, i in pairs]),
                        },
                    )
                generic: set[Key] = set()
                for tag, first, second, ids in cursor.fetchall():
                    if tag == "r":
                        known[(first, second)] = ids[0]
                    elif ids is None:
                        generic.add((first, second))
                    else:
                        hits[(first, second)] = ids
            return known, dict(hits), generic
        for chunk in _chunks(pairs, _SQLITE_CHUNK):
            rows = self.conn.execute(
                select(records_t.c.source, records_t.c.source_id, records_t.c.person_id).where(
                    tuple_(records_t.c.source, records_t.c.source_id).in_(chunk)
                )
            )
            for source, source_id, person_id in rows:
                known[(source, source_id)] = person_id
        for chunk in _chunks(keys, _SQLITE_CHUNK):
            rows = self.conn.execute(
                select(keys_t.c.kind, keys_t.c.value, keys_t.c.person_id).where(
                    tuple_(keys_t.c.kind, keys_t.c.value).in_(chunk)
                )
            )
            for kind, value, person_id in rows:
                hits[(kind, value)].append(person_id)
        too_many = {k for k, v in hits.items() if len(v) > cap}
        return known, {k: v for k, v in hits.items() if len(v) <= cap}, too_many

    def load_persons(
        self, ids: Iterable[UUID], *, candidates: bool = False
    ) -> dict[UUID, PersonState]:
        """Persons with their records, for matching and recomputing their golden records.

        A merged id also loads the person it points to. Lineage is not loaded: it is
        recomputed for every person a unit of work touches. With `candidates`, only what
        deciding a record needs: no golden records, stewards' choices or record attributes
        (the bulk of each row); `hydrate` loads them for the persons a unit changes.
        """
        wanted = set(ids)
        persons: dict[UUID, PersonState] = {}
        while wanted:
            if candidates:
                self._candidates(sorted(wanted), persons)
            else:
                person_rows, record_rows = self._person_rows(sorted(wanted))
                for m in person_rows:
                    persons[m["id"]] = self._person(m)
                for m in record_rows:
                    persons[m["person_id"]].records.append(self._record(m))
            wanted = {
                p.merged_into
                for p in persons.values()
                if p.merged_into is not None and p.merged_into not in persons
            }
        # Persons and records are read by two statements, each with its own snapshot: a
        # merge committed in between leaves a live person without records. The unit of work
        # must read again.
        if any(p.status == PersonStatus.ACTIVE and not p.records for p in persons.values()):
            raise ConcurrentUpdate("a person was merged while it was read")
        return persons

    def load_for_merge(
        self, ids: Iterable[UUID]
    ) -> tuple[dict[UUID, PersonState], dict[UUID, list[RecordValues]]]:
        """Persons about to be merged (and those they were merged into), without records or
        lineage, and what a merge reads of their records."""
        wanted = set(ids)
        persons: dict[UUID, PersonState] = {}
        records: dict[UUID, list[RecordValues]] = defaultdict(list)
        open_ = self.sealer.open
        while wanted:
            person_rows, record_rows = self._merge_rows(sorted(wanted))
            for m in person_rows:
                persons[m["id"]] = self._person(m)
            for (
                person_id,
                rid,
                source,
                source_id,
                version,
                attributes,
                features,
                at,
                received,
            ) in record_rows:
                records[person_id].append(
                    RecordValues(rid, source, source_id, version,
                                 open_("attributes", attributes) or {},
                                 _utc(at) or received.astimezone(UTC),
                                 MatchFeatures.from_json(features))
                )  # fmt: skip
            wanted = {
                p.merged_into
                for p in persons.values()
                if p.merged_into is not None and p.merged_into not in persons
            }
        if any(p.status == PersonStatus.ACTIVE and not records[p.id] for p in persons.values()):
            raise ConcurrentUpdate("a person was merged while it was read")
        return persons, dict(records)

    def live_persons(self, ids: Iterable[UUID]) -> dict[UUID, PersonState]:
        """The live person each id resolves to, following merges (without records, golden
        record or stewardship); ids that resolve to none are left out."""
        found: dict[UUID, PersonState] = {}
        wanted = set(ids)
        asked = set(wanted)
        while wanted:
            chunks = _chunks(sorted(wanted), _SQLITE_CHUNK)
            if self.dialect == "postgresql":
                conn = driver_connection(self.conn)
                with conn.cursor(row_factory=dict_row) as cursor:
                    cursor.execute(_PG_LOAD_CANDIDATE_PERSONS, [sorted(wanted)])
                    rows = cursor.fetchall()
            else:
                rows = [
                    dict(r._mapping)
                    for chunk in chunks
                    for r in self.conn.execute(_LOAD_CANDIDATE_PERSONS, {"ids": chunk})
                ]
            for m in rows:
                found[m["id"]] = _person_from(m)
            wanted = {
                p.merged_into
                for p in found.values()
                if p.merged_into is not None and p.merged_into not in found
            }
        out = {}
        for pid in asked:
            person, seen = found.get(pid), set()
            while person is not None and person.status == PersonStatus.MERGED:
                if person.id in seen or person.merged_into is None:
                    person = None
                    break
                seen.add(person.id)
                person = found.get(person.merged_into)
            if person is not None and person.status == PersonStatus.ACTIVE:
                out[pid] = person
        return out

    def _merge_rows(self, ids: list[UUID]) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
        if self.dialect == "postgresql":
            conn = driver_connection(self.conn)
            with conn.cursor(row_factory=dict_row) as persons, conn.cursor() as records:
                with conn.pipeline():
                    persons.execute(_PG_LOAD_PERSONS, [ids])
                    records.execute(_PG_LOAD_RECORD_VALUES, [ids])
                return persons.fetchall(), records.fetchall()
        person_rows: list[dict[str, Any]] = []
        record_rows: list[tuple[Any, ...]] = []
        for chunk in _chunks(ids, _SQLITE_CHUNK):
            person_rows.extend(
                dict(r._mapping) for r in self.conn.execute(_LOAD_PERSONS, {"ids": chunk})
            )
            record_rows.extend(
                tuple(r) for r in self.conn.execute(_LOAD_RECORD_VALUES, {"ids": chunk})
            )
        return person_rows, record_rows

    def _candidates(self, ids: list[UUID], into: dict[UUID, PersonState]) -> None:
        """Candidate persons and their records into `into`, from rows as tuples: nothing
        to open (no sealed column is read), and no mapping built per row."""
        if self.dialect == "postgresql":
            conn = driver_connection(self.conn)
            with conn.cursor() as persons, conn.cursor() as records:
                with conn.pipeline():
                    persons.execute(_PG_LOAD_CANDIDATE_PERSONS, [ids])
                    records.execute(_PG_LOAD_CANDIDATE_RECORDS, [ids])
                person_rows: list[Sequence[Any]] = persons.fetchall()
                record_rows: list[Sequence[Any]] = records.fetchall()
        else:
            person_rows, record_rows = [], []
            for chunk in _chunks(ids, _SQLITE_CHUNK):
                person_rows.extend(self.conn.execute(_LOAD_CANDIDATE_PERSONS, {"ids": chunk}))
                record_rows.extend(self.conn.execute(_LOAD_CANDIDATE_RECORDS, {"ids": chunk}))
        for row in person_rows:
            person = _candidate_person(row)
            into[person.id] = person
        for row in record_rows:
            record = _candidate_record(row)
            into[record.person_id].records.append(record)

    def _person_rows(self, ids: list[UUID]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self.dialect == "postgresql":
            conn = driver_connection(self.conn)
            with (
                conn.cursor(row_factory=dict_row) as persons,
                conn.cursor(row_factory=dict_row) as records,
            ):
                with conn.pipeline():
                    persons.execute(_PG_LOAD_PERSONS, [ids])
                    records.execute(_PG_LOAD_RECORDS, [ids])
                return persons.fetchall(), records.fetchall()
        person_rows: list[dict[str, Any]] = []
        record_rows: list[dict[str, Any]] = []
        for chunk in _chunks(ids, _SQLITE_CHUNK):
            person_rows.extend(
                dict(r._mapping) for r in self.conn.execute(_LOAD_PERSONS, {"ids": chunk})
            )
            record_rows.extend(
                dict(r._mapping) for r in self.conn.execute(_LOAD_RECORDS, {"ids": chunk})
            )
        return person_rows, record_rows

    def hydrate(
        self, person_ids: Sequence[UUID], record_ids: Sequence[UUID]
    ) -> tuple[dict[UUID, PersonState], dict[UUID, dict[str, Any]]]:
        """What a candidate load left out, for persons a unit of work is about to change:
        the persons' full rows (without records) and the records' attributes."""
        if self.dialect == "postgresql":
            conn = driver_connection(self.conn)
            with (
                conn.cursor(row_factory=dict_row) as persons,
                conn.cursor(row_factory=dict_row) as records,
            ):
                with conn.pipeline():
                    persons.execute(_PG_LOAD_PERSONS, [list(person_ids)])
                    records.execute(_PG_LOAD_ATTRIBUTES, [list(record_ids)])
                person_rows, record_rows = persons.fetchall(), records.fetchall()
        else:
            person_rows, record_rows = [], []
            for chunk in _chunks(list(person_ids), _SQLITE_CHUNK):
                person_rows.extend(
                    dict(r._mapping) for r in self.conn.execute(_LOAD_PERSONS, {"ids": chunk})
                )
            for chunk in _chunks(list(record_ids), _SQLITE_CHUNK):
                record_rows.extend(
                    dict(r._mapping) for r in self.conn.execute(_LOAD_ATTRIBUTES, {"ids": chunk})
                )
        open_ = self.sealer.open
        return (
            {m["id"]: self._person(m) for m in person_rows},
            {m["id"]: open_("attributes", m["attributes"]) for m in record_rows},
        )

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Collect the inserts made inside the block and write them together on leaving it:
        each table's rows as one JSON document, all in one pipelined round trip (PostgreSQL)."""
        self._pending, self._checked = [], []
        try:
            yield
            write_tables(self.conn, self._pending, self._checked)
        finally:
            self._pending, self._checked = None, []

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if self._pending is not None:
            self._pending.append((table, rows))
        else:
            write_tables(self.conn, [(table, rows)])

    def insert_persons(self, persons: Sequence[PersonState]) -> None:
        seal, ring = self.sealer.seal, self.sealer.ring
        rows = []
        for p in persons:
            wrapped = ring.wrap(new_person_key())
            self._wrapped_keys[p.id] = wrapped
            rows.append(
                {
                    "id": p.id,
                    "status": p.status.value,
                    "merged_into": p.merged_into,
                    "golden": seal("attributes", p.golden),
                    "lineage": seal("lineage", p.lineage),
                    "version": p.version,
                    "created_at": p.created_at,
                    "updated_at": p.updated_at,
                    "data_key": wrapped,
                }
            )
        self._insert(persons_t, rows)

    def update_persons(self, persons: Sequence[PersonState]) -> None:
        """Write persons whose version was bumped by one; a concurrent writer makes it fail.

        Inside `pipelined()` on PostgreSQL the update travels with the inserts, as one
        statement for all persons, and its row count is checked when they return.
        """
        if not persons:
            return
        seal = self.sealer.seal
        if self.dialect == "postgresql" and self._pending is not None:
            columns = [
                [p.id for p in persons],
                [p.version - 1 for p in persons],
                [p.status.value for p in persons],
                [p.merged_into for p in persons],
                [dumps_json(seal("attributes", p.golden)) for p in persons],
                [dumps_json(seal("lineage", p.lineage)) for p in persons],
                [p.updated_at for p in persons],
            ]
            self._checked.append(CheckedStatement(_PG_UPDATE_PERSONS, columns, len(persons)))
            return
        rows = [
            {
                "b_id": p.id,
                "b_version": p.version - 1,
                "b_new_version": p.version,
                "b_status": p.status.value,
                "b_merged_into": p.merged_into,
                "b_golden": seal("attributes", p.golden),
                "b_lineage": seal("lineage", p.lineage),
                "b_updated_at": p.updated_at,
            }
            for p in persons
        ]
        result = self.conn.execute(_UPDATE_PERSON, rows)
        if result.rowcount != len(rows):
            raise ConcurrentUpdate("a person changed concurrently")

    def insert_records(self, records: Sequence[LinkedRecord]) -> None:
        self._insert(records_t, [self._record_row(r) for r in records])

    def _update_records_by_id(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Set the given columns of records found by `id`, one executemany."""
        if not rows:
            return
        columns = [c for c in rows[0] if c != "id"]
        stmt = (
            update(records_t)
            .where(records_t.c.id == bindparam("b_id"))
            .values({c: bindparam(f"b_{c}") for c in columns})
        )
        self.conn.execute(stmt, [{f"b_{k}": v for k, v in row.items()} for row in rows])

    def update_records(self, records: Sequence[LinkedRecord]) -> None:
        self._update_records_by_id(
            [
                {
                    "id": r.id,
                    "person_id": r.person_id,
                    "raw": self.sealer.seal("raw", r.raw),
                    "attributes": self.sealer.seal("attributes", r.attributes),
                    "features": r.features.as_json(),
                    "source_updated_at": r.source_updated_at,
                    "received_at": r.received_at,
                    "version": r.version,
                }
                for r in records
            ]
        )

    def move_records(self, moves: Mapping[UUID, UUID]) -> None:
        """Re-link records to another person (a merge); nothing else about them changes."""
        if self.dialect == "postgresql" and moves:
            doc = dumps_json([{"r": r, "p": p} for r, p in moves.items()])
            self.conn.exec_driver_sql(_PG_MOVE_RECORDS, (doc,))
            return
        self._update_records_by_id([{"id": r, "person_id": p} for r, p in moves.items()])

    def repoint_reviews(self, merged: Mapping[UUID, UUID], *, actor: str, at: datetime) -> None:
        """Open review items of merged-away persons name the survivor instead; a match item
        whose two persons became one is closed as merged (a conflict item names one person
        on both sides, and stays open)."""
        self._repoint(merged)
        if self.dialect == "postgresql":
            survivors = sorted({str(p) for p in merged.values()})
            self.conn.exec_driver_sql(_PG_CLOSE_MERGED_REVIEWS, (at, actor, MERGED_NOTE, survivors))
            return
        self.conn.execute(
            update(reviews_t)
            .where(
                reviews_t.c.status == "open",
                reviews_t.c.kind == "match",
                reviews_t.c.person_a == reviews_t.c.person_b,
                reviews_t.c.person_a.in_(set(merged.values())),
            )
            .values(
                status="merged",
                decision="auto_merge",
                resolved_at=at,
                resolved_by=actor,
                note=MERGED_NOTE,
            )
        )

    def _repoint(self, merged: Mapping[UUID, UUID]) -> None:
        """One statement per column for the whole unit of work: a nightly run merges
        thousands of persons at once (on PostgreSQL the mapping travels as one JSON
        parameter; a CASE over hundreds of ids costs more to build than to run)."""
        if self.dialect == "postgresql":
            doc = dumps_json([{"o": old, "n": new} for old, new in merged.items()])
            for column in ("person_a", "person_b"):
                self.conn.exec_driver_sql(_PG_REPOINT_REVIEWS.format(column=column), (doc,))
            return
        for chunk in _chunks(sorted(merged), 500):
            mapping = {old: merged[old] for old in chunk}
            for column in ("person_a", "person_b"):
                target = reviews_t.c[column]
                self.conn.execute(
                    update(reviews_t)
                    .where(target.in_(chunk), reviews_t.c.status == "open")
                    .values({column: case(mapping, value=target)})
                )

    def conflicts_of(self, person_id: UUID) -> list[ReviewItem]:
        rows = self.conn.execute(
            select(reviews_t)
            .where(reviews_t.c.kind == "conflict", reviews_t.c.person_a == person_id)
            .order_by(reviews_t.c.created_at, reviews_t.c.id)
        )
        return [self._review(r) for r in rows]

    def choices_of(self, person_id: UUID) -> dict[str, Any]:
        found = self.conn.scalar(select(persons_t.c.stewardship).where(persons_t.c.id == person_id))
        found = self.sealer.open("stewardship", found)
        return dict((found or {}).get("choices") or {})

    def set_stewardship_of(
        self, states: Mapping[UUID, tuple[Mapping[str, Any], Iterable[str]]]
    ) -> None:
        """Stewards' choices and raised conflicts of many persons, in one statement: a
        nightly run raises conflicts on thousands of the persons it merges."""
        if not states:
            return
        seal = self.sealer.seal
        rows = [
            {"id": pid, "s": seal("stewardship", {"choices": dict(c), "raised": sorted(r)})}
            for pid, (c, r) in sorted(states.items())
        ]
        if self.dialect == "postgresql":
            doc = dumps_json([{"id": row["id"], "s": row["s"]} for row in rows])
            self.conn.exec_driver_sql(_PG_SET_STEWARDSHIP, (doc,))
            return
        self.conn.execute(
            update(persons_t)
            .where(persons_t.c.id == bindparam("b_id"))
            .values(stewardship=bindparam("b_s")),
            [{"b_id": row["id"], "b_s": row["s"]} for row in rows],
        )

    def marked_distinct(self, a: UUID, b: UUID) -> bool:
        """Whether a steward said these two persons are not one human."""
        first, second = sorted((a, b))
        found = self.conn.execute(
            select(not_a_match_t.c.person_a).where(
                not_a_match_t.c.person_a == first, not_a_match_t.c.person_b == second
            )
        ).first()
        return found is not None

    def add_not_a_match(
        self,
        a: UUID,
        b: UUID,
        *,
        actor: str,
        reason: str,
        at: datetime,
        review_id: UUID | None = None,
    ) -> None:
        if a == b or self.marked_distinct(a, b):
            return
        first, second = sorted((a, b))
        self.conn.execute(
            insert(not_a_match_t).values(
                person_a=first,
                person_b=second,
                created_at=at,
                actor=actor,
                reason=reason,
                review_id=review_id,
            )
        )

    def not_a_match_to_reopen(self, person_id: UUID) -> list[UUID]:
        """The persons said not to be `person_id` whose pair has not come back yet."""
        c = not_a_match_t.c
        rows = self.conn.execute(
            select(c.person_a, c.person_b).where(
                or_(c.person_a == person_id, c.person_b == person_id), c.reopened_at.is_(None)
            )
        )
        return [b if a == person_id else a for a, b in rows]

    def mark_reopened(self, a: UUID, b: UUID, *, at: datetime) -> None:
        first, second = sorted((a, b))
        self.conn.execute(
            update(not_a_match_t)
            .where(not_a_match_t.c.person_a == first, not_a_match_t.c.person_b == second)
            .values(reopened_at=at)
        )

    def carry_not_a_match(self, merged: Mapping[UUID, UUID], *, actor: str, at: datetime) -> None:
        """The survivor of a merge is not the same human as anyone the person merged away
        was said not to be."""
        c = not_a_match_t.c
        for chunk in _chunks(sorted(merged), 500):
            if self.dialect == "postgresql":
                ids = [str(i) for i in chunk]
                found = self.conn.exec_driver_sql(_PG_NOT_A_MATCH_OF, (ids, ids)).all()
            else:
                found = self.conn.execute(
                    select(c.person_a, c.person_b).where(
                        or_(c.person_a.in_(chunk), c.person_b.in_(chunk))
                    )
                ).all()
            for a, b in found:
                for old, other in ((a, b), (b, a)):
                    if old in merged:
                        self.add_not_a_match(
                            merged[old], other, actor=actor, reason="merged", at=at
                        )

    def relink_records(self, records: Sequence[LinkedRecord]) -> None:
        """Move records to another person by a steward's decision, with their new link."""
        self._update_records_by_id(
            [
                {
                    "id": r.id,
                    "person_id": r.person_id,
                    "link_source": r.link_source.value,
                    "link_state": r.link_state.value,
                    "link_score": r.link_score,
                    "link_rule": r.link_rule,
                    "linked_at": r.linked_at,
                }
                for r in records
            ]
        )

    def history(
        self,
        *,
        person_ids: Sequence[UUID],
        record_keys: Sequence[str],
        after_seq: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Audit events about these persons, their records and their review items, in
        the order they happened."""
        people = [str(p) for p in person_ids]
        review_ids = [str(r) for r in self.conn.scalars(
            select(reviews_t.c.id).where(
                or_(reviews_t.c.person_a.in_(person_ids), reviews_t.c.person_b.in_(person_ids))
            )
        )]  # fmt: skip
        stmt = select(audit_t).where(
            or_(
                and_(audit_t.c.entity_type == "person", audit_t.c.entity_id.in_(people)),
                and_(audit_t.c.entity_type == "record", audit_t.c.entity_id.in_(record_keys)),
                and_(audit_t.c.entity_type == "review", audit_t.c.entity_id.in_(review_ids)),
            )
        )
        if after_seq is not None:
            stmt = stmt.where(audit_t.c.seq > after_seq)
        rows = [
            dict(r._mapping) for r in self.conn.execute(stmt.order_by(audit_t.c.seq).limit(limit))
        ]
        return self.open_audit(rows)

    def audit_page(
        self,
        *,
        after_seq: int | None,
        limit: int,
        entity_type: str | None = None,
        entity_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        correlation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Audit events in chain order, filtered; person events' values opened."""
        c = audit_t.c
        stmt = select(audit_t)
        for column, value in (
            (c.entity_type, entity_type), (c.entity_id, entity_id), (c.actor, actor),
            (c.action, action), (c.correlation_id, correlation_id),
        ):  # fmt: skip
            if value is not None:
                stmt = stmt.where(column == value)
        if since is not None:
            stmt = stmt.where(c.at >= since)
        if until is not None:
            stmt = stmt.where(c.at < until)
        if after_seq is not None:
            stmt = stmt.where(c.seq > after_seq)
        rows = [dict(r._mapping) for r in self.conn.execute(stmt.order_by(c.seq).limit(limit))]
        return self.open_audit(rows)

    def open_audit(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Stored audit rows with each person event's values opened under its key."""
        keys = self.person_keys(UUID(r["entity_id"]) for r in rows if r["entity_type"] == "person")
        out = []
        for r in rows:
            key = keys.get(UUID(r["entity_id"])) if r["entity_type"] == "person" else None
            out.append({**r, **_fields(audit.open_event(r, key))})
        return out

    # -- the nightly dedupe ------------------------------------------------------------------
    def live_person_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """The live persons in id order: their ids as 16 bytes each (a row of a uint8
        matrix, UUIDs' own byte order) and when each was last updated (microseconds
        since the epoch). A million UUID and datetime objects cost seconds to make; the
        nightly dedupe needs the UUIDs of a few persons only."""
        if self.dialect == "postgresql":
            conn = driver_connection(self.conn)
            with conn.cursor(binary=True) as cursor:
                rows = cursor.execute(_PG_LIVE_PERSONS).fetchall()
            raw = b"".join(row[0] for row in rows)
            at = np.frombuffer(b"".join(row[1] for row in rows), dtype=">i8")
        else:
            c = persons_t.c
            found = self.conn.execute(
                select(c.id, c.updated_at).where(c.status == PersonStatus.ACTIVE.value)
            ).all()
            raw = b"".join(person.bytes for person, _ in found)
            at = np.array([epoch_microseconds(u) for _, u in found], dtype=np.int64)
        ids = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16)
        order = np.argsort(ids.view("S16").ravel(), kind="stable")  # bytes order: UUIDs'
        return ids[order], at[order].astype(np.int64)

    def feature_parts(self, parts: int) -> list[FeaturePart]:
        """The registry's records in up to `parts` shares for `stream_match_features`,
        each for a connection of its own sharing this one's snapshot (`export_snapshot`):
        ranges of the table's pages on PostgreSQL, the whole registry elsewhere."""
        if self.dialect != "postgresql" or parts == 1:
            return [None]
        cursor = driver_connection(self.conn).execute(_PG_PAGES)
        pages = int(cursor.fetchone()[0])  # type: ignore[index]
        # Counted once the snapshot is taken: every row it sees lies in these pages (the
        # table may only have grown since). The last part is open-ended anyway.
        bounds = [pages * k // parts for k in range(parts)]
        return [(first, end) for first, end in zip(bounds, [*bounds[1:], None], strict=True)]

    def stream_match_features(
        self, part: FeaturePart = None, *, batch: int = 5_000
    ) -> Iterator[tuple[bytes, str, str, str]]:
        """(the person's id as 16 bytes, source, source id, record features as JSON text)
        of every record, in no particular order, read in batches (chunks as PostgreSQL
        sends them), or of one of `feature_parts`. Records of persons merged or erased
        come too: the caller keeps the live persons' (`live_person_ids`). The features
        stay text: the caller parses them, or passes them on as they are."""
        if self.dialect == "postgresql":
            yield from self._stream_pg_features(part or (0, None), batch)
            return
        stmt = select(
            records_t.c.person_id,
            records_t.c.source,
            records_t.c.source_id,
            type_coerce(records_t.c.features, Text),
        )
        rows = self.conn.execute(stmt.execution_options(yield_per=batch))
        yield from ((person.bytes, source, i, f) for person, source, i, f in rows)

    def _stream_pg_features(
        self, pages: tuple[int, int | None], batch: int
    ) -> Iterator[tuple[bytes, str, str, str]]:
        # In binary: the person's id comes as its bytes, the rest as text. The features
        # stay text: a million records' rows cost a few microseconds each instead of a
        # dozen.
        first, end = pages
        end_tid = None if end is None else f"({end},0)"
        bounds = (f"({first},0)", end_tid, end_tid)
        conn = driver_connection(self.conn)
        if psycopg.pq.version() >= 170000:
            # Rows in chunks as the server sends them: it reads ahead while this process
            # parses (a server-side cursor computes the next batch only when asked, and
            # took twice as long to read them all).
            with conn.cursor(binary=True) as cursor:
                yield from cursor.stream(_PG_STREAM_FEATURES, bounds, size=batch)
            return
        with conn.cursor(name="mdm_dedupe_read", binary=True) as named:  # pragma: no cover
            named.itersize = batch  # libpq < 17
            named.execute(_PG_STREAM_FEATURES, bounds)
            yield from named

    def export_snapshot(self) -> str | None:
        """On PostgreSQL, an id of this transaction's snapshot, for other connections to
        read what it reads (`Database.uow(snapshot=...)`); elsewhere None."""
        if self.dialect != "postgresql":
            return None
        return cast(str, self.conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())

    def not_a_match_among(self, ids: Sequence[UUID]) -> set[tuple[UUID, UUID]]:
        """The not-a-match pairs whose two persons are both among `ids`."""
        c = not_a_match_t.c
        found: set[tuple[UUID, UUID]] = set()
        for chunk in _chunks(sorted(set(ids)), 500):
            rows = self.conn.execute(
                select(c.person_a, c.person_b).where(
                    or_(c.person_a.in_(chunk), c.person_b.in_(chunk))
                )
            )
            found.update((a, b) for a, b in rows)
        wanted = set(ids)
        return {(a, b) for a, b in found if a in wanted and b in wanted}

    def not_a_match_pairs(self) -> set[tuple[UUID, UUID]]:
        rows = self.conn.execute(select(not_a_match_t.c.person_a, not_a_match_t.c.person_b))
        return {(a, b) for a, b in rows}

    def resolved_match_reviews(self) -> list[tuple[float, str]]:
        """(score, decision) of every match review item a steward resolved."""
        rows = self.conn.execute(
            select(reviews_t.c.score, reviews_t.c.decision).where(
                reviews_t.c.kind == "match", reviews_t.c.decision.in_(("merge", "distinct"))
            )
        )
        return [(float(score), decision) for score, decision in rows]

    def open_review_pairs(self) -> list[tuple[UUID, UUID]]:
        """The two persons of every open match review item."""
        rows = self.conn.execute(
            select(reviews_t.c.person_a, reviews_t.c.person_b).where(
                reviews_t.c.kind == "match", reviews_t.c.status == "open"
            )
        )
        return [(a, b) for a, b in rows]

    def add_keys(self, rows: Iterable[tuple[str, str, UUID]]) -> None:
        values = [{"kind": k, "value": v, "person_id": p} for k, v, p in sorted(set(rows))]
        self._insert(keys_t, values)

    def remove_keys(self, rows: Iterable[tuple[str, str, UUID]]) -> None:
        rows = sorted(set(rows))
        if not rows:
            return
        if self.dialect == "postgresql":
            # One JSON parameter rather than three per key: a merge of thousands of persons
            # removes tens of thousands of keys, and a long parameter list costs the driver
            # more than the delete costs the database.
            doc = dumps_json([{"k": k, "v": v, "p": p} for k, v, p in rows])
            self.conn.exec_driver_sql(_PG_REMOVE_KEYS, (doc,))
            return
        for chunk in _chunks(rows, _SQLITE_CHUNK):
            self.conn.execute(
                delete(keys_t).where(
                    tuple_(keys_t.c.kind, keys_t.c.value, keys_t.c.person_id).in_(chunk)
                )
            )

    def insert_reviews(self, items: Sequence[ReviewItem]) -> None:
        rows = [_fields(i) for i in items]
        for row in rows:
            if row["kind"] == "conflict":
                row["explanation"] = self.sealer.seal("explanation", row["explanation"])
        self._insert(reviews_t, rows)

    def insert_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append events to the chain of this unit's lane (`audit_lane`). The lane's lock is
        taken here and held to commit: call it at the end of a unit of work."""
        if not events:
            return
        keys = self._ensure_keys({UUID(e.entity_id) for e in events if audit.personal(e)})
        rows = [
            audit.seal_event(e, keys.get(UUID(e.entity_id)) if audit.personal(e) else None)
            for e in events
        ]
        if self._audit_head is None:
            self._audit_head = self._chain_head()
        rows = audit.chained(rows, self._audit_head)
        self._audit_head = rows[-1]["hash"]
        for row in rows:
            row["lane"] = self.audit_lane
        self._insert(audit_t, rows)

    def _chain_head(self) -> str:
        if self.dialect != "postgresql":
            # SQLite: every write transaction is BEGIN IMMEDIATE, writers are serial already.
            found = self.conn.scalar(text(audit.SQLITE_HEAD_SQL), {"lane": self.audit_lane})
            return found or audit.GENESIS
        # The lock, then the look-up in a statement of its own, so that its snapshot is
        # taken once the lock is held (READ COMMITTED); one round trip for both.
        conn = driver_connection(self.conn)
        with conn.cursor() as locker, conn.cursor() as cursor:
            with conn.pipeline():
                locker.execute(audit.LOCK_SQL, [self.audit_lane])
                cursor.execute(audit.HEAD_SQL, [self.audit_lane])
            row = cursor.fetchone()
        return row[0] if row and row[0] else audit.GENESIS

    def insert_outbox(self, events: Sequence[OutboxEvent]) -> None:
        rows = [_fields(e) for e in events]
        for row in rows:
            row["payload"] = self.sealer.seal("event", row["payload"])
        self._insert(outbox_t, rows)

    # -- match models -----------------------------------------------------------------------
    def sample_features(self, limit: int, *, seed: int = 0) -> list[MatchFeatures]:
        """The match features of up to `limit` records, drawn at random but reproducibly.

        A seeded reservoir over a stable order rather than `ORDER BY random()`: the same
        registry trains the same model twice, so a model version can be rebuilt and checked.
        """
        rows = self.conn.execute(
            select(records_t.c.features)
            .order_by(records_t.c.source, records_t.c.source_id)
            .execution_options(yield_per=10_000)
        )
        rnd = random.Random(seed)
        sample: list[Any] = []
        for seen, (features,) in enumerate(rows):
            if seen < limit:
                sample.append(features)
            elif (slot := rnd.randrange(seen + 1)) < limit:
                sample[slot] = features
        return [MatchFeatures.from_json(features) for features in sample]

    def save_model(
        self, version: str, parameters: dict[str, Any], report: dict[str, Any], *, active: bool
    ) -> None:
        if active:
            self.conn.execute(update(models_t).values(active=False))
        self.conn.execute(
            insert(models_t).values(
                version=version,
                created_at=datetime.now(UTC),
                active=active,
                parameters=parameters,
                report=report,
            )
        )

    def active_model(self) -> dict[str, Any] | None:
        """The active model's parameters; None before any training (or any migration)."""
        if not inspect(self.conn).has_table("match_models"):
            return None
        row = self.conn.execute(
            select(models_t.c.parameters).where(models_t.c.active.is_(True))
        ).first()
        return dict(row.parameters) if row else None

    def models(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(
                models_t.c.version, models_t.c.created_at, models_t.c.active, models_t.c.report
            ).order_by(models_t.c.created_at.desc())
        )
        return [dict(r._mapping) for r in rows]

    # -- reading for callers ---------------------------------------------------------------
    def live_person(self, person_id: UUID, *, lock: bool = False) -> PersonState:
        """The live person an id resolves to, following merges; `PersonNotFound` for an
        unknown id (or a loop), `PersonErased` when it, or the person it was merged into,
        was erased. `lock` as for `get_person`, on each person of the way."""
        seen: set[UUID] = set()
        current = person_id
        while True:
            person = self.get_person(current, lock=lock)
            if person is None or current in seen:
                raise PersonNotFound(person_id)
            seen.add(current)
            if person.status == PersonStatus.ERASED:
                raise PersonErased(person_id)
            if person.status != PersonStatus.MERGED or person.merged_into is None:
                return person
            current = person.merged_into

    def get_person(self, person_id: UUID, *, lock: bool = False) -> PersonState | None:
        """`lock`: hold the person's row against updates (a merge) until the end of the
        unit of work, on PostgreSQL; SQLite's units of work are serial already. Rows that
        merely reference the person (its records) can still be written meanwhile."""
        stmt = select(persons_t).where(persons_t.c.id == person_id)
        if lock and self.dialect == "postgresql":
            stmt = stmt.with_for_update(key_share=True)
        row = self.conn.execute(stmt).first()
        if row is None:
            return None
        return self._person(dict(row._mapping))

    def records_of(self, person_id: UUID) -> list[LinkedRecord]:
        rows = self.conn.execute(
            select(records_t)
            .where(records_t.c.person_id == person_id)
            .order_by(records_t.c.linked_at, records_t.c.source, records_t.c.source_id)
        )
        return [self._record(dict(r._mapping), full=True) for r in rows]

    def aliases_of(self, person_id: UUID) -> list[UUID]:
        """Every id that was merged, directly or through a chain, into this person."""
        found: list[UUID] = []
        frontier = [person_id]
        while frontier:
            rows = self.conn.scalars(
                select(persons_t.c.id).where(persons_t.c.merged_into.in_(frontier))
            ).all()
            found.extend(rows)
            frontier = list(rows)
        return found

    def search_person_ids(
        self, *, keys: Sequence[Key], limit: int, after: UUID | None
    ) -> list[UUID]:
        """Live persons filed under every one of `keys`, in id order."""
        stmt = select(persons_t.c.id).where(persons_t.c.status == PersonStatus.ACTIVE.value)
        for kind, value in keys:
            stmt = stmt.where(
                persons_t.c.id.in_(
                    select(keys_t.c.person_id).where(keys_t.c.kind == kind, keys_t.c.value == value)
                )
            )
        if after is not None:
            stmt = stmt.where(persons_t.c.id > after)
        return list(self.conn.scalars(stmt.order_by(persons_t.c.id).limit(limit)))

    def _review_filter(
        self,
        *,
        status: str | None,
        kind: str | None,
        source: str | None,
        min_score: float | None,
        max_score: float | None,
        created_before: datetime | None,
        created_after: datetime | None,
    ) -> list[Any]:
        c = reviews_t.c
        conditions: list[Any] = []
        for column, value in ((c.status, status), (c.kind, kind), (c.source, source)):
            if value:
                conditions.append(column == value)
        if min_score is not None:
            conditions.append(c.score >= min_score)
        if max_score is not None:
            conditions.append(c.score <= max_score)
        if created_before is not None:
            conditions.append(c.created_at < created_before)
        if created_after is not None:
            conditions.append(c.created_at >= created_after)
        return conditions

    def list_reviews(
        self,
        *,
        sort: str = "age",
        after: tuple[Any, UUID] | None = None,
        limit: int,
        **filters: Any,
    ) -> list[ReviewItem]:
        """A page of review items. `sort` is age (oldest first), -age, score (lowest first)
        or -score; `after` is the sort key and id of the last item of the previous page."""
        c = reviews_t.c
        key = c.score if sort.lstrip("-") == "score" else c.created_at
        descending = sort.startswith("-")
        stmt = select(reviews_t).where(*self._review_filter(**filters))
        if after is not None:
            value, item_id = after
            if descending:
                stmt = stmt.where(or_(key < value, and_(key == value, c.id < item_id)))
            else:
                stmt = stmt.where(or_(key > value, and_(key == value, c.id > item_id)))
        order = (key.desc(), c.id.desc()) if descending else (key, c.id)
        return [self._review(r) for r in self.conn.execute(stmt.order_by(*order).limit(limit))]

    def count_reviews(self, **filters: Any) -> dict[str, int]:
        """Items matching the filters (status aside), by status."""
        filters = {**filters, "status": None}
        rows = self.conn.execute(
            select(reviews_t.c.status, func.count())
            .where(*self._review_filter(**filters))
            .group_by(reviews_t.c.status)
        )
        return {status: int(n) for status, n in rows}

    def get_review(self, review_id: UUID, *, lock: bool = False) -> ReviewItem | None:
        stmt = select(reviews_t).where(reviews_t.c.id == review_id)
        if lock and self.dialect == "postgresql":
            stmt = stmt.with_for_update()
        row = self.conn.execute(stmt).first()
        return self._review(row) if row is not None else None

    def resolve_review(self, item: ReviewItem) -> None:
        """Write a steward's decision on an open item; `ConcurrentUpdate` if it was
        resolved meanwhile."""
        done = self.conn.execute(
            update(reviews_t)
            .where(reviews_t.c.id == item.id, reviews_t.c.status == "open")
            .values(
                status=item.status,
                decision=item.decision,
                resolved_at=item.resolved_at,
                resolved_by=item.resolved_by,
                note=item.note,
            )
        )
        if done.rowcount != 1:
            raise ConcurrentUpdate("the review item was resolved meanwhile")

    # -- erasure ---------------------------------------------------------------------------
    def erase(
        self, person: PersonState, aliases: Sequence[UUID], *, at: datetime, actor: str
    ) -> list[tuple[str, str]]:
        """Remove every personal value of a person: its golden record, its records' payloads,
        attributes and match features, its keys, the values in its review items and events.
        Its own keys are destroyed, so its audit values can no longer be read. What is left:
        the ids, and each record's (source, source_id) as a stub, so that the sources can
        be told and a re-post recognised. Returns those pairs."""
        ids = [person.id, *aliases]
        done = self.conn.execute(
            update(persons_t)
            .where(persons_t.c.id == person.id, persons_t.c.version == person.version)
            .values(
                status=PersonStatus.ERASED.value,
                golden={},
                lineage={},
                stewardship=None,
                data_key=None,
                version=person.version + 1,
                updated_at=at,
            )
        )
        if done.rowcount != 1:
            raise ConcurrentUpdate("the person changed while it was being erased")
        if aliases:
            self.conn.execute(
                update(persons_t)
                .where(persons_t.c.id.in_(aliases))
                .values(golden={}, lineage={}, stewardship=None, data_key=None, updated_at=at)
            )
        rows = self.conn.execute(
            select(records_t.c.source, records_t.c.source_id, records_t.c.features)
            .where(records_t.c.person_id == person.id)
            .order_by(records_t.c.source, records_t.c.source_id)
        ).all()
        pairs = [(source, source_id) for source, source_id, _ in rows]
        self._forget_names([MatchFeatures.from_json(f) for _, _, f in rows])
        for source in sorted({s for s, _ in pairs}):
            self.conn.execute(
                update(records_t)
                .where(records_t.c.person_id == person.id, records_t.c.source == source)
                .values(
                    raw={"erased": True},
                    attributes={},
                    features={"source": source},
                    explanation={},
                    received_at=at,
                )
            )
        self.conn.execute(delete(keys_t).where(keys_t.c.person_id.in_(ids)))
        involved = or_(reviews_t.c.person_a.in_(ids), reviews_t.c.person_b.in_(ids))
        self.conn.execute(
            update(reviews_t)
            .where(involved, reviews_t.c.status == "open")
            .values(status="resolved", decision="erased", resolved_at=at, resolved_by=actor)
        )
        self.conn.execute(
            update(reviews_t).where(involved).values(explanation={"erased": True}, note=None)
        )
        self.conn.execute(
            update(outbox_t).where(outbox_t.c.person_id.in_(ids)).values(payload={"erased": True})
        )
        for pid in ids:
            self._wrapped_keys[pid] = None
        return pairs

    def _forget_names(self, features: Sequence[MatchFeatures]) -> None:
        """Trained models keep the registry's names held by two records or more (their
        frequencies): a name only the erased person held leaves every stored model."""
        held: dict[str, Counter[str]] = {
            "given": Counter(f.given.split(" ")[0] for f in features if f.given),
            "family": Counter(f.family for f in features if f.family),
        }
        if not any(held.values()):
            return
        for version, parameters in self.conn.execute(
            select(models_t.c.version, models_t.c.parameters)
        ).all():
            tables = parameters.get("term_frequencies") or {}
            rare = parameters.get("rare") or {}
            changed = False
            for part, names in held.items():
                table = tables.get(part) or {}
                for name, own in names.items():
                    share = table.get(name)
                    # The share times the part's total (1 / rare) is how many records held it.
                    if share is not None and rare.get(part) and round(share / rare[part]) <= own:
                        del table[name]
                        changed = True
            if changed:
                self.conn.execute(
                    update(models_t)
                    .where(models_t.c.version == version)
                    .values(parameters={**parameters, "term_frequencies": tables})
                )

    def insert_erasure(self, erasure: Erasure) -> None:
        self.conn.execute(
            insert(erasures_t).values(
                person_id=erasure.person_id,
                erased_at=erasure.erased_at,
                requested_by=erasure.requested_by,
                reason=erasure.reason,
                records=[{"source": s, "source_id": i} for s, i in erasure.records],
                aliases=[str(a) for a in erasure.aliases],
            )
        )

    def erasure_of(self, person_id: UUID) -> Erasure | None:
        row = self.conn.execute(select(erasures_t).where(erasures_t.c.person_id == person_id))
        m = row.mappings().first()
        if m is None:
            return None
        return Erasure(
            person_id=m["person_id"],
            erased_at=m["erased_at"],
            requested_by=m["requested_by"],
            reason=m["reason"],
            records=tuple((r["source"], r["source_id"]) for r in m["records"]),
            aliases=tuple(UUID(a) for a in m["aliases"]),
        )

    def count(self, table: str) -> int:
        t = {"persons": persons_t, "source_records": records_t, "review_items": reviews_t}[table]
        return int(self.conn.scalar(select(func.count()).select_from(t)) or 0)


def _fields(obj: Any) -> dict[str, Any]:
    # dataclasses.asdict deep-copies every nested dict; the rows only need a shallow view.
    names = _FIELD_NAMES.get(type(obj))
    if names is None:
        names = _FIELD_NAMES[type(obj)] = tuple(f.name for f in fields(obj))
    return {name: getattr(obj, name) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
