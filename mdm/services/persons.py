"""Read persons: by id (following merges), and search by email, phone or name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from mdm.flow.block import name_keys
from mdm.flow.normalise import UnreadableValue, fold_name, normalise_email, normalise_phone
from mdm.flow.survivorship import (
    MULTI_VALUED,
    Choice,
    FieldRule,
    Golden,
    RecordView,
    build_golden,
    field_rule,
)
from mdm.mapping.profile import CANONICAL_FIELDS
from mdm.model.consent import Consent, current_consents
from mdm.model.errors import FieldIssue, InvalidRecord, PersonNotFound
from mdm.model.person import LinkedRecord, ReviewItem
from mdm.services.context import Registry
from mdm.store.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class RecordLink:
    source: str
    source_id: str
    link_source: str
    link_state: str
    score: float
    rule: str
    linked_at: datetime
    version: int
    updated_at: datetime | None
    explanation: dict[str, Any]
    # What the source's profile did: {values: {field: {value, source_value}}, truncated,
    # unmapped}; empty for a record posted under canonical names as they are.
    mapping: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PersonView:
    id: UUID
    status: str
    attributes: dict[str, Any]
    lineage: dict[str, Any]
    records: tuple[RecordLink, ...]
    aliases: tuple[UUID, ...]
    version: int
    created_at: datetime
    updated_at: datetime
    requested_id: UUID
    consents: dict[str, Consent]  # what holds per purpose, also from the aliases


def _link(r: LinkedRecord) -> RecordLink:
    return RecordLink(
        source=r.source,
        source_id=r.source_id,
        link_source=r.link_source.value,
        link_state=r.link_state.value,
        score=r.link_score,
        rule=r.link_rule,
        linked_at=r.linked_at,
        version=r.version,
        updated_at=r.source_updated_at,
        explanation=r.explanation,
        mapping=(r.raw or {}).get("mapping") or {},
    )


def view_of(uow: UnitOfWork, person_id: UUID) -> PersonView:
    repo = uow.registry
    requested = person_id
    person = repo.live_person(requested)
    records = repo.records_of(person.id)
    for _ in range(3):
        if records:
            break
        # A live person without records was merged away between the two reads: follow it.
        person = repo.live_person(requested)
        records = repo.records_of(person.id)
    aliases = tuple(repo.aliases_of(person.id))
    return PersonView(
        id=person.id,
        status=person.status.value,
        attributes=person.golden,
        lineage=person.lineage,
        records=tuple(_link(r) for r in records),
        aliases=aliases,
        version=person.version,
        created_at=person.created_at,
        updated_at=person.updated_at,
        requested_id=requested,
        consents=current_consents(uow.consents.of([person.id, *aliases])),
    )


def get_person(registry: Registry, person_id: UUID) -> PersonView:
    """The person, or the survivor it was merged into; `PersonErased` after an erasure."""
    with registry.database.uow() as uow:
        return view_of(uow, person_id)


def search_persons(
    registry: Registry,
    *,
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    country: str | None = None,
    limit: int = 50,
    after: UUID | None = None,
) -> list[PersonView]:
    """Persons by exact email, phone, or full name (folded: case, accents, nicknames)."""
    keys: list[tuple[str, str]] = []
    try:
        if email:
            keys.append(("email", normalise_email(email)))
        if phone:
            keys.append(("phone", normalise_phone(phone, country.upper() if country else None)))
    except UnreadableValue as exc:
        field = "email" if email and not keys else "phone"
        raise InvalidRecord([FieldIssue(field, str(exc))], "The search is not valid") from None
    wanted_name: tuple[str, str] | None = None
    if name:
        parts = fold_name(name).split(" ")
        if len(parts) < 2:
            raise InvalidRecord(
                [FieldIssue("name", "give a given and a family name")], "The search is not valid"
            )
        wanted_name = (parts[0], " ".join(parts[1:]))
        # The name key narrows the search; the folded full name then decides.
        keys.append(min(name_keys(wanted_name[1], frozenset({wanted_name[0]}))))
    if not keys:
        raise InvalidRecord(
            [FieldIssue("email", "give at least one of email, phone or name")],
            "The search is not valid",
        )
    views: list[PersonView] = []
    with registry.database.uow() as uow:
        while len(views) < limit:
            ids = uow.registry.search_person_ids(keys=keys, limit=limit, after=after)
            for pid in ids:
                view = view_of(uow, pid)
                if wanted_name is None or _has_name(view, wanted_name):
                    views.append(view)
            if len(ids) < limit:
                break
            after = ids[-1]
    return views[:limit]


def _has_name(view: PersonView, wanted: tuple[str, str]) -> bool:
    given, family = view.attributes.get("given_name"), view.attributes.get("family_name")
    return bool(given and family) and (fold_name(given), fold_name(family)) == wanted


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    correlation_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def person_history(
    registry: Registry, person_id: UUID, *, after: int | None = None, limit: int = 50
) -> tuple[list[HistoryEntry], int | None]:
    """What happened to a person, oldest first: its records linked and updated, persons
    merged into it, splits, review items opened and resolved, golden record changes. Also
    what happened under the ids merged into it. Returns a page and the next cursor."""
    with registry.database.uow() as uow:
        view = view_of(uow, person_id)
        rows = uow.registry.history(
            person_ids=[view.id, *view.aliases],
            record_keys=[f"{r.source}/{r.source_id}" for r in view.records],
            after_seq=after,
            limit=limit + 1,
        )
    return _page([_entry(r) for r in rows], limit)


def audit_trail(
    registry: Registry, *, after: int | None = None, limit: int = 50, **filters: Any
) -> tuple[list[HistoryEntry], int | None]:
    """The audit trail in chain order, filtered by entity, actor, action, correlation id
    or time; person events' values opened where the person's key still exists."""
    with registry.database.uow() as uow:
        rows = uow.registry.audit_page(after_seq=after, limit=limit + 1, **filters)
    return _page([_entry(r) for r in rows], limit)


def _entry(r: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        seq=r["seq"],
        at=r["at"],
        actor=r["actor"],
        action=r["action"],
        entity_type=r["entity_type"],
        entity_id=r["entity_id"],
        correlation_id=r["correlation_id"],
        before=r["before"],
        after=r["after"],
    )


def _page(entries: list[HistoryEntry], limit: int) -> tuple[list[HistoryEntry], int | None]:
    next_cursor = entries[limit - 1].seq if len(entries) > limit else None
    return entries[:limit], next_cursor


def golden_from_scratch(registry: Registry, person_id: UUID) -> Golden:
    """The person's golden record recomputed from its stored records, the rules and the
    stewards' choices: what is stored must always equal it."""
    with registry.database.uow() as uow:
        person = uow.registry.get_person(person_id)
        if person is None:
            raise PersonNotFound(person_id)
        linked = uow.registry.records_of(person_id)
        choices = uow.registry.choices_of(person_id)
    kinds = registry.source_kinds
    return build_golden(
        (
            RecordView(
                r.source,
                r.source_id,
                r.version,
                r.attributes,
                r.effective_updated_at,
                kinds.get(r.source),
            )
            for r in linked
        ),
        registry.rules,
        {name: Choice.from_json(raw) for name, raw in choices.items()},
    )


