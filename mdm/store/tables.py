"""Tables, as SQLAlchemy 2 typed mappings. Alembic owns the schema (see migrations/)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are stored and returned in UTC, also on SQLite which keeps no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return (
            value.astimezone(UTC)
            if dialect.name == "postgresql"
            else value.astimezone(UTC).replace(tzinfo=None)
        )

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Documents that are queried (golden records, attributes) are JSONB on PostgreSQL;
# documents that are only kept and shown (raw payloads, explanations, events) are JSON,
# stored as sent: cheaper to write, and a raw payload keeps its key order.
Json = JSON().with_variant(JSONB(), "postgresql")
Document = JSON()
# SQLite assigns rowids only to INTEGER PRIMARY KEY columns.
SeqId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: Json}


def utcnow() -> datetime:
    return datetime.now(UTC)


class PersonRow(Base):
    __tablename__ = "persons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # active | merged | erased
    merged_into: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("persons.id"))
    golden: Mapped[dict[str, Any]]
    lineage: Mapped[dict[str, Any]] = mapped_column(Document)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # {"choices": {field: {source, source_id, value}}, "raised": [conflict keys]}: the
    # values stewards accepted, and the conflicts already put to them (never twice).
    stewardship: Mapped[dict[str, Any] | None] = mapped_column(Document)
    # The person's own key, wrapped under the key ring: its audit events are sealed under
    # it, and erasure destroys it (NULL), leaving them unreadable.
    data_key: Mapped[str | None] = mapped_column(Text)

    # Few persons are merged away: a partial index costs nothing on the ingest path.
    __table_args__ = (
        Index(
            "ix_persons_merged_into",
            "merged_into",
            postgresql_where=text("merged_into IS NOT NULL"),
            sqlite_where=text("merged_into IS NOT NULL"),
        ),
    )


class SourceRecordRow(Base):
    __tablename__ = "source_records"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str] = mapped_column(String(255))
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"))
    raw: Mapped[dict[str, Any]] = mapped_column(Document)  # the payload exactly as posted
    attributes: Mapped[dict[str, Any]] = mapped_column(Document)
    features: Mapped[dict[str, Any]] = mapped_column(Document)
    source_updated_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer)
    link_source: Mapped[str] = mapped_column(String(16))  # AUTO | MANUAL
    link_state: Mapped[str] = mapped_column(String(24))  # MATCH | POSSIBLE_MATCH | NO_MATCH
    link_score: Mapped[float] = mapped_column(Float)
    link_rule: Mapped[str] = mapped_column(String(32))
    explanation: Mapped[dict[str, Any]] = mapped_column(Document)
    linked_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("source", "source_id"),
        Index("ix_source_records_person_id", "person_id"),
    )


class PersonKeyRow(Base):
    """Exact and blocking keys of live persons, for candidate look-ups."""

    __tablename__ = "person_keys"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(320), primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"), primary_key=True)

    # No index on person_id alone: a person's keys are always derived from its records,
    # so changing them goes by primary key, and every ingest saves one index insert a key.


class ReviewItemRow(Base):
    __tablename__ = "review_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # match | conflict
    status: Mapped[str] = mapped_column(String(16))  # open | merged | distinct | resolved
    person_a: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"))
    person_b: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"))
    score: Mapped[float] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(String(64))
    explanation: Mapped[dict[str, Any]] = mapped_column(Document)
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    decision: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_review_items_status_created_at", "status", "created_at", "id"),
        Index("ix_review_items_status_score", "status", "score", "id"),
        # With the status: a merge finds a person's open items without reading the others.
        Index("ix_review_items_person_a_status", "person_a", "status"),
        Index("ix_review_items_person_b_status", "person_b", "status"),
    )


class AuditEventRow(Base):
    """Append-only: rows are inserted, never updated or deleted."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(SeqId, primary_key=True, autoincrement=True)
    # UUIDv7 made by the registry; rows are found by seq and by entity, not by id.
    id: Mapped[uuid.UUID] = mapped_column(Uuid)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(320))
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(Document)
    after: Mapped[dict[str, Any] | None] = mapped_column(Document)
    # SHA-256 chain: each hash covers the previous one and this event (mdm/store/audit.py).
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The chain the event is on (mdm/store/audit.py: lanes).
    lane: Mapped[int] = mapped_column(SmallInteger, server_default="0")

    __table_args__ = (
        Index("ix_audit_events_entity", "entity_type", "entity_id", "seq"),
        Index("ix_audit_events_lane", "lane", "seq"),
    )


