"""Plain factory functions with keyword overrides."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import uuid
from typing import Any
from uuid import UUID

from mdm.config import Settings
from mdm.flow.decide import Candidate, Decision, Thresholds, decide
from mdm.flow.normalise import normalise
from mdm.flow.score import FellegiSunterScorer
from mdm.model.record import IncomingRecord, MatchFeatures
from mdm.services.context import Registry

_ids = itertools.count(1)
BLIND_KEY = Settings().blind_index_key


def data(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "given_name": "Ana",
        "family_name": "García",
        "email": "ana.garcia@example.com",
        "country": "ES",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def incoming(
    source: str = "crm",
    source_id: str | None = None,
    *,
    person_id: UUID | None = None,
    **fields: Any,
) -> IncomingRecord:
    return IncomingRecord(
        source=source,
        source_id=source_id or f"{source}-{next(_ids)}",
        data=data(**fields),
        person_id=person_id,
    )


def features(source: str = "crm", **fields: Any) -> MatchFeatures:
    return normalise(incoming(source, **fields), blind_index_key=BLIND_KEY).features


def body(source: str = "crm", source_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "source": source,
        "source_id": source_id or f"{source}-{next(_ids)}",
        "data": data(**fields),
    }


def decide_pair(a: dict[str, Any], b: dict[str, Any], *, exact: tuple[str, ...] = ()) -> Decision:
    """The decision for a record `a` against one person holding record `b` (shipped model)."""
    score = FellegiSunterScorer().score(features(**a), features(**b))
    return decide([Candidate(uuid.uuid4(), score, exact)], Thresholds())


def audit_trail(registry: Registry, *actions: str) -> list[dict[str, Any]]:
    """The audit events (all, or those of `actions`) as the registry reads them: a person
    event's values opened under the person's key."""
    from sqlalchemy import select

    from mdm.store.tables import AuditEventRow

    with registry.database.uow() as uow:
        stmt = select(AuditEventRow.__table__).order_by(AuditEventRow.seq)
        if actions:
            stmt = stmt.where(AuditEventRow.action.in_(actions))
        rows = [dict(r._mapping) for r in uow.registry.conn.execute(stmt)]
        return uow.registry.open_audit(rows)


Partition = set[frozenset[tuple[str, str]]]


def partition(registry: Registry) -> Partition:
    """The registry's persons as sets of (source, source_id): what a dedupe decides."""
    from collections import defaultdict

    from sqlalchemy import select

    from mdm.store.tables import PersonRow, SourceRecordRow

    with registry.database.engine.connect() as conn:
        rows = conn.execute(
            select(SourceRecordRow.source, SourceRecordRow.source_id, SourceRecordRow.person_id)
            .join(PersonRow, PersonRow.id == SourceRecordRow.person_id)
            .where(PersonRow.status == "active")
        ).all()
    groups: dict[object, set[tuple[str, str]]] = defaultdict(set)
    for source, source_id, person in rows:
        groups[person].add((source, source_id))
    return {frozenset(g) for g in groups.values()}


def record_pairs(groups: Partition) -> set[frozenset[tuple[str, str]]]:
    """Every pair of records grouped together, to compare partitions pair by pair."""
    from itertools import combinations

    return {frozenset(p) for g in groups for p in combinations(sorted(g), 2)}


def dedupe_killed(database_url: str, after_lines: int, *options: str) -> bool:
    """`mdm dedupe` in its own process, SIGKILLed once it reported `after_lines` steps of
    its write stage. False when it finished first."""
    env = {**os.environ, "MDM_DATABASE_URL": database_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mdm.cli", "dedupe", *options],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = 0
    for line in proc.stderr:
        if line.startswith("dedupe write"):
            seen += 1
            if seen == after_lines:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
    proc.wait()
    return False