@dataclass(frozen=True, slots=True)
class FieldExplained:
    person_id: UUID
    field: str
    value: Any
    rule: FieldRule
    lineage: dict[str, Any]  # chosen by which rule, from which record, and the losers
    choice: dict[str, Any] | None  # a steward's accepted value, if any
    conflicts: list[ReviewItem]  # every conflict item on this field, open or resolved


def explain_field(registry: Registry, person_id: UUID, name: str) -> FieldExplained:
    """Why a golden field holds its value: the rule, the record it came from, the values it
    won over, a steward's choice and the conflicts raised on it."""
    if name not in CANONICAL_FIELDS and name not in MULTI_VALUED:
        raise InvalidRecord(
            [FieldIssue("field", f"not a canonical field: {', '.join(CANONICAL_FIELDS)}")],
            "The field is not known",
        )
    name = {"email": "emails", "phone": "phones"}.get(name, name)
    with registry.database.uow() as uow:
        view = view_of(uow, person_id)
        choices = uow.registry.choices_of(view.id)
        conflicts = [
            c for c in uow.registry.conflicts_of(view.id) if c.explanation.get("field") == name
        ]
    return FieldExplained(
        person_id=view.id,
        field=name,
        value=view.attributes.get(name),
        rule=field_rule(name, registry.rules),
        lineage=view.lineage.get(name, {}),
        choice=choices.get(name),
        conflicts=conflicts,
    )