class ErasureRow(Base):
    """The tombstone of an erased person: who asked, why, and which source records held
    its data (so that each connected system can be told, and a re-post recognised)."""

    __tablename__ = "erasures"

    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"), primary_key=True)
    erased_at: Mapped[datetime]
    requested_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    records: Mapped[list[dict[str, Any]]] = mapped_column(Document)  # [{source, source_id}]
    aliases: Mapped[list[str]] = mapped_column(Document)  # ids merged into the person


class OutboxRow(Base):
    """Events to publish, written in the same transaction as the change they describe."""

    __tablename__ = "outbox"

    seq: Mapped[int] = mapped_column(SeqId, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid)  # UUIDv7; stable across delivery retries
    type: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payload: Mapped[dict[str, Any]] = mapped_column(Document)
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "seq",
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )


class WebhookSubscriptionRow(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(Document)  # event types; ["*"] for all
    system: Mapped[str | None] = mapped_column(String(64))  # the source key it feeds
    fields: Mapped[list[str] | None] = mapped_column(Document)  # golden fields; None: all
    scopes: Mapped[list[str]] = mapped_column(Document)  # drive redaction like API keys
    secret: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # active | disabled
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))


class WebhookDeliveryRow(Base):
    """One event for one subscription: pending -> delivering -> delivered | dead."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("webhook_subscriptions.id"))
    event_seq: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # the webhook-id, stable across retries
    event_type: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payload: Mapped[dict[str, Any]] = mapped_column(Document)  # as sent: redacted, filtered
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_order", "subscription_id", "person_id", "event_seq"),
    )


class ApiKeyRow(Base):
    """Service accounts: only a hash of each key is kept, found by its public prefix."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[list[str]] = mapped_column(Document)
    source: Mapped[str | None] = mapped_column(String(64))  # may write this source only
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class RejectionRow(Base):
    """Records refused by validation, kept verbatim so nothing sent is lost."""

    __tablename__ = "rejections"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    source: Mapped[str | None] = mapped_column(String(64))
    source_id: Mapped[str | None] = mapped_column(String(255))
    raw: Mapped[dict[str, Any]] = mapped_column(Document)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(Document)
    correlation_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), server_default="open")  # open | replayed
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    last_attempt_at: Mapped[datetime | None]
    replayed_at: Mapped[datetime | None]
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    fields: Mapped[str] = mapped_column(Text, server_default=" ")

    __table_args__ = (
        Index("ix_rejections_created_at", "created_at", "id"),
        Index("ix_rejections_source", "source", "created_at", "id"),
    )


class MatchModelRow(Base):
    """Trained match models, one row per version; the active one scores every pair."""

    __tablename__ = "match_models"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime]
    active: Mapped[bool]
    parameters: Mapped[dict[str, Any]] = mapped_column(Document)
    report: Mapped[dict[str, Any]] = mapped_column(Document)


class NotAMatchRow(Base):
    """Two persons a steward said are not one human (a `distinct` decision, a split).

    Stored once per pair, the smaller id first. A merge carries the pairs of the person
    merged away to the survivor, so no path proposes the pair again under a new id.
    """

    __tablename__ = "not_a_match"

    person_a: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"), primary_key=True)
    person_b: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"), primary_key=True)
    created_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(32))  # review | split | merged
    review_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # When a changed identifying attribute put the pair back before a steward, once.
    reopened_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_not_a_match_person_b", "person_b"),)


class ConsentRow(Base):
    """Consent statements as the sources captured them: appended, never changed. A person's
    current consent for a purpose is derived (the latest `at`), so a statement arriving
    late is kept without rewriting anything."""

    __tablename__ = "consents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("persons.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    granted: Mapped[bool]
    source: Mapped[str] = mapped_column(String(64))  # the system that captured it
    at: Mapped[datetime]  # when it was given or withdrawn, as the source says
    evidence: Mapped[str | None] = mapped_column(Text)  # a form id, a URL
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(128))

    __table_args__ = (Index("ix_consents_person_purpose_at", "person_id", "purpose", "at"),)
