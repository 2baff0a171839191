"""Erasure (right to be forgotten): a person's personal data leaves the registry, the
connected systems are told which of their records to delete, and a tombstone remains.

One transaction: the golden record, every linked record's payload, attributes and match
features, the person's keys, the values in its review items, outbox events, deliveries and
refused payloads go; the person's own key is destroyed, so the audit trail keeps its
events and its hash chain but no readable personal value. The person id answers 410 from
then on, and a record of the person posted again is refused (409), not made into a new
person.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from uuid import UUID

from mdm.model.ids import new_id
from mdm.model.person import AuditEvent, Erasure, OutboxEvent
from mdm.services.context import Registry
from mdm.services.retry import run_with_retries


def erase_person(
    registry: Registry,
    person_id: UUID,
    *,
    actor: str,
    reason: str,
    correlation_id: str | None = None,
) -> Erasure:
    """Erase the person `person_id` names (following merges to the live person)."""
    return run_with_retries(
        partial(
            _erase, registry, person_id, actor=actor, reason=reason, correlation_id=correlation_id
        )
    )


def _erase(
    registry: Registry, person_id: UUID, *, actor: str, reason: str, correlation_id: str | None
) -> Erasure:
    with registry.database.uow() as uow:
        repo = uow.registry
        person = repo.live_person(person_id, lock=True)
        aliases = repo.aliases_of(person.id)
        ids = [person.id, *aliases]
        now = datetime.now(UTC)
        pairs = repo.erase(person, aliases, at=now, actor=actor)
        uow.rejections.erase(pairs, ids)
        uow.webhooks.erase(ids)
        uow.consents.erase(ids)
        erasure = Erasure(person.id, now, actor, reason, tuple(pairs), tuple(aliases))
        repo.insert_erasure(erasure)
        # Ids and source ids only: what every connected system needs to find its copy.
        payload = {
            "person_id": str(person.id),
            "erased_at": now.isoformat(),
            "records": [{"source": s, "source_id": i} for s, i in pairs],
            "aliases": [str(a) for a in aliases],
        }
        repo.insert_outbox([OutboxEvent(new_id(), "person.erased", person.id, payload, now)])
        audit_after = {**payload, "reason": reason}
        repo.insert_audit(
            [
                AuditEvent(
                    new_id(),
                    now,
                    actor,
                    "person.erased",
                    "person",
                    str(person.id),
                    correlation_id,
                    None,
                    audit_after,
                )
            ]
        )
        uow.commit()
        return erasure


def erasure_of(registry: Registry, person_id: UUID) -> Erasure | None:
    """The tombstone of an erased person, found by its id or an id merged into it."""
    with registry.database.uow() as uow:
        erasure = uow.registry.erasure_of(person_id)
        if erasure is None:
            person = uow.registry.get_person(person_id)
            if person is not None and person.merged_into is not None:
                return uow.registry.erasure_of(person.merged_into)
        return erasure
