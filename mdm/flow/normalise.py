"""Normalise a mapped record: emails, phones, names, dates and identifiers.

Required: a given or family name, plus at least one identifying value (email, phone,
birth date, employee id or national id). An optional value that cannot be parsed is
dropped from matching and reported as a warning, never silently.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import phonenumbers
from anyascii import anyascii
from email_validator import EmailNotValidError, validate_email
from nicknames import NickNamer

from mdm.flow.map import MappedRecord, map_record
from mdm.mapping.profile import LIFECYCLE_STATUSES as LIFECYCLE
from mdm.model.errors import FieldIssue, InvalidRecord
from mdm.model.record import IncomingRecord, MatchFeatures, NormalisedRecord

LIFECYCLE_STATUSES = frozenset(LIFECYCLE)
IDENTITY_FIELDS = ("email", "phone", "birth_date", "employee_id", "national_id")
_SPACES = re.compile(r"\s+")
_NAME_PUNCTUATION = re.compile(r"[^\w\s]")
_SSN = re.compile(r"^(\d{3})(\d{2})(\d{4})$")
_NATIONAL_ID = re.compile(r"^[A-Z0-9]{4,24}$")
_EARLIEST_BIRTH = date(1900, 1, 1)


class UnreadableValue(ValueError):
    """An optional value that could not be parsed; the message says why."""


def collapse(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=65536)
def fold_name(name: str) -> str:
    """Comparison form of a name: case-folded, accent-folded, punctuation dropped.

    Hyphens become spaces so that "Jean-Luc" and "Jean Luc" compare equal.
    """
    folded = anyascii(name.replace("-", " ")).casefold()
    folded = _NAME_PUNCTUATION.sub("", folded)
    return collapse(folded)


_NICKNAMER = NickNamer()
# Given names the nickname table knows: two of them are never typos of each other.
KNOWN_GIVEN_NAMES = frozenset(_NICKNAMER.canonical_lookup) | frozenset(_NICKNAMER.nickname_lookup)


@lru_cache(maxsize=65536)
def given_name_keys(folded_given: str) -> frozenset[str]:
    """The given name and the canonical names it is a nickname of (bill -> william, ...)."""
    first = folded_given.split(" ")[0] if folded_given else ""
    if not first:
        return frozenset()
    return frozenset({first, *_NICKNAMER.canonicals_of(first)})


@lru_cache(maxsize=65536)
def normalise_email(raw: str) -> str:
    try:
        checked = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise UnreadableValue(f"not a valid email address: {exc}") from None
    return checked.normalized.lower()


@lru_cache(maxsize=65536)
def normalise_phone(raw: str, region: str | None) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise UnreadableValue(
            "not a phone number" if region else "not a phone number (no country to read it in)"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise UnreadableValue("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_date(raw: str, field: str = "birth_date") -> str:
    text = raw.strip()
    try:
        parsed = date.fromisoformat(text[:10]) if len(text) >= 10 else date.fromisoformat(text)
    except ValueError:
        raise UnreadableValue("not an ISO 8601 date (YYYY-MM-DD)") from None
    if field == "birth_date" and not _EARLIEST_BIRTH <= parsed <= date.today():
        raise UnreadableValue("not a plausible birth date")
    return parsed.isoformat()


def normalise_country(raw: str) -> str:
    code = raw.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise UnreadableValue("not an ISO 3166 alpha-2 country code")
    return code


def normalise_national_id(raw: str, country: str | None) -> str:
    value = re.sub(r"[\s\-./]", "", raw).upper()
    if country in (None, "US") and value.isdigit() and len(value) == 9:
        area, group, serial = _SSN.match(value).groups()  # type: ignore[union-attr]
        if area in ("000", "666") or area.startswith("9") or group == "00" or serial == "0000":
            raise UnreadableValue("not a valid social security number")
        return value
    if not _NATIONAL_ID.match(value):
        raise UnreadableValue("not a national id")
    return value


def blind_index(national_id: str, key: str) -> str:
    """A keyed hash, so national ids can be looked up without being stored in the index."""
    return hmac.new(key.encode(), national_id.encode(), hashlib.sha256).hexdigest()[:40]


def normalise(
    incoming: IncomingRecord, *, blind_index_key: str, mapped: MappedRecord | None = None
) -> NormalisedRecord:
    """Validate and normalise one record; raise `InvalidRecord` naming every bad field.

    `mapped` is the payload already mapped by its source's profile; without it the payload
    is read under the canonical field names.
    """
    if mapped is None:
        mapped = map_record(incoming.data)
    values = mapped.values
    warnings = list(mapped.warnings)
    errors: list[FieldIssue] = []
    attributes: dict[str, Any] = {}
    dropped_identity: list[str] = [
        issue.field for name, issue in mapped.dropped.items() if name in IDENTITY_FIELDS
    ]

    def attempt(field: str, fn: Any, *args: Any, path: str | None = None) -> Any:
        try:
            return fn(*args)
        except UnreadableValue as exc:
            where = path or mapped.where(field)
            warnings.append(FieldIssue(where, str(exc), canonical=field))
            if field in IDENTITY_FIELDS:
                dropped_identity.append(where)
            return None

    for field in ("given_name", "middle_name", "family_name"):
        value = collapse(values.get(field, ""))
        if value:
            attributes[field] = value
    if not (attributes.get("given_name") or attributes.get("family_name")):
        errors.append(FieldIssue("data.given_name", "a given_name or a family_name is required"))

    country = (
        attempt("country", normalise_country, values["country"]) if "country" in values else None
    )
    if country:
        attributes["country"] = country
    region = country or mapped.phone_region

    emails = _many(mapped, "email", "emails")
    attributes["emails"] = _unique(
        attempt("email", normalise_email, raw, path=path) for path, raw in emails
    )
    phones = _many(mapped, "phone", "phones")
    attributes["phones"] = _unique(
        attempt("phone", normalise_phone, raw, region, path=path) for path, raw in phones
    )
    for field in ("birth_date", "hire_date"):
        if field in values:
            value = attempt(field, normalise_date, values[field], field)
            if value:
                attributes[field] = value
    if "national_id" in values:
        national_id = attempt("national_id", normalise_national_id, values["national_id"], country)
        if national_id:
            attributes["national_id"] = national_id
    if "employee_id" in values and collapse(values["employee_id"]):
        attributes["employee_id"] = collapse(values["employee_id"])
    for field in ("department", "cost_center", "job_title", "interview_feedback"):
        if field in values and values[field].strip():
            attributes[field] = values[field].strip()
    if "compensation" in values:
        attributes["compensation"] = values["compensation"]
    if "status" in values:
        status = collapse(values["status"]).lower().replace(" ", "_").replace("-", "_")
        if status in LIFECYCLE_STATUSES:
            attributes["status"] = status
        else:
            warnings.append(
                FieldIssue(
                    mapped.where("status"),
                    f"not a lifecycle status ({', '.join(sorted(LIFECYCLE_STATUSES))})",
                )
            )

    has_identity = bool(
        attributes["emails"]
        or attributes["phones"]
        or any(attributes.get(f) for f in ("birth_date", "employee_id", "national_id"))
    )
    if not has_identity:
        if dropped_identity:
            errors.extend(
                FieldIssue(w.field, w.message) for w in warnings if w.field in dropped_identity
            )
        else:
            errors.append(
                FieldIssue("data", "needs at least one of: " + ", ".join(IDENTITY_FIELDS))
            )
    if errors:
        raise InvalidRecord(errors)
    if not attributes["emails"]:
        del attributes["emails"]
    if not attributes["phones"]:
        del attributes["phones"]

    return NormalisedRecord(
        incoming=incoming,
        attributes=attributes,
        features=features_of(incoming.source, attributes, blind_index_key=blind_index_key),
        warnings=tuple(warnings),
        mapping=mapped.notes,
    )


def features_of(
    source: str, attributes: Mapping[str, Any], *, blind_index_key: str
) -> MatchFeatures:
    given = fold_name(attributes["given_name"]) if attributes.get("given_name") else None
    family = fold_name(attributes["family_name"]) if attributes.get("family_name") else None
    middle = fold_name(attributes["middle_name"]) if attributes.get("middle_name") else None
    national_id = attributes.get("national_id")
    employee_id = attributes.get("employee_id")
    return MatchFeatures(
        source=source,
        given=given or None,
        family=family or None,
        middle=middle or None,
        given_keys=given_name_keys(given) if given else frozenset(),
        emails=frozenset(attributes.get("emails", ())),
        phones=frozenset(attributes.get("phones", ())),
        birth_date=attributes.get("birth_date"),
        national_id_index=blind_index(national_id, blind_index_key) if national_id else None,
        # An employee id means something only within the HRIS that issued it.
        employee_id=f"{source}:{employee_id.casefold()}" if employee_id else None,
    )


def _many(mapped: MappedRecord, single: str, plural: str) -> list[tuple[str, str]]:
    values: list[tuple[str, str]] = []
    if single in mapped.values and mapped.values[single].strip():
        values.append((mapped.where(single), mapped.values[single]))
    values.extend(
        (mapped.where(plural, i), raw)
        for i, raw in enumerate(mapped.values.get(plural, ()))
        if raw.strip()
    )
    return values


def _unique(values: Any) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        if value:
            seen.setdefault(value, None)
    return list(seen)


def parse_timestamp(raw: str) -> datetime:
    """Parse an ISO 8601 timestamp; a naive one is taken as UTC."""
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
