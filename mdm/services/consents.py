"""Consents: record what a person agreed to or withdrew, per purpose, and read what holds.

Statements are kept as the sources sent them and never rewritten. What holds for a purpose
is the statement with the latest `at`, so one that arrives late (an export replayed, a
retried call) takes its place in time rather than overriding a newer one. A merged-away
id redirects: statements are recorded on the survivor, and a survivor's consents include
those recorded on the persons merged into it, read through its aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import UUID

from mdm.model.consent import PURPOSE_PATTERN, Consent, current_consents, is_purpose, newest_first
from mdm.model.errors import FieldIssue, InvalidRecord
from mdm.model.ids import new_id
from mdm.model.person import AuditEvent, OutboxEvent
from mdm.services.context import Registry
from mdm.services.retry import run_with_retries

# Clocks of the capturing systems drift; a statement dated further ahead is a bug upstream.
CLOCK_SKEW = timedelta(minutes=5)
RECORDED = "person.consent_recorded"
CHANGED = "person.consent_changed"


class InvalidConsent(InvalidRecord):
    title = "Invalid consent"

    def __init__(self, errors: list[FieldIssue]) -> None:
        super().__init__(errors, "The consent is not valid")


@dataclass(frozen=True, slots=True)
class ConsentRecorded:
    person_id: UUID  # the live person the statement was recorded on
    statement: Consent
    current: Consent  # what holds for the purpose now
    changed: bool  # whether what holds for the purpose is different from before


@dataclass(frozen=True, slots=True)
class PersonConsents:
    person_id: UUID
    current: dict[str, Consent]  # by purpose
    history: list[Consent]  # every statement, newest first


def record_consent(
    registry: Registry,
    person_id: UUID,
    *,
    purpose: str,
    granted: bool,
    source: str,
    at: datetime,
    evidence: str | None,
    actor: str,
    correlation_id: str | None = None,
) -> ConsentRecorded:
    """Record one consent statement on the person (or the survivor it was merged into).

    Always audited; published as `person.consent_changed` only when what holds for the
    purpose changes, so an older statement arriving late, or the same one sent twice,
    tells subscribers nothing new.
    """
    _check(registry, purpose=purpose, source=source, at=at)
    work = partial(
        _record, registry, person_id, purpose, granted, source, at.astimezone(UTC), evidence,
        actor, correlation_id,
    )  # fmt: skip
    return run_with_retries(work)


def _check(registry: Registry, *, purpose: str, source: str, at: datetime) -> None:
    errors: list[FieldIssue] = []
    if not is_purpose(purpose):
        errors.append(FieldIssue("purpose", f"must match {PURPOSE_PATTERN}", purpose))
    if registry.sources.get(source) is None:
        known = ", ".join(s.key for s in registry.sources)
        errors.append(FieldIssue("source", f"not a configured source; known: {known}", source))
    if at.tzinfo is None or at.utcoffset() is None:
        errors.append(FieldIssue("at", "must carry a time zone"))
    elif at > datetime.now(UTC) + CLOCK_SKEW:
        errors.append(FieldIssue("at", "must not be more than 5 minutes in the future"))
    if errors:
        raise InvalidConsent(errors)


def _record(
    registry: Registry,
    person_id: UUID,
    purpose: str,
    granted: bool,
    source: str,
    at: datetime,
    evidence: str | None,
    actor: str,
    correlation_id: str | None,
) -> ConsentRecorded:
    with registry.database.uow() as uow:
        # Held: two statements on one person are ordered, and it is not merged away
        # before the statement is written.
        live = uow.registry.live_person(person_id, lock=True).id
        group = [live, *uow.registry.aliases_of(live)]
        earlier = uow.consents.of(group, purpose=purpose)
        before = current_consents(earlier).get(purpose)
        now = datetime.now(UTC)
        # Recorded order breaks ties of `at`: kept strictly increasing for the person even
        # if the wall clock steps back, so "the later recorded wins" always has a meaning.
        last = max((s.recorded_at for s in earlier), default=None)
        recorded_at = now if last is None or now > last else last + timedelta(microseconds=1)
        statement = Consent(
            id=new_id(),
            person_id=live,
            purpose=purpose,
            granted=granted,
            source=source,
            at=at,
            evidence=evidence,
            recorded_at=recorded_at,
            recorded_by=actor,
        )
        uow.consents.insert(statement)
        current = current_consents([*earlier, statement])[purpose]
        changed = before is None or _state(before) != _state(current)
        uow.registry.insert_audit(
            [
                AuditEvent(
                    new_id(), now, actor, RECORDED, "person", str(live), correlation_id,
                    None, {**statement.stated(), "evidence": evidence},
                )
            ]
        )  # fmt: skip
        if changed:
            payload = {"person_id": str(live), **current.stated()}
            uow.registry.insert_outbox([OutboxEvent(new_id(), CHANGED, live, payload, now)])
        uow.commit()
    return ConsentRecorded(person_id=live, statement=statement, current=current, changed=changed)


def consents_of(registry: Registry, person_id: UUID) -> PersonConsents:
    """What holds per purpose for the person (or its survivor), and every statement, also
    those recorded under the ids merged into it."""
    with registry.database.uow() as uow:
        live = uow.registry.live_person(person_id).id
        statements = uow.consents.of([live, *uow.registry.aliases_of(live)])
    return PersonConsents(
        person_id=live,
        current=current_consents(statements),
        history=newest_first(statements),
    )


def _state(consent: Consent) -> tuple[bool, str, datetime]:
    """What subscribers are told of a purpose; the evidence stays in the register."""
    return (consent.granted, consent.source, consent.at)
