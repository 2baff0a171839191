"""Value transformations a profile declares: dates, numbers, money and text.

Each function returns the canonical value or raises `Unconvertible` saying why; none of
them guesses. A date format, a number locale or a pay period the profile does not declare
is a failure the sender sees, not a silent assumption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.numbers import NumberFormatError, get_currency_precision, list_currencies, parse_decimal

PERIODS = ("annual", "monthly", "hourly")
MONTHS_PER_YEAR = 12


class Unconvertible(ValueError):
    """A value the declared transformation cannot convert; the message says why."""


# --- dates -------------------------------------------------------------------------------

_TOKENS = {
    "YYYY": r"(?P<Y>\d{4})",
    "YY": r"(?P<y>\d{2})",
    "MMM": r"(?P<b>[A-Za-z]{3,9})",
    "MM": r"(?P<m>\d{2})",
    "M": r"(?P<m>\d{1,2})",
    "DD": r"(?P<d>\d{2})",
    "D": r"(?P<d>\d{1,2})",
}
_TOKEN = re.compile("|".join(sorted(_TOKENS, key=len, reverse=True)))
# English month names, as vendors' US exports write them; not the process locale's.
_MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_ABBREVIATIONS = tuple(name[:3] for name in _MONTH_NAMES)
_MONTHS = {
    name: i + 1
    for i, names in enumerate(zip(_ABBREVIATIONS, _MONTH_NAMES, strict=True))
    for name in names
}
_MONTHS["sept"] = 9
SPECIAL_DATE_FORMATS = ("iso", "epoch", "epoch_ms")


@dataclass(frozen=True, slots=True)
class DateFormat:
    """A declared source date format: ``MM/DD/YYYY``, ``DD.MM.YY``, ``iso``, ``epoch``..."""

    text: str
    regex: re.Pattern[str] | None

    @classmethod
    def compile(cls, text: str) -> DateFormat:
        if text in SPECIAL_DATE_FORMATS:
            return cls(text, None)
        parts: list[str] = []
        pos = 0
        seen: set[str] = set()
        for m in _TOKEN.finditer(text):
            parts.append(re.escape(text[pos : m.start()]))
            parts.append(_TOKENS[m.group()])
            seen.add(m.group()[0] if m.group() != "MMM" else "MMM")
            pos = m.end()
        parts.append(re.escape(text[pos:]))
        has_month = "M" in seen or "MMM" in seen
        if not ({"Y"} <= seen and has_month and "D" in seen):
            raise ValueError(
                f"date format {text!r} needs a year (YYYY or YY), a month (MM, M or MMM) "
                "and a day (DD or D); or use iso, epoch or epoch_ms"
            )
        return cls(text, re.compile("".join(parts) + r"\Z", re.IGNORECASE))


def parse_date(
    value: Any, formats: tuple[DateFormat, ...], *, past: bool, today: date | None = None
) -> str:
    """The ISO 8601 date of `value`, read with the first declared format that fits.

    Two-digit years: a date that cannot lie in the future (a birth date) takes the most
    recent matching year not after today; others use the sliding window of Unicode
    CLDR (80 years back, 20 ahead), so "01.02.30" is 2030 for a contract end and 1930
    for a birth date.
    """
    today = today or date.today()
    problems: list[str] = []
    for fmt in formats:
        try:
            return _parse_one(value, fmt, past=past, today=today).isoformat()
        except Unconvertible as exc:
            problems.append(str(exc))
    if len(formats) == 1:
        raise Unconvertible(problems[0])
    declared = ", ".join(f.text for f in formats)
    raise Unconvertible(f"not a date in any declared format ({declared})")


def _parse_one(value: Any, fmt: DateFormat, *, past: bool, today: date) -> date:
    if fmt.text in ("epoch", "epoch_ms"):
        return _from_epoch(value, 1000 if fmt.text == "epoch_ms" else 1)
    if not isinstance(value, str):
        raise Unconvertible(f"must be a string date ({fmt.text})")
    text = value.strip()
    if fmt.regex is None:  # iso
        try:
            if len(text) > 10:
                return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
            return date.fromisoformat(text)
        except ValueError:
            raise Unconvertible("not an ISO 8601 date (YYYY-MM-DD)") from None
    m = fmt.regex.match(text)
    if m is None:
        raise Unconvertible(f"not a date in the format {fmt.text}")
    parts = m.groupdict()
    if parts.get("b") is not None:
        month = _MONTHS.get(parts["b"].lower())
        if month is None:
            raise Unconvertible(f"unknown month name {parts['b']!r}")
    else:
        month = int(parts["m"])
    day = int(parts["d"])
    if parts.get("Y") is not None:
        year = int(parts["Y"])
    else:
        year = _century(int(parts["y"]), month, day, past=past, today=today)
    try:
        return date(year, month, day)
    except ValueError:
        raise Unconvertible(
            f"no such day: {year:04d}-{month:02d}-{day:02d} (format {fmt.text})"
        ) from None


def _century(yy: int, month: int, day: int, *, past: bool, today: date) -> int:
    year = today.year - today.year % 100 + yy
    if past:
        # Compare month and day too: on 2026-03-01 a birth date "05/10/26" is 1926.
        if (year, month, day) > (today.year, today.month, today.day):
            year -= 100
        return year
    if year > today.year + 20:
        return year - 100
    if year <= today.year - 80:
        return year + 100
    return year


def _from_epoch(value: Any, per_second: int) -> date:
    if isinstance(value, bool):
        raise Unconvertible("must be a number of seconds since 1970-01-01")
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value.strip())
    if not isinstance(value, int | float):
        raise Unconvertible("must be a number of seconds since 1970-01-01")
    try:
        return datetime.fromtimestamp(value / per_second, tz=UTC).date()
    except (OverflowError, OSError, ValueError):
        raise Unconvertible("a timestamp out of range") from None


# --- numbers and money ------------------------------------------------------------------


@lru_cache(maxsize=64)
def check_locale(name: str) -> str:
    try:
        Locale.parse(name)
    except (UnknownLocaleError, ValueError):
        raise ValueError(
            f"unknown locale {name!r} (use a CLDR name such as en_US or de_DE)"
        ) from None
    return name


def parse_amount(value: Any, locale: str | None) -> Decimal:
    """A number, or a string written in the declared locale ("145.000,50" in de_DE).

    Strings need a declared locale: "1,234" is a thousand and more in en_US and one and
    a quarter in de_DE, so the profile must say which.
    """
    if isinstance(value, bool):
        raise Unconvertible("must be a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise Unconvertible("must be a finite number")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise Unconvertible("must be a number")
    if locale is None:
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise Unconvertible(
                "must be a number (a formatted amount needs a locale in the profile)"
            ) from None
    try:
        return parse_decimal(value.strip(), locale=locale, strict=True)
    except NumberFormatError:
        raise Unconvertible(f"not a number as written in the locale {locale}") from None


CURRENCIES = frozenset(list_currencies())


def currency_code(value: Any) -> str:
    if not isinstance(value, str) or value.strip().upper() not in CURRENCIES:
        raise Unconvertible("must be an ISO 4217 currency code such as USD")
    return value.strip().upper()


def convert_pay(
    amount: Decimal, period: str, target: str, *, hours_per_year: Decimal | None
) -> Decimal:
    """Convert pay between annual, monthly and hourly; hourly needs declared hours."""
    if period == target:
        return amount
    if "hourly" in (period, target) and hours_per_year is None:
        raise Unconvertible(
            f"{period} pay cannot be converted to {target} without hours_per_year in the profile"
        )
    per_year = {
        "annual": Decimal(1),
        "monthly": Decimal(MONTHS_PER_YEAR),
        "hourly": hours_per_year or Decimal(1),
    }
    return amount * per_year[period] / per_year[target]


def money(amount: Decimal, currency: str) -> int | float:
    """The amount rounded to the currency's minor unit (JPY 0 places, BHD 3), as JSON."""
    places = get_currency_precision(currency)
    rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return int(rounded) if places == 0 or rounded == rounded.to_integral() else float(rounded)


# --- text ---------------------------------------------------------------------------------

CASES = ("lower", "upper", "title", "preserve")


def apply_case(text: str, case: str) -> str:
    if case == "lower":
        return text.lower()
    if case == "upper":
        return text.upper()
    if case == "title":
        # str.title() would give "O'Neil" -> "O'Neil" but "McDONALD" -> "Mcdonald": only
        # all-caps or all-lower input is re-cased, mixed case is the sender's choice.
        return text.title() if text.isupper() or text.islower() else text
    return text
