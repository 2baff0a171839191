"""Errors the domain raises. They carry data, never HTTP status codes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from mdm.mapping.paths import pointer


@dataclass(frozen=True, slots=True)
class FieldIssue:
    """A problem with one input field; `field` is a dotted path such as ``data.email``.

    `value` is what was sent, shown back to help the sender (never for a sensitive field);
    `canonical` names the canonical field a mapped source value feeds.
    """

    field: str
    message: str
    value: Any = None
    canonical: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "field": self.field,
            "pointer": pointer(self.field),
            "message": self.message,
        }
        if self.canonical is not None:
            out["canonical"] = self.canonical
        if self.value is not None:
            out["value"] = self.value
        return out


class MdmError(Exception):
    """Base of every error the registry reports to a caller."""

    title = "Registry error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidRecord(MdmError):
    title = "Invalid record"

    def __init__(self, errors: list[FieldIssue], detail: str = "The record is not valid") -> None:
        super().__init__(detail)
        self.errors = errors
        # Where the refused payload was kept, once it is (the rejection store).
        self.rejection_id: UUID | None = None


class UnknownSource(InvalidRecord):
    title = "Unknown source"

    def __init__(self, source: str, known: list[str]) -> None:
        message = f"no source {source!r} is configured; known: {', '.join(known)}"
        super().__init__([FieldIssue("source", message, source)], detail=message)


class BatchTooLarge(MdmError):
    title = "Batch too large"

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"A batch holds at most {limit} records; this one holds {size}")
        self.errors = [FieldIssue("records", f"at most {limit} records per batch")]


class PersonNotFound(MdmError):
    title = "Person not found"

    def __init__(self, person_id: UUID | str) -> None:
        super().__init__(f"No person has the id {person_id}")
        self.person_id = person_id


class PersonErased(MdmError):
    title = "Person erased"

    def __init__(self, person_id: UUID) -> None:
        super().__init__(f"The person {person_id} was erased")
        self.person_id = person_id


class ErasedRecord(MdmError):
    """A record of a person erased before: it is not silently made into a new person."""

    title = "Record of an erased person"

    def __init__(self, source: str, source_id: str, person_id: UUID) -> None:
        super().__init__(
            f"The record {source}/{source_id} belonged to the person {person_id}, which was "
            "erased; it is not taken in again"
        )
        self.person_id = person_id
        self.errors = [FieldIssue("source_id", "belongs to an erased person")]


class InvalidCursor(MdmError):
    title = "Invalid cursor"

    def __init__(self) -> None:
        super().__init__("The cursor is not one this API issued")
        self.errors = [FieldIssue("cursor", "not a cursor this API issued")]


class ConcurrentUpdate(MdmError):
    """A unit of work lost a race; the service retries it."""

    title = "Concurrent update"


class ReviewNotFound(MdmError):
    title = "Review item not found"

    def __init__(self, review_id: UUID | str) -> None:
        super().__init__(f"No review item has the id {review_id}")


class StaleDecision(MdmError):
    """A steward's decision on what is no longer the state they were shown."""

    title = "Stale decision"

    def __init__(self, detail: str, current: dict[str, object]) -> None:
        super().__init__(detail)
        self.current = current


class RecordNotFound(MdmError):
    title = "Record not found"

    def __init__(self, source: str, source_id: str) -> None:
        super().__init__(f"No record {source_id!r} from the source {source!r}")


class MergeRefused(MdmError):
    title = "Merge refused"

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.errors = [FieldIssue(field, detail)]


class SplitRefused(MergeRefused):
    title = "Split refused"


class RejectionNotFound(MdmError):
    title = "Rejection not found"

    def __init__(self, rejection_id: UUID | str) -> None:
        super().__init__(f"No rejection has the id {rejection_id}")


class SourceNotFound(MdmError):
    title = "Source not found"

    def __init__(self, source: str) -> None:
        super().__init__(f"No source {source!r} is configured")


class SubscriptionNotFound(MdmError):
    title = "Webhook subscription not found"

    def __init__(self, subscription_id: UUID | str) -> None:
        super().__init__(f"No webhook subscription has the id {subscription_id}")


class DeliveryNotFound(MdmError):
    title = "Delivery not found"

    def __init__(self, delivery_id: UUID | str) -> None:
        super().__init__(f"No delivery {delivery_id} for this subscription")
