"""The nightly dedupe's merges, many groups per transaction, leave the registry exactly as
the working set's merge does: persons, golden records and lineage, records, keys, review
items, stewardship, not-a-match pairs, audit events and outbox events."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select, text

from mdm.model.person import ReviewItem
from mdm.services.context import Registry
from mdm.services.ingest import load_unmatched
from mdm.services.merge_groups import merge_groups
from mdm.store.audit import verify
from mdm.store.tables import (
    AuditEventRow,
    NotAMatchRow,
    OutboxRow,
    PersonKeyRow,
    PersonRow,
    ReviewItemRow,
    SourceRecordRow,
)
from mdm.store.uow import UnitOfWork
from tests.factories import incoming
from tests.integration.test_dedupe import _generated

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
CAUSE = {"rule": "nightly_dedupe"}


def _groups(registry: Registry) -> list[list[UUID]]:
    """The persons of each generated human with two records or more (each record was
    taken in as its own person), some of the groups then joined in threes and fours."""
    records, truth = _generated(registry, 500, seed=21)
    load_unmatched(registry, records, actor="legacy")
    with registry.database.engine.connect() as conn:
        rows = conn.execute(
            select(SourceRecordRow.source, SourceRecordRow.source_id, SourceRecordRow.person_id)
        ).all()
    by_human: dict[str, list[UUID]] = defaultdict(list)
    for source, source_id, person_id in rows:
        by_human[truth[(source, source_id)]].append(person_id)
    groups = sorted((sorted(g) for g in by_human.values() if len(g) > 1), key=lambda g: g[0])
    joined = [groups[k] + groups[k + 1] for k in range(0, 6, 2)]
    # A contact the CRM knew first, hired since: the merge publishes the hire.
    hired = []
    for source, status in (("crm", None), ("ats", "hired")):
        record = incoming(source, f"{source}-hire", given_name="Ines", family_name="Okafor",
                          email="ines.okafor@example.org", status=status)  # fmt: skip
        load_unmatched(registry, [record], actor="legacy")
        with registry.database.engine.connect() as conn:
            hired.append(
                conn.scalar(
                    select(SourceRecordRow.person_id).where(
                        SourceRecordRow.source_id == f"{source}-hire"
                    )
                )
            )
    # Overlapping groups: the survivor of the first is merged away by the second, and
    # what was merged into it must then redirect to the second's survivor.
    j0, j1, j2, *_ = sorted(joined[0])
    chained = [[j1, j2], [j2, j0]]
    return [*chained, *joined[1:], *groups[6:], hired]


def _stewardship(registry: Registry, groups: list[list[UUID]]) -> None:
    """Choices and raised conflicts on both sides of merges, an open review item that a
    merge closes and one it repoints, and a not-a-match pair a merge carries."""
    now = NOW
    with registry.database.uow() as uow:
        repo = uow.registry
        a, b = groups[0][0], groups[0][1]
        outsider = groups[-1][0]
        repo.set_stewardship_of(
            {
                a: ({"job_title": {"source": "x", "source_id": "1", "value": "CTO"}}, ["k1"]),
                b: ({"job_title": {"source": "y", "source_id": "2", "value": "CEO"},
                     "department": {"source": "y", "source_id": "2", "value": "R&D"}}, ["k2"]),
            }
        )  # fmt: skip
        repo.insert_reviews(
            [
                ReviewItem(UUID(int=1), "match", "open", a, b, 0.8, {"rule": "t"}, now),
                ReviewItem(UUID(int=2), "match", "open", b, outsider, 0.8, {"rule": "t"}, now),
            ]
        )
        repo.add_not_a_match(groups[1][1], outsider, actor="steward", reason="t", at=now)
        uow.commit()


def _old_merge(registry: Registry, uow: UnitOfWork, groups: list[list[UUID]]) -> None:
    """The working set's merge, as the nightly dedupe made it before."""
    ws = registry.working_set(uow.registry, registry.scorer, now=NOW)
    ws.load_persons(sorted({pid for group in groups for pid in group}))
    for group in groups:
        live = {p.id: p for pid in group if (p := ws.live(pid)) is not None}
        if len(live) < 2:
            continue
        ordered = sorted(live.values(), key=ws.seniority)
        for other in ordered[1:]:
            cause = {**CAUSE, "persons": len(ordered)}
            ws.merge(ordered[0], other, actor="dedupe", correlation_id=None, cause=cause)
    ws.flush(actor="dedupe", correlation_id=None)


