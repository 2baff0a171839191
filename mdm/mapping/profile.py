"""A compiled mapping profile, the canonical fields it maps onto, and the sources.

A profile says, per canonical field, where the value sits in the source's payload and how
to turn it into the canonical value. The sources `crm`, `ats` and `hris` post canonical
field names: their profile is `canonical_profile()`, built from the same table that
documents the fields, so one mapper serves every source.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from mdm.mapping.paths import JsonPath, compile_path
from mdm.mapping.transform import DateFormat


class FieldType(StrEnum):
    STRING = "string"
    ID = "id"  # text that some systems send as a number
    STRINGS = "strings"
    DATE = "date"
    ENUM = "enum"
    COMPENSATION = "compensation"


class SourceKind(StrEnum):
    CRM = "crm"
    ATS = "ats"
    HRIS = "hris"


@dataclass(frozen=True, slots=True)
class CanonicalField:
    name: str
    type: FieldType
    description: str
    sensitive: bool = False
    past: bool = False  # a date that cannot lie in the future


CANONICAL_FIELDS: dict[str, CanonicalField] = {
    f.name: f
    for f in (
        CanonicalField("given_name", FieldType.STRING, "Given (first) name"),
        CanonicalField("middle_name", FieldType.STRING, "Middle name or initial"),
        CanonicalField("family_name", FieldType.STRING, "Family (last) name"),
        CanonicalField("email", FieldType.ID, "An email address"),
        CanonicalField("emails", FieldType.STRINGS, "Email addresses"),
        CanonicalField("phone", FieldType.ID, "A phone number, any format; stored as E.164"),
        CanonicalField("phones", FieldType.STRINGS, "Phone numbers"),
        CanonicalField("country", FieldType.STRING, "ISO 3166 alpha-2; the phone region"),
        CanonicalField(
            "birth_date", FieldType.DATE, "Birth date, ISO 8601", sensitive=True, past=True
        ),
        CanonicalField(
            "national_id", FieldType.ID, "National id (SSN); encrypted at rest", sensitive=True
        ),
        CanonicalField("employee_id", FieldType.ID, "Employee id issued by the HRIS"),
        CanonicalField("hire_date", FieldType.DATE, "Hire date, ISO 8601"),
        CanonicalField("department", FieldType.STRING, "Department"),
        CanonicalField("cost_center", FieldType.STRING, "Cost center"),
        CanonicalField("job_title", FieldType.STRING, "Job title"),
        CanonicalField(
            "status",
            FieldType.STRING,
            "Lifecycle status: candidate, offer, hired, employee, on_leave, terminated, rehired",
        ),
        CanonicalField(
            "interview_feedback", FieldType.STRING, "Interview feedback", sensitive=True
        ),
        CanonicalField(
            "compensation",
            FieldType.COMPENSATION,
            "Pay {amount, currency (ISO 4217), period: annual|monthly|hourly}",
            sensitive=True,
        ),
    )
}
LIST_FIELDS = frozenset(("emails", "phones"))
LIFECYCLE_STATUSES = (
    "candidate",
    "offer",
    "hired",
    "employee",
    "on_leave",
    "terminated",
    "rehired",
)


@dataclass(frozen=True, slots=True)
class EnumBranch:
    """A source value whose translation depends on a second field ("On Leave" by type)."""

    by: JsonPath
    values: Mapping[str, str]
    default: str | None


@dataclass(frozen=True, slots=True)
class EnumTable:
    values: Mapping[str, str | EnumBranch]  # keys case-folded
    reject_unmapped: bool


@dataclass(frozen=True, slots=True)
class PayRange:
    """Plausible pay for one currency ("*": any currency without its own) and period.
    Ranges are per currency because 150,000,000 a year is a normal salary in VND."""

    currency: str
    period: str
    low: Decimal | None
    high: Decimal | None

    def holds(self, amount: Decimal) -> bool:
        return (self.low is None or amount >= self.low) and (
            self.high is None or amount <= self.high
        )


@dataclass(frozen=True, slots=True)
class CompensationSpec:
    amount: JsonPath
    currency: JsonPath | None
    currency_default: str | None
    period: JsonPath | None
    period_default: str | None
    period_values: Mapping[str, str]  # source labels (case-folded) -> annual|monthly|hourly
    convert_to: str | None
    hours_per_year: Decimal | None
    locale: str | None  # how amounts written as text are read
    ranges: tuple[PayRange, ...] = ()
    ranges_reject: bool = True
    # The canonical shape {amount, currency, period} lives under this path, checked whole.
    object_path: JsonPath | None = None


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    paths: tuple[JsonPath, ...]
    required: bool = False
    default: Any = None
    formats: tuple[DateFormat, ...] = ()
    trim: bool = True
    case: str = "preserve"
    max_length: int | None = None
    truncate: bool = False  # over-long text: cut (with a warning) rather than refuse
    pattern: re.Pattern[str] | None = None
    reject_invalid: bool = True  # an unconvertible value: refuse, or drop with a warning
    enum: EnumTable | None = None
    compensation: CompensationSpec | None = None
    sensitive: bool = False
    description: str = ""
    # A list field read from a single-valued path may find one value rather than a list
    # (Workday's "Email_-_Work"); the canonical `emails` must be a list.
    accept_scalar: bool = True

    @property
    def canonical(self) -> CanonicalField:
        return CANONICAL_FIELDS[self.name]


@dataclass(frozen=True, slots=True)
class Rule:
    """A cross-field rule: `before` (dates in order) or `requires` (when a field is set,
    or holds one of `values`, other fields must be present)."""

    check: str
    fields: tuple[str, ...]
    when: str | None = None
    values: tuple[str, ...] = ()
    reject: bool = True
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    fields: tuple[FieldSpec, ...]
    rules: tuple[Rule, ...] = ()
    phone_region: str | None = None
    # The canonical profile warns about posted names that are not canonical fields;
    # a vendor payload carries dozens of fields nobody maps, so profiles do not.
    report_unknown: bool = False
    origin: str = "built in"

    def spec(self, name: str) -> FieldSpec | None:
        return next((f for f in self.fields if f.name == name), None)

    def locations(self, data: Any, names: Iterable[str]) -> tuple[str, ...]:
        """Where in a payload the fields `names` are read from (``data.Personal.SSN``):
        found whether or not the payload maps, so a refused payload is kept as safely."""
        wanted = set(names)
        return tuple(
            where
            for spec in self.fields
            if spec.name in wanted
            for path in spec.paths
            for where, _ in path.find(data)
        )


@dataclass(frozen=True, slots=True)
class Source:
    key: str
    kind: SourceKind
    profile: Profile
    description: str = ""


@dataclass(frozen=True, slots=True)
class Sources:
    """The sources the registry accepts records from, by key."""

    by_key: Mapping[str, Source] = field(default_factory=dict)

    def get(self, key: str) -> Source | None:
        return self.by_key.get(key)

    def __iter__(self) -> Any:
        return iter(sorted(self.by_key.values(), key=lambda s: s.key))


def canonical_profile() -> Profile:
    fields: list[FieldSpec] = []
    for f in CANONICAL_FIELDS.values():
        path = (compile_path(f.name),)
        if f.type is FieldType.COMPENSATION:
            fields.append(
                FieldSpec(
                    f.name,
                    f.type,
                    path,
                    sensitive=f.sensitive,
                    compensation=CompensationSpec(
                        amount=compile_path("compensation.amount"),
                        currency=compile_path("compensation.currency"),
                        currency_default=None,
                        period=compile_path("compensation.period"),
                        period_default=None,
                        period_values={p: p for p in ("annual", "monthly", "hourly")},
                        convert_to=None,
                        hours_per_year=None,
                        locale=None,
                        object_path=path[0],
                    ),
                    description=f.description,
                )
            )
            continue
        fields.append(
            FieldSpec(
                f.name,
                f.type,
                path,
                formats=(DateFormat.compile("iso"),) if f.type is FieldType.DATE else (),
                # Canonical senders get the registry's historic leniency: an optional value
                # that cannot be read is dropped with a warning, the record still resolves.
                reject_invalid=False,
                trim=f.type is not FieldType.STRING or f.name != "interview_feedback",
                accept_scalar=f.type is not FieldType.STRINGS,
                sensitive=f.sensitive,
                description=f.description,
            )
        )
    return Profile("canonical", tuple(fields), report_unknown=True)


CANONICAL_PROFILE = canonical_profile()


def default_sources() -> dict[str, Source]:
    return {
        kind.value: Source(
            kind.value,
            kind,
            CANONICAL_PROFILE,
            f"{kind.value.upper()} records posted under the canonical field names",
        )
        for kind in SourceKind
    }
