"""The HTTP contract (DESIGN section 7): pydantic models at the edge only."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

SOURCE_PATTERN = r"^[a-z][a-z0-9_\-]{0,63}$"
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _iso_8601(value: Any) -> Any:
    """pydantic reads a number as seconds since 1970; the contract says ISO 8601, and a
    number where a time belongs is a mistake to report, not a date in 1970 to store."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("an ISO 8601 date-time is expected, not a number")
    return value


# A time the caller sends, with its offset (bodies), or as it is (query filters).
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]
QueryInstant = Annotated[datetime, BeforeValidator(_iso_8601)]


_INT64 = (-(2**63), 2**63 - 1)


def unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first place in a posted document that no database column can hold as sent: a
    NUL character (PostgreSQL text and jsonb refuse it) or an integer beyond 64 bits
    (JSON columns read it back rounded). Refused at the edge rather than stored altered."""
    if isinstance(value, str):
        return (path or "body", "contains a NUL character") if "\x00" in value else None
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64[0] <= value <= _INT64[1]:
            return path or "body", "an integer beyond 64 bits: send it as a string"
        return None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        found = unstorable(key, where) if isinstance(key, str) else None
        found = found or unstorable(item, where)
        if found:
            return found
    return None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Batches check each record on its own, so that one bad record fails alone.
    _check_whole: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        found = unstorable(data) if cls._check_whole else None
        if found:
            raise PydanticCustomError(
                "unstorable", "{field}: {reason}", {"field": found[0], "reason": found[1]}
            )
        return data


class FieldMessage(BaseModel):
    field: str = Field(description="Where in the posted body, dotted: data.first_name")
    message: str
    pointer: str | None = Field(default=None, description="The same place as a JSON pointer")
    canonical: str | None = Field(
        default=None, description="The canonical field the value feeds, for a mapped source"
    )
    value: Any = Field(default=None, description="The value sent (never for sensitive fields)")


class RecordIn(Strict):
    source: str = Field(pattern=SOURCE_PATTERN, examples=["ats"])
    source_id: str = Field(min_length=1, max_length=255, examples=["cand-1042"])
    data: dict[str, Any] = Field(
        examples=[{"given_name": "Ana", "family_name": "García", "email": "ana@example.com"}]
    )
    updated_at: Instant | None = None
    person_id: UUID | None = None


class RecordResult(BaseModel):
    source: str
    source_id: str
    person_id: UUID
    decision: Literal["created", "linked", "updated", "review"]
    score: float
    matched_on: list[str]
    review_id: UUID | None = None
    review_ids: list[UUID] = []
    merged_person_ids: list[UUID] = Field(
        default=[],
        description="Persons this record showed to be the same human, merged into person_id; "
        "their ids now resolve to it",
    )
    warnings: list[FieldMessage] = []
    explanation: dict[str, Any] = {}


class BatchIn(Strict):
    _check_whole: ClassVar[bool] = False
    records: list[dict[str, Any]] = Field(
        description="Up to 1,000 records shaped like the body of POST /v1/records"
    )


class BatchItem(BaseModel):
    person_id: UUID | None = None
    decision: str | None = None
    score: float | None = None
    matched_on: list[str] | None = None
    review_id: UUID | None = None
    merged_person_ids: list[UUID] | None = None
    warnings: list[FieldMessage] | None = None
    source: str | None = None
    source_id: str | None = None
    error: dict[str, Any] | None = None


class BatchOut(BaseModel):
    results: list[BatchItem]


class MatchIn(Strict):
    source: str = Field(default="crm", pattern=SOURCE_PATTERN)
    source_id: str | None = Field(default=None, min_length=1, max_length=255)
    data: dict[str, Any]
    person_id: UUID | None = None


class Candidate(BaseModel):
    person_id: UUID
    score: float
    explanation: dict[str, Any]


class MatchOut(BaseModel):
    decision: str
    score: float
    person_id: UUID | None
    matched_on: list[str]
    candidates: list[Candidate]
    explanation: dict[str, Any]
    warnings: list[FieldMessage]


class RecordLinkOut(BaseModel):
    source: str
    source_id: str
    link_source: str
    link_state: str
    score: float
    rule: str
    linked_at: datetime
    version: int
    updated_at: datetime | None
    mapping: dict[str, Any] = Field(
        default={},
        description="What the source's profile did to this record: each translated or "
        "converted value with the source value it came from ({value, source_value}), "
        "truncations (with where the full text is in the raw payload), unmapped values",
    )


class ConsentStateOut(BaseModel):
    granted: bool
    source: str
    at: datetime


class PersonOut(BaseModel):
    id: UUID
    status: str
    attributes: dict[str, Any]
    lineage: dict[str, Any]
    records: list[RecordLinkOut]
    aliases: list[UUID]
    consents: dict[str, ConsentStateOut] = Field(
        default={}, description="What holds per purpose: the statement with the latest `at`"
    )
    version: int
    created_at: datetime
    updated_at: datetime


class PersonPage(BaseModel):
    items: list[PersonOut]
    next_cursor: str | None


class ReviewOut(BaseModel):
    id: UUID
    kind: str
    status: str
    score: float
    person_a: UUID
    person_b: UUID
    source: str | None
    explanation: dict[str, Any]
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    decision: str | None
    note: str | None


class ReviewPage(BaseModel):
    items: list[ReviewOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(
        default={}, description="Items matching the other filters, by status"
    )


class ReviewDetailOut(ReviewOut):
    """The item with both persons as they are now, side by side. Their `version`s are what
    a decision sends back to prove it was made on this state."""

    person_a_detail: PersonOut
    person_b_detail: PersonOut


class ResolveIn(Strict):
    decision: Literal["merge", "distinct", "keep", "replace"] = Field(
        description="A match item: merge or distinct. A conflict item: keep the golden "
        "value, or replace it with the other value"
    )
    note: str | None = Field(default=None, max_length=2000)
    person_a_version: int | None = Field(
        default=None, description="person_a's version as shown; 409 if it changed since"
    )
    person_b_version: int | None = Field(
        default=None, description="person_b's version as shown; 409 if it changed since"
    )


class ResolutionOut(BaseModel):
    review: ReviewOut
    person_id: UUID = Field(description="The surviving person after a merge")


class MergeIn(Strict):
    other_id: UUID = Field(description="The person merged into this one; its id redirects here")
    note: str | None = Field(default=None, max_length=2000)


class SplitIn(Strict):
    person_id: UUID | None = Field(
        default=None, description="Move the record to this existing person instead of a new one"
    )
    note: str | None = Field(default=None, max_length=2000)


class SplitOut(BaseModel):
    person_id: UUID = Field(description="The person the record belongs to now")
    from_person_id: UUID


class ConsentIn(Strict):
    granted: bool = Field(strict=True, description="true: given; false: withdrawn")
    source: str = Field(max_length=64, examples=["crm"], description="The system that captured it")
    at: Instant = Field(
        description="When the person gave or withdrew it; at most 5 minutes in the future"
    )
    evidence: str | None = Field(
        default=None, max_length=2000, examples=["form:newsletter-signup/8812"]
    )


class ConsentOut(BaseModel):
    purpose: str
    granted: bool
    source: str
    at: datetime
    evidence: str | None
    recorded_at: datetime
    recorded_by: str
    recorded_on: UUID = Field(
        description="The person id it was recorded on: an id since merged into this person "
        "for a statement made before the merge"
    )


class ConsentRecordedOut(ConsentOut):
    """What holds for the purpose after the statement (an older statement changes nothing)."""

    person_id: UUID
    changed: bool = Field(description="Whether what holds for the purpose changed")


class PersonConsentsOut(BaseModel):
    person_id: UUID
    consents: dict[str, ConsentOut] = Field(description="What holds per purpose")
    history: list[ConsentOut] | None = Field(
        default=None, description="With ?history=true: every statement, newest first"
    )


class HistoryEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    correlation_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class ErasureOut(BaseModel):
    """The tombstone an erasure leaves."""

    person_id: UUID
    erased_at: datetime
    requested_by: str
    reason: str
    records: list[dict[str, str]] = Field(description="Every (source, source_id) it reached")
    aliases: list[UUID] = Field(description="Ids merged into the person, erased with it")


class HistoryPage(BaseModel):
    items: list[HistoryEntryOut]
    next_cursor: str | None


class SourceOut(BaseModel):
    key: str
    kind: Literal["crm", "ats", "hris"]
    description: str
    profile: str
    phone_region: str | None
    fields: int
    counters: dict[str, Any] = Field(
        description="Since the process started: records mapped, rejected, and the unmapped "
        "enum values and truncations by field"
    )


class SourcePage(BaseModel):
    items: list[SourceOut]
    next_cursor: str | None = None


class MappingFieldOut(BaseModel):
    field: str
    type: str
    paths: list[str]
    required: bool
    sensitive: bool
    scope: str | None = Field(
        default=None, description="The scope that shows the value in clear, if sensitive"
    )
    encrypted: bool = Field(default=False, description="Stored encrypted at rest")
    description: str
    rule: str = Field(description="What the profile does to the value, in one line")
    owner: list[str] = Field(
        description="Source kinds in survivorship priority for this field in the golden record"
    )
    survivorship: str
    sync: dict[str, Any] = Field(
        description="Where the field flows: `to` the systems whose webhook subscriptions "
        "receive it, `direction` both (back to this source too) or one-way"
    )
    format: list[str] | None = None
    default: str | None = None
    max_length: int | None = None
    overflow: str | None = None
    pattern: str | None = None
    values: dict[str, Any] | None = None
    on_unmapped: str | None = None
    compensation: dict[str, Any] | None = None


class MappingOut(BaseModel):
    key: str
    kind: str
    description: str
    profile: str
    origin: str
    phone_region: str | None
    fields: list[MappingFieldOut]
    rules: list[dict[str, Any]]


class RejectionOut(BaseModel):
    id: UUID
    source: str | None
    source_id: str | None
    status: Literal["open", "replayed"]
    errors: list[dict[str, Any]]
    raw: dict[str, Any] = Field(description="The record exactly as it was posted")
    correlation_id: str | None
    created_at: datetime
    attempts: int
    last_attempt_at: datetime | None
    replayed_at: datetime | None
    person_id: UUID | None = Field(description="The person the replayed record resolved to")


class RejectionPage(BaseModel):
    items: list[RejectionOut]
    next_cursor: str | None


class ReplayOut(BaseModel):
    rejection: RejectionOut
    result: RecordResult | None = Field(
        description="The ingest of the replayed record; null when it had been replayed before"
    )


class FieldOut(BaseModel):
    person_id: UUID
    field: str
    value: Any
    strategy: str = Field(description="The survivorship strategy of the field")
    owners: list[str] = Field(description="Source kinds in priority order")
    immutable: bool
    sensitive: bool
    lineage: dict[str, Any] = Field(
        description="The rule that chose the value, the record it came from (source, "
        "source_id, kind, version, updated_at) and the other records' values (candidates)"
    )
    choice: dict[str, Any] | None = Field(description="A value a steward accepted")
    conflicts: list[ReviewOut] = Field(description="Conflict review items on this field")


class WebhookIn(Strict):
    url: str = Field(max_length=2000, examples=["https://hris.example.com/hooks/mdm"])
    events: list[str] = Field(
        min_length=1, examples=[["person.updated", "person.hired"]], description='or ["*"]'
    )
    system: str | None = Field(
        default=None,
        description="The source key of the system it feeds: it is never sent the fields it "
        "owns nor its own changes back",
    )
    fields: list[str] | None = Field(
        default=None, description="Golden fields it receives (default: every allowed one)"
    )
    scopes: list[str] = Field(
        default=[],
        description="Like an API key's: without persons:read:sensitive or "
        "persons:read:compensation, those fields are redacted",
    )


class WebhookOut(BaseModel):
    id: UUID
    url: str
    events: list[str]
    system: str | None
    fields: list[str] | None
    scopes: list[str]
    status: Literal["active", "disabled"]
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime
    created_by: str


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_...): shown this once")


class WebhookPage(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None = None


class DeliveryOut(BaseModel):
    id: UUID
    subscription_id: UUID
    event_id: UUID = Field(description="The webhook-id header: the same on every retry")
    event_seq: int
    event_type: str
    person_id: UUID | None
    status: Literal["pending", "delivering", "delivered", "dead", "disabled"]
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None