def _new_merge(registry: Registry, uow: UnitOfWork, groups: list[list[UUID]]) -> None:
    merge_groups(uow.registry, groups, now=NOW, actor="dedupe", cause=CAUSE,
                 kinds=registry.source_kinds, rules=registry.rules)  # fmt: skip


def _canonical(value: Any, reviews: dict[str, str]) -> Any:
    text_ = json.dumps(value, sort_keys=True, default=str)
    for review_id, label in reviews.items():
        text_ = text_.replace(review_id, label)
    return json.loads(text_)


def _state(registry: Registry, merge: Callable[[Registry, UnitOfWork, list], None],
           groups: list[list[UUID]]) -> dict[str, Any]:  # fmt: skip
    """The registry once `merge` ran, read inside its transaction, which is rolled back."""
    with registry.database.uow() as uow:
        repo, conn = uow.registry, uow.registry.conn
        seq = conn.scalar(text("SELECT coalesce(max(seq), 0) FROM audit_events"))
        out_seq = conn.scalar(text("SELECT coalesce(max(seq), 0) FROM outbox"))
        merge(registry, uow, groups)
        persons = {
            m["id"]: (m["status"], m["merged_into"], m["golden"], m["lineage"], m["version"],
                      m["stewardship"])
            for m in (
                {**r._mapping,
                 "golden": registry.database.sealer.open("attributes", r.golden),
                 "lineage": registry.database.sealer.open("lineage", r.lineage),
                 "stewardship": registry.database.sealer.open("stewardship", r.stewardship)}
                for r in conn.execute(select(PersonRow))
            )
        }  # fmt: skip
        # Review items are new ids on each side: they are named by what they are about.
        items = conn.execute(select(ReviewItemRow).order_by(ReviewItemRow.created_at)).all()
        labels = {}
        for r in items:
            explanation = repo._review(r).explanation
            labels[str(r.id)] = f"review:{r.kind}:{r.person_a}:{explanation.get('key', '')}"
        reviews = sorted(
            json.dumps(_canonical([r.kind, r.status, r.person_a, r.person_b, r.score,
                                   repo._review(r).explanation, r.source, r.decision,
                                   r.resolved_by, r.note], labels), sort_keys=True)
            for r in items
        )  # fmt: skip
        audit_rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(AuditEventRow).where(AuditEventRow.seq > seq).order_by(AuditEventRow.seq)
            )
        ]
        events = [
            _canonical([e["action"], e["entity_type"], e["entity_id"], e["before"], e["after"]],
                       labels)
            for e in repo.open_audit(audit_rows)
        ]  # fmt: skip
        outbox = [
            _canonical([r.type, r.person_id,
                        registry.database.sealer.open("event", r.payload)], labels)
            for r in conn.execute(
                select(OutboxRow).where(OutboxRow.seq > out_seq).order_by(OutboxRow.seq)
            )
        ]  # fmt: skip
        return {
            "persons": persons,
            "records": {
                (s, i): p
                for s, i, p in conn.execute(
                    select(
                        SourceRecordRow.source, SourceRecordRow.source_id, SourceRecordRow.person_id
                    )
                )
            },
            "keys": set(
                conn.execute(
                    select(PersonKeyRow.kind, PersonKeyRow.value, PersonKeyRow.person_id)
                ).all()
            ),
            "not_a_match": {
                (r.person_a, r.person_b, r.reason) for r in conn.execute(select(NotAMatchRow))
            },
            "reviews": reviews,
            "audit": events,
            "outbox": outbox,
        }


def test_many_groups_merge_as_the_working_set_merges(registry: Registry) -> None:
    groups = _groups(registry)
    assert len(groups) > 20
    _stewardship(registry, groups)
    # A person already merged away: its group reaches the person it was merged into.
    with registry.database.uow() as uow:
        _new_merge(registry, uow, [[groups[2][0], groups[3][0]]])
        uow.commit()

    old = _state(registry, _old_merge, groups)
    new = _state(registry, _new_merge, groups)
    for part in old:
        assert new[part] == old[part], part
    merged = sum(1 for status, *_ in new["persons"].values() if status == "merged")
    assert merged > 20
    actions = {e[0] for e in new["audit"]}
    assert {"person.merged", "person.updated", "person.employee_id_assigned", "person.hired",
            "review.opened"} <= actions  # fmt: skip

    with registry.database.uow() as uow:
        assert _new_merge(registry, uow, groups) is None
        uow.commit()
    with registry.database.engine.connect() as conn:
        assert verify(conn).ok
