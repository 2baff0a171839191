"""Read mapping profiles from TOML files and check them before the registry starts.

A bad profile stops start-up with one line per fault naming the file, the line and the
key (``greenhouse.toml:14: fields.birth_date.format: ...``): a typo in a key, a path
that cannot be read, a date format without a day, an enum translating to a value the
registry does not know.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mdm.flow.survivorship import DEFAULT_RULES, FieldRule, Strategy
from mdm.mapping.paths import BadPath, JsonPath, compile_path
from mdm.mapping.profile import (
    CANONICAL_FIELDS,
    LIFECYCLE_STATUSES,
    CompensationSpec,
    EnumBranch,
    EnumTable,
    FieldSpec,
    FieldType,
    PayRange,
    Profile,
    Rule,
    Source,
    SourceKind,
    Sources,
    default_sources,
)
from mdm.mapping.transform import CASES, PERIODS, DateFormat, check_locale, currency_code

SHIPPED_PROFILES = Path(__file__).with_name("profiles")
SOURCE_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
Loc = tuple[str | int, ...]
_Model = TypeVar("_Model", bound=BaseModel)


class ProfileError(ValueError):
    """One or more faults in profile files; the message has one line per fault."""

    def __init__(self, faults: Sequence[str]) -> None:
        super().__init__("\n".join(faults))
        self.faults = list(faults)


class _Fault(Exception):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Branch(_Strict):
    by: str
    values: dict[str, str] = Field(default_factory=dict)
    default: str | None = None


class _Field(_Strict):
    path: str | None = None
    paths: list[str] | None = None
    type: Literal["string", "id", "strings", "date", "enum", "compensation"] | None = None
    required: bool = False
    default: str | None = None
    description: str = ""
    format: str | None = None
    formats: list[str] | None = None
    trim: bool = True
    case: str = "preserve"
    max_length: int | None = Field(default=None, ge=1)
    overflow: Literal["reject", "truncate"] = "reject"
    pattern: str | None = None
    on_invalid: Literal["reject", "warn"] = "reject"
    values: dict[str, str | _Branch] | None = None
    on_unmapped: Literal["reject", "warn"] = "warn"
    # compensation
    amount: str | None = None
    currency: str | None = None
    currency_default: str | None = None
    period: str | None = None
    period_default: str | None = None
    period_values: dict[str, str] | None = None
    convert_to: str | None = None
    hours_per_year: float | None = Field(default=None, gt=0, le=8784)
    locale: str | None = None
    # {currency or "*": {period: [low, high]}}
    ranges: dict[str, dict[str, list[float]]] | None = None
    on_out_of_range: Literal["reject", "warn"] = "reject"


class _Rule(_Strict):
    check: Literal["before", "requires"]
    fields: list[str]
    when: str | None = None
    in_: list[str] = Field(default_factory=list, alias="in")
    severity: Literal["error", "warning"] = "error"
    message: str | None = None


class _SourceTable(_Strict):
    key: str
    kind: Literal["crm", "ats", "hris"]
    description: str = ""
    phone_region: str | None = None


class _ProfileFile(_Strict):
    source: _SourceTable
    fields: dict[str, _Field]
    rules: list[_Rule] = Field(default_factory=list)


def load_sources(directories: Iterable[Path]) -> Sources:
    """The default sources, then every ``*.toml`` profile in `directories` in order; a
    later file replaces a source of the same key (so a company can map its `crm`)."""
    sources = default_sources()
    faults: list[str] = []
    for directory in directories:
        if not directory.is_dir():
            faults.append(f"{directory}: not a directory of profiles")
            continue
        seen: dict[str, Path] = {}
        for file in sorted(directory.glob("*.toml")):
            try:
                source = load_profile(file)
            except ProfileError as exc:
                faults.extend(exc.faults)
                continue
            if source.key in seen:
                faults.append(
                    f"{file}:1: source.key: {source.key!r} is also defined in {seen[source.key]}"
                )
                continue
            seen[source.key] = file
            sources[source.key] = source
    if faults:
        raise ProfileError(faults)
    return Sources(sources)


def load_profile(file: Path) -> Source:
    text = file.read_text(encoding="utf-8")
    return parse_profile(text, str(file))


def parse_profile(text: str, origin: str) -> Source:
    """Parse and check one profile; raise `ProfileError` naming each fault's line."""
    model = _read(text, origin, _ProfileFile)
    faults: list[str] = []
    source: Source | None = None
    try:
        source = _compile(model, origin, faults, text)
    except _Fault as fault:
        faults.append(_fault_line(text, origin, fault.loc, fault.message))
    if faults or source is None:
        raise ProfileError(faults)
    return source


