"""Concurrent records bridging the same two persons merge them once (PostgreSQL).

The bridges share no exact key, so nothing serialises them but the persons' versions:
the race the optimistic check exists for.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from mdm.model.errors import StaleDecision
from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.ingest import IngestResult, ingest_many, ingest_one
from mdm.services.stewardship import resolve_review
from mdm.store.tables import AuditEventRow, PersonRow, SourceRecordRow
from tests.integration.test_invariants import check_invariants

IDENTITIES = 20
WORKERS = 8
FAMILIES = ["Okonkwo", "Halvorsen", "Nakamura", "Dubois", "Wiśniewska"]
GIVEN = ["Tamsin", "Ignatius", "Perpetua", "Wolfgang", "Eulalia", "Cosimo", "Leocadia",
         "Barnaby", "Philippa", "Ambrose", "Rosalind", "Thaddeus", "Gwendolyn", "Lysander",
         "Octavia", "Sebastiano", "Marguerite", "Evander", "Clementine", "Florian"]  # fmt: skip


def _name(i: int) -> dict[str, str]:
    return {"given_name": GIVEN[i], "family_name": FAMILIES[i % len(FAMILIES)]}


def _phone(i: int) -> str:
    return f"+44 7911 {123400 + i}"


def test_concurrent_bridges_merge_each_pair_once(pg_registry: Registry) -> None:
    setup = []
    for i in range(IDENTITIES):
        setup.append(
            IncomingRecord(
                "crm",
                f"c-{i}",
                {**_name(i), "email": f"home{i}@example.org", "birth_date": "1988-05-17"},
            )
        )
        setup.append(
            IncomingRecord(
                "ats", f"a-{i}", {**_name(i), "email": f"work{i}@initech.com", "phone": _phone(i)}
            )
        )
    outcomes = ingest_many(pg_registry, setup, actor="setup")
    assert all(isinstance(o, IngestResult) and o.decision == "created" for o in outcomes)

    def send(worker: int) -> None:
        bridges = [
            IncomingRecord(
                "hris",
                f"h-{worker}-{i}",
                {
                    **_name(i),
                    "email": f"w{worker}.{i}@mail.example.net",
                    "phone": _phone(i),
                    "birth_date": "1988-05-17",
                },
            )
            for i in range(IDENTITIES)
        ]
        random.Random(worker).shuffle(bridges)
        # One record at a time, as the online API receives them.
        for bridge in bridges:
            ingest_one(pg_registry, bridge, actor=f"w{worker}")

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(send, range(WORKERS)))

    sent = {(r.source, r.source_id) for r in setup}
    sent |= {("hris", f"h-{w}-{i}") for w in range(WORKERS) for i in range(IDENTITIES)}
    check_invariants(pg_registry, sent)
    with pg_registry.database.engine.connect() as conn:
        persons_of: dict[str, set[object]] = defaultdict(set)
        for source_id, person_id in conn.execute(
            select(SourceRecordRow.source_id, SourceRecordRow.person_id)
        ):
            persons_of[source_id.rsplit("-", 1)[1]].add(person_id)
        merged = conn.execute(
            select(PersonRow.id, PersonRow.merged_into).where(PersonRow.status == "merged")
        ).all()
    # Each identity is one person, and exactly one of its two persons became a redirect.
    assert all(len(persons) == 1 for persons in persons_of.values())
    assert len(persons_of) == IDENTITIES
    assert len(merged) == IDENTITIES
    survivors = {next(iter(p)) for p in persons_of.values()}
    assert {into for _, into in merged} == survivors


def test_concurrent_decisions_on_one_review_item_apply_once(pg_registry: Registry) -> None:
    mailbox = {"family_name": "Okonkwo", "email": "family@okonkwo.example"}
    ingest_one(
        pg_registry, IncomingRecord("crm", "c-1", {"given_name": "Chidi", **mailbox}), actor="t"
    )
    mary = ingest_one(
        pg_registry, IncomingRecord("ats", "a-1", {"given_name": "Adaeze", **mailbox}), actor="t"
    )
    assert mary.review_id is not None
    start = threading.Barrier(6)

    def decide(n: int) -> str:
        start.wait()
        try:
            resolve_review(
                pg_registry, mary.review_id, "merge" if n % 2 else "distinct", actor=f"s{n}"
            )
        except StaleDecision:
            return "stale"
        return "applied"

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(decide, range(6)))
    assert sorted(outcomes) == ["applied"] + ["stale"] * 5
    with pg_registry.database.engine.connect() as conn:
        events = conn.scalars(
            select(AuditEventRow.action).where(AuditEventRow.action == "review.resolved")
        ).all()
    assert len(events) == 1
