"""Each transformation a profile can declare, with its edge cases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from mdm.mapping.transform import (
    DateFormat,
    Unconvertible,
    apply_case,
    convert_pay,
    currency_code,
    money,
    parse_amount,
    parse_date,
)

TODAY = date(2026, 11, 29)


@pytest.mark.parametrize(
    ("value", "formats", "past", "expected"),
    [
        ("03/04/1985", ["MM/DD/YYYY"], True, "1985-03-04"),
        ("04.03.1985", ["DD.MM.YYYY"], True, "1985-03-04"),
        ("4.3.1985", ["D.M.YYYY"], True, "1985-03-04"),
        ("1985-03-04", ["iso"], True, "1985-03-04"),
        ("1985-03-04T23:30:00-05:00", ["iso"], True, "1985-03-04"),
        ("Mar 4, 1985", ["MMM D, YYYY"], True, "1985-03-04"),
        ("4 September 1985", ["D MMM YYYY"], True, "1985-09-04"),
        # leap days
        ("02/29/2024", ["MM/DD/YYYY"], False, "2024-02-29"),
        ("29.02.2000", ["DD.MM.YYYY"], True, "2000-02-29"),
        ("02/29/00", ["MM/DD/YY"], True, "2000-02-29"),
        # two-digit years: a birth date is never in the future...
        ("03/04/85", ["MM/DD/YY"], True, "1985-03-04"),
        ("11/28/26", ["MM/DD/YY"], True, "2026-11-28"),
        ("11/30/26", ["MM/DD/YY"], True, "1926-11-30"),
        # ...other dates use the sliding window, 80 years back and 20 ahead
        ("01.02.30", ["DD.MM.YY"], False, "2030-02-01"),
        ("01.02.46", ["DD.MM.YY"], False, "2046-02-01"),
        ("01.02.47", ["DD.MM.YY"], False, "1947-02-01"),
        # epochs, before 1970 too, and in milliseconds
        (0, ["epoch"], True, "1970-01-01"),
        (-86400, ["epoch"], True, "1969-12-31"),
        ("478742400", ["epoch"], True, "1985-03-04"),
        (478742400000, ["epoch_ms"], True, "1985-03-04"),
        # the first declared format that fits wins
        ("1985-03-04", ["DD.MM.YYYY", "iso"], True, "1985-03-04"),
        (" 04.03.1985 ", ["DD.MM.YYYY"], True, "1985-03-04"),
    ],
)
def test_dates_in_declared_formats_become_iso(
    value: object, formats: list[str], past: bool, expected: str
) -> None:
    compiled = tuple(DateFormat.compile(f) for f in formats)
    assert parse_date(value, compiled, past=past, today=TODAY) == expected


@pytest.mark.parametrize(
    ("value", "formats", "message"),
    [
        ("02/29/2023", ["MM/DD/YYYY"], "no such day: 2023-02-29"),
        ("31.04.2020", ["DD.MM.YYYY"], "no such day: 2020-04-31"),
        ("13/01/2020", ["MM/DD/YYYY"], "no such day: 2020-13-01"),
        ("2020-01-13", ["MM/DD/YYYY"], "not a date in the format MM/DD/YYYY"),
        ("Foo 4, 1985", ["MMM D, YYYY"], "unknown month name 'Foo'"),
        ("04.03.1985", ["iso"], "not an ISO 8601 date"),
        ("yesterday", ["DD.MM.YYYY", "iso"], "not a date in any declared format"),
        (True, ["epoch"], "must be a number of seconds"),
        (1e20, ["epoch"], "out of range"),
        (478742400, ["MM/DD/YYYY"], "must be a string date"),
    ],
)
def test_dates_that_do_not_fit_are_refused_saying_why(
    value: object, formats: list[str], message: str
) -> None:
    compiled = tuple(DateFormat.compile(f) for f in formats)
    with pytest.raises(Unconvertible, match=message):
        parse_date(value, compiled, past=True, today=TODAY)


@pytest.mark.parametrize("text", ["MM/YYYY", "YYYY", "DD.MM", "whenever"])
def test_a_date_format_needs_year_month_and_day(text: str) -> None:
    with pytest.raises(ValueError, match="needs a year"):
        DateFormat.compile(text)


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        (145000, None, Decimal(145000)),
        (52.5, None, Decimal("52.5")),
        ("145000.50", None, Decimal("145000.50")),
        ("145,000.50", "en_US", Decimal("145000.50")),
        ("145.000,50", "de_DE", Decimal("145000.50")),
        ("145\u202f000,50", "fr_FR", Decimal("145000.50")),
        ("1'450.25", "de_CH", Decimal("1450.25")),
        ("1,45,000", "en_IN", Decimal(145000)),
    ],
)
def test_amounts_are_read_as_numbers_or_in_the_declared_locale(
    value: object, locale: str | None, expected: Decimal
) -> None:
    assert parse_amount(value, locale) == expected


@pytest.mark.parametrize(
    ("value", "locale", "message"),
    [
        ("1,234.56", "de_DE", "not a number as written in the locale de_DE"),
        ("145,000", None, "a formatted amount needs a locale"),
        ("lots", "en_US", "not a number"),
        (True, None, "must be a number"),
        (float("nan"), None, "finite"),
        ([1], None, "must be a number"),
    ],
)
def test_amounts_that_could_be_misread_are_refused(
    value: object, locale: str | None, message: str
) -> None:
    with pytest.raises(Unconvertible, match=message):
        parse_amount(value, locale)


@pytest.mark.parametrize(
    ("value", "expected"), [("USD", "USD"), (" eur ", "EUR"), ("jpy", "JPY"), ("CHF", "CHF")]
)
def test_currencies_are_iso_4217_codes(value: str, expected: str) -> None:
    assert currency_code(value) == expected


@pytest.mark.parametrize("value", ["US$", "$", "EURO", "XYZ", "", None, 840])
def test_currency_symbols_and_unknown_codes_are_refused(value: object) -> None:
    with pytest.raises(Unconvertible, match="ISO 4217"):
        currency_code(value)


@pytest.mark.parametrize(
    ("amount", "period", "target", "hours", "expected"),
    [
        ("12000", "monthly", "annual", None, "144000"),
        ("144000", "annual", "monthly", None, "12000"),
        ("25", "hourly", "annual", "2080", "52000"),
        ("52000", "annual", "hourly", "2080", "25"),
        ("4000", "monthly", "hourly", "1950", "24.615384615384615384615"),
        ("100", "annual", "annual", None, "100"),
    ],
)
def test_pay_converts_between_periods(
    amount: str, period: str, target: str, hours: str | None, expected: str
) -> None:
    converted = convert_pay(
        Decimal(amount), period, target, hours_per_year=Decimal(hours) if hours else None
    )
    assert converted.quantize(Decimal("0.0001")) == Decimal(expected).quantize(Decimal("0.0001"))


def test_hourly_pay_is_never_converted_without_declared_hours() -> None:
    with pytest.raises(Unconvertible, match="hours_per_year"):
        convert_pay(Decimal(25), "hourly", "annual", hours_per_year=None)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("12083.335", "USD", 12083.34),
        ("145000.00", "USD", 145000),
        ("333333.3333", "JPY", 333333),
        ("1234.5675", "BHD", 1234.568),
        ("0.005", "EUR", 0.01),
    ],
)
def test_money_is_rounded_to_the_currency_minor_unit(
    amount: str, currency: str, expected: float
) -> None:
    assert money(Decimal(amount), currency) == expected


@pytest.mark.parametrize(
    ("text", "case", "expected"),
    [
        ("ADA LOVELACE", "title", "Ada Lovelace"),
        ("ada lovelace", "title", "Ada Lovelace"),
        ("Ada McDonald", "title", "Ada McDonald"),
        ("Ana@Example.COM", "lower", "ana@example.com"),
        ("us", "upper", "US"),
        ("MiXeD", "preserve", "MiXeD"),
    ],
)
def test_case_rules(text: str, case: str, expected: str) -> None:
    assert apply_case(text, case) == expected