def _read(text: str, origin: str, schema: type[_Model]) -> _Model:
    """A TOML file checked against `schema`; `ProfileError` naming each fault's line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_of_message(str(exc))
        raise ProfileError([f"{origin}:{line or 1}: not valid TOML: {exc}"]) from None
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise ProfileError(
            [
                _fault_line(text, origin, tuple(_loc(e["loc"])), _pydantic_message(e))
                for e in exc.errors()
            ]
        ) from None


def _loc(loc: Iterable[Any]) -> list[str | int]:
    # pydantic adds the union member tried ("str", "_Branch") to the location; drop it.
    return [p for p in loc if p not in ("str", "_Branch", "float", "list[float]")]


def _pydantic_message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return str(error["msg"])


def _line_of_message(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def _compile(model: _ProfileFile, origin: str, faults: list[str], text: str) -> Source:
    head = model.source
    if not SOURCE_KEY.match(head.key):
        raise _Fault(("source", "key"), "lowercase letters, digits, '-' or '_', at most 64")
    if head.phone_region is not None and len(head.phone_region) != 2:
        raise _Fault(("source", "phone_region"), "an ISO 3166 alpha-2 code such as US")
    fields: list[FieldSpec] = []
    for name, spec in model.fields.items():
        try:
            fields.append(_compile_field(name, spec))
        except _Fault as fault:
            faults.append(_fault_line(text, origin, fault.loc, fault.message))
    rules: list[Rule] = []
    mapped = {f.name for f in fields}
    for i, rule in enumerate(model.rules):
        try:
            rules.append(_compile_rule(i, rule, mapped))
        except _Fault as fault:
            faults.append(_fault_line(text, origin, fault.loc, fault.message))
    profile = Profile(
        name=head.key,
        fields=tuple(fields),
        rules=tuple(rules),
        phone_region=head.phone_region.upper() if head.phone_region else None,
        origin=origin,
    )
    return Source(head.key, SourceKind(head.kind), profile, head.description)


def _path(loc: Loc, text: str) -> JsonPath:
    try:
        return compile_path(text)
    except BadPath as exc:
        raise _Fault(loc, str(exc)) from None


def _compile_field(name: str, f: _Field) -> FieldSpec:
    at: Loc = ("fields", name)
    canonical = CANONICAL_FIELDS.get(name)
    if canonical is None:
        raise _Fault(at, f"{name!r} is not a canonical field ({', '.join(CANONICAL_FIELDS)})")
    kind = FieldType(f.type) if f.type else canonical.type
    if f.values is not None and f.type is None:
        kind = FieldType.ENUM
    allowed = {
        FieldType.STRING: {FieldType.STRING, FieldType.ENUM},
        FieldType.ID: {FieldType.ID, FieldType.ENUM},
        FieldType.STRINGS: {FieldType.STRINGS},
        FieldType.DATE: {FieldType.DATE},
        FieldType.COMPENSATION: {FieldType.COMPENSATION},
    }[canonical.type]
    if kind not in allowed:
        raise _Fault(
            (*at, "type"),
            f"{name} is a {canonical.type.value} field; "
            f"use {' or '.join(sorted(k.value for k in allowed))}",
        )
    if f.path and f.paths:
        raise _Fault((*at, "paths"), "give path or paths, not both")
    if kind is FieldType.COMPENSATION:
        return _compile_compensation(name, f, at)
    texts = f.paths or ([f.path] if f.path else [])
    if not texts:
        raise _Fault(at, "needs a path (where the value sits in the payload)")
    key = "paths" if f.paths else "path"
    paths = tuple(_path((*at, key), t) for t in texts)
    formats: tuple[DateFormat, ...] = ()
    if kind is FieldType.DATE:
        declared = f.formats or ([f.format] if f.format else ["iso"])
        try:
            formats = tuple(DateFormat.compile(t) for t in declared)
        except ValueError as exc:
            raise _Fault((*at, "formats" if f.formats else "format"), str(exc)) from None
    elif f.format or f.formats:
        raise _Fault((*at, "format"), "only date fields take a format")
    if f.case not in CASES:
        raise _Fault((*at, "case"), f"one of {', '.join(CASES)}")
    pattern = None
    if f.pattern is not None:
        try:
            pattern = re.compile(f.pattern)
        except re.error as exc:
            raise _Fault((*at, "pattern"), f"not a regular expression: {exc}") from None
    enum = None
    if kind is FieldType.ENUM:
        if not f.values:
            raise _Fault((*at, "values"), "an enum field needs a values table")
        enum = EnumTable(
            values={
                k.strip().casefold(): _enum_target(name, (*at, "values", k), v)
                for k, v in f.values.items()
            },
            reject_unmapped=f.on_unmapped == "reject",
        )
    elif f.values is not None:
        raise _Fault((*at, "values"), "only enum fields take a values table")
    return FieldSpec(
        name=name,
        type=kind,
        paths=paths,
        required=f.required,
        default=f.default,
        formats=formats,
        trim=f.trim,
        case=f.case,
        max_length=f.max_length,
        truncate=f.overflow == "truncate",
        pattern=pattern,
        reject_invalid=f.on_invalid == "reject",
        enum=enum,
        sensitive=canonical.sensitive,
        description=f.description or canonical.description,
    )


def _enum_target(name: str, loc: Loc, value: str | _Branch) -> str | EnumBranch:
    def check(target: str, where: Loc) -> str:
        if name == "status" and target not in LIFECYCLE_STATUSES:
            raise _Fault(
                where, f"{target!r} is not a lifecycle status ({', '.join(LIFECYCLE_STATUSES)})"
            )
        return target

    if isinstance(value, str):
        return check(value, loc)
    return EnumBranch(
        by=_path((*loc, "by"), value.by),
        values={
            k.strip().casefold(): check(v, (*loc, "values", k)) for k, v in value.values.items()
        },
        default=check(value.default, (*loc, "default")) if value.default else None,
    )


def _compile_compensation(name: str, f: _Field, at: Loc) -> FieldSpec:
    if f.amount is None:
        raise _Fault(at, "compensation needs an amount path")
    if f.currency is None and f.currency_default is None:
        raise _Fault(at, "compensation needs a currency path or a currency_default")
    if f.period is None and f.period_default is None:
        # Never guessed: monthly pay read as annual is a 12x error on a payslip.
        raise _Fault(at, "compensation needs a period path or a period_default")
    if f.currency_default is not None:
        try:
            currency_code(f.currency_default)
        except ValueError as exc:
            raise _Fault((*at, "currency_default"), str(exc)) from None
    period_values = {p: p for p in PERIODS}
    for label, period in (f.period_values or {}).items():
        if period not in PERIODS:
            raise _Fault((*at, "period_values", label), f"one of {', '.join(PERIODS)}")
        period_values[label.strip().casefold()] = period
    if f.period_default is not None and f.period_default.casefold() not in period_values:
        raise _Fault((*at, "period_default"), f"one of {', '.join(PERIODS)}")
    if f.convert_to is not None and f.convert_to not in PERIODS:
        raise _Fault((*at, "convert_to"), f"one of {', '.join(PERIODS)}")
    if f.locale is not None:
        try:
            check_locale(f.locale)
        except ValueError as exc:
            raise _Fault((*at, "locale"), str(exc)) from None
    ranges: list[PayRange] = []
    for currency, periods in (f.ranges or {}).items():
        if currency != "*":
            try:
                currency_code(currency)
            except ValueError as exc:
                raise _Fault((*at, "ranges", currency), f'{exc}, or "*"') from None
        for period, bounds in periods.items():
            where = (*at, "ranges", currency, period)
            if period not in PERIODS:
                raise _Fault(where, f"one of {', '.join(PERIODS)}")
            if len(bounds) != 2 or bounds[0] > bounds[1]:
                raise _Fault(where, "[low, high] with low <= high (inf for no upper bound)")
            low, high = (Decimal(str(b)) if b != float("inf") else None for b in bounds)
            ranges.append(PayRange(currency.upper(), period, low, high))
    return FieldSpec(
        name=name,
        type=FieldType.COMPENSATION,
        paths=(_path((*at, "amount"), f.amount),),
        required=f.required,
        compensation=CompensationSpec(
            amount=_path((*at, "amount"), f.amount),
            currency=_path((*at, "currency"), f.currency) if f.currency else None,
            currency_default=f.currency_default,
            period=_path((*at, "period"), f.period) if f.period else None,
            period_default=f.period_default,
            period_values=period_values,
            convert_to=f.convert_to,
            hours_per_year=Decimal(str(f.hours_per_year)) if f.hours_per_year else None,
            locale=f.locale,
            ranges=tuple(ranges),
            ranges_reject=f.on_out_of_range == "reject",
        ),
        sensitive=True,
        description=f.description or CANONICAL_FIELDS[name].description,
    )


def _compile_rule(i: int, rule: _Rule, mapped: set[str]) -> Rule:
    at: Loc = ("rules", i)
    for name in [*rule.fields, *([rule.when] if rule.when else [])]:
        if name not in CANONICAL_FIELDS:
            raise _Fault((*at, "fields"), f"{name!r} is not a canonical field")
    if rule.check == "before":
        if len(rule.fields) != 2:
            raise _Fault((*at, "fields"), "a before rule compares two date fields")
        for name in rule.fields:
            if CANONICAL_FIELDS[name].type is not FieldType.DATE:
                raise _Fault((*at, "fields"), f"{name} is not a date field")
    elif rule.when is None:
        raise _Fault(at, "a requires rule needs `when` (the field that triggers it)")
    return Rule(
        check=rule.check,
        fields=tuple(rule.fields),
        when=rule.when,
        values=tuple(rule.in_),
        reject=rule.severity == "error",
        message=rule.message,
    )


# --- naming the line of a fault ----------------------------------------------------------

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_PART = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")


def _split_key(text: str) -> list[str]:
    parts = re.findall(r'"([^"]*)"|\'([^\']*)\'|([A-Za-z0-9_\-]+)', text)
    return [a or b or c for a, b, c in parts]


def _fault_line(text: str, origin: str, loc: Loc, message: str) -> str:
    where = ".".join(str(p) for p in loc)
    return f"{origin}:{_locate(text, loc)}: {where}: {message}"


def _locate(text: str, loc: Loc) -> int:
    """The line that best matches `loc`: the longest prefix of it that a line defines."""
    target = [str(p) for p in loc]
    best_line, best_len = 1, -1
    table: list[str] = []
    arrays: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            table = _split_key(header.group(2))
            if header.group(1) == "[[":
                name = ".".join(table)
                arrays[name] = arrays.get(name, -1) + 1
                table = [*table, str(arrays[name])]
            path = table
        else:
            key = _KEY.match(line)
            if not key:
                continue
            path = [*table, *_split_key(key.group(1))]
        common = 0
        for a, b in zip(path, target, strict=False):
            if a != b:
                break
            common += 1
        if common == len(path) and common > best_len:
            best_line, best_len = number, common
    return best_line


# --- survivorship rules --------------------------------------------------------------------


class _RuleFile(_Strict):
    strategy: Literal["source_priority", "most_recent", "most_frequent", "union", "first_seen"]
    owners: list[Literal["crm", "ats", "hris"]] = Field(default_factory=list)
    immutable: bool = False
    sensitive: bool = False
    tolerance: float | None = Field(default=None, ge=0, le=1)


class _RulesFile(_Strict):
    fields: dict[str, _RuleFile]


def load_rules(file: Path) -> dict[str, FieldRule]:
    """The default survivorship rules with the fields `file` declares replaced; a bad file
    is refused naming the line, like a bad profile."""
    text = file.read_text(encoding="utf-8")
    origin = str(file)
    model = _read(text, origin, _RulesFile)
    rules = dict(DEFAULT_RULES)
    faults = []
    for name, rule in model.fields.items():
        if name not in CANONICAL_FIELDS or name in ("email", "phone"):
            faults.append(
                _fault_line(text, origin, ("fields", name), f"{name!r} is not a golden field")
            )
            continue
        strategy = Strategy(rule.strategy)
        if (strategy is Strategy.UNION) != (name in ("emails", "phones")):
            faults.append(
                _fault_line(
                    text,
                    origin,
                    ("fields", name, "strategy"),
                    "union is the strategy of emails and phones, and only theirs",
                )
            )
            continue
        rules[name] = FieldRule(
            strategy, tuple(rule.owners), rule.immutable, rule.sensitive, rule.tolerance
        )
    if faults:
        raise ProfileError(faults)
    return rules
