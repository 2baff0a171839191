"""Survivorship as scenario tables: given these source records, expect this golden record,
this lineage and these conflicts (in the spirit of HAPI FHIR MDM's link-state tables)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdm.flow.survivorship import (
    DEFAULT_RULES,
    Choice,
    FieldRule,
    RecordView,
    Strategy,
    build_golden,
)
from mdm.mapping.load import ProfileError, load_rules

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USD = "USD"


def pay(amount: float, currency: str = USD, period: str = "annual") -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "period": period}


@dataclass(frozen=True)
class Scenario:
    name: str
    # (source, source_id, day, attributes); the source key is its kind unless it is
    # "legacy", a source no longer configured (no kind).
    records: list[tuple[str, str, int, dict[str, Any]]]
    golden: dict[str, Any]
    # field -> (source_id it came from, rule)
    origin: dict[str, tuple[str, str]] = field(default_factory=dict)
    # (field, kept source_id, other source_id)
    conflicts: set[tuple[str, str, str]] = field(default_factory=set)
    choices: dict[str, Choice] = field(default_factory=dict)


SCENARIOS = [
    Scenario(
        "one crm record is the golden record",
        [("crm", "c1", 0, {"given_name": "Ana", "job_title": "Buyer"})],
        {"given_name": "Ana", "job_title": "Buyer"},
        {"given_name": ("c1", "source_priority"), "job_title": ("c1", "source_priority_fallback")},
    ),
    Scenario(
        "the HRIS legal name wins over a newer CRM spelling",
        [("hris", "h1", 0, {"given_name": "Ana María"}), ("crm", "c1", 9, {"given_name": "Ana"})],
        {"given_name": "Ana María"},
        {"given_name": ("h1", "source_priority")},
    ),
    Scenario(
        "without an HRIS record the ATS name wins over the CRM",
        [("crm", "c1", 9, {"family_name": "Garcia"}), ("ats", "a1", 0, {"family_name": "García"})],
        {"family_name": "García"},
        {"family_name": ("a1", "source_priority")},
    ),
    Scenario(
        "within the owning kind the most recent record wins",
        [("hris", "h1", 0, {"job_title": "Engineer"}), ("hris", "h2", 3, {"job_title": "Lead"})],
        {"job_title": "Lead"},
        {"job_title": ("h2", "source_priority")},
    ),
    Scenario(
        "a tie on time is broken by source id, never by arrival",
        [("hris", "h1", 2, {"job_title": "Engineer"}), ("hris", "h2", 2, {"job_title": "Lead"})],
        {"job_title": "Lead"},
        {"job_title": ("h2", "source_priority")},
    ),
    Scenario(
        "a field the first owner lacks comes from the next owner",
        [("hris", "h1", 5, {"given_name": "Li"}), ("ats", "a1", 0, {"job_title": "Nurse"})],
        {"given_name": "Li", "job_title": "Nurse"},
        {"job_title": ("a1", "source_priority")},
    ),
    Scenario(
        "a field no owner holds falls back to the most recent other source",
        [
            ("crm", "c1", 1, {"department": "Sales"}),
            ("crm", "c2", 4, {"department": "Ops"}),
            ("ats", "a1", 9, {"given_name": "Li"}),
        ],
        {"department": "Ops"},
        {"department": ("c2", "source_priority_fallback")},
    ),
    Scenario(
        "status is the most recent, whatever the source",
        [("hris", "h1", 0, {"status": "employee"}), ("crm", "c1", 3, {"status": "candidate"})],
        {"status": "candidate"},
        {"status": ("c1", "most_recent")},
    ),
    Scenario(
        "country is the most recent",
        [("crm", "c1", 5, {"country": "ES"}), ("hris", "h1", 1, {"country": "US"})],
        {"country": "ES"},
        {"country": ("c1", "most_recent")},
    ),
    Scenario(
        "emails are the union; the primary is the HRIS's, the rest newest first",
        [
            ("crm", "c1", 9, {"emails": ["ana@home.es"]}),
            ("hris", "h1", 1, {"emails": ["ana@corp.com"]}),
            ("ats", "a1", 5, {"emails": ["ana.g@gmail.com", "ana@home.es"]}),
        ],
        {"emails": ["ana@corp.com", "ana@home.es", "ana.g@gmail.com"]},
    ),
    Scenario(
        "a value sent by two sources appears once",
        [
            ("crm", "c1", 1, {"phones": ["+34612345678"]}),
            ("ats", "a1", 2, {"phones": ["+34612345678", "+34911111111"]}),
        ],
        {"phones": ["+34612345678", "+34911111111"]},
    ),
    Scenario(
        "without an owner's value the primary email is the most recent",
        [
            ("legacy", "l1", 1, {"emails": ["a@old.com"]}),
            ("legacy", "l2", 2, {"emails": ["a@new.com"]}),
        ],
        {"emails": ["a@new.com", "a@old.com"]},
    ),
    Scenario(
        "the birth date comes from the HRIS before the ATS",
        [
            ("ats", "a1", 9, {"birth_date": "1990-04-05"}),
            ("hris", "h1", 0, {"birth_date": "1990-05-04"}),
        ],
        {"birth_date": "1990-05-04"},
        {"birth_date": ("h1", "source_priority")},
    ),
    Scenario(
        "a CRM birth date is used only when no owner has one",
        [("crm", "c1", 0, {"birth_date": "1990-04-05"}), ("ats", "a1", 1, {"given_name": "Li"})],
        {"birth_date": "1990-04-05"},
        {"birth_date": ("c1", "source_priority_fallback")},
    ),
    Scenario(
        "the national id and employee id are the HRIS's",
        [
            ("hris", "h1", 0, {"national_id": "123456789", "employee_id": "E1"}),
            ("ats", "a1", 5, {"national_id": "987654321", "employee_id": "X9"}),
        ],
        {"national_id": "123456789", "employee_id": "E1"},
        {"national_id": ("h1", "source_priority"), "employee_id": ("h1", "source_priority")},
    ),
    Scenario(
        "the first hire date stays; a later different one is a conflict",
        [
            ("hris", "h1", 0, {"hire_date": "2020-01-06"}),
            ("hris", "h2", 5, {"hire_date": "2021-03-01"}),
        ],
        {"hire_date": "2020-01-06"},
        {"hire_date": ("h1", "first_seen")},
        {("hire_date", "h1", "h2")},
    ),
    Scenario(
        "an ATS hire date set first is not overwritten by the HRIS",
        [
            ("ats", "a1", 0, {"hire_date": "2020-01-06"}),
            ("hris", "h1", 5, {"hire_date": "2020-01-13"}),
        ],
        {"hire_date": "2020-01-06"},
        {"hire_date": ("a1", "first_seen")},
        {("hire_date", "a1", "h1")},
    ),
    Scenario(
        "the same hire date twice is no conflict",
        [
            ("ats", "a1", 0, {"hire_date": "2020-01-06"}),
            ("hris", "h1", 5, {"hire_date": "2020-01-06"}),
        ],
        {"hire_date": "2020-01-06"},
    ),
    Scenario(
        "pay within 2% of the ATS offer is no conflict; the offer stays",
        [
            ("ats", "a1", 0, {"compensation": pay(100000)}),
            ("hris", "h1", 5, {"compensation": pay(101500)}),
        ],
        {"compensation": pay(100000)},
        {"compensation": ("a1", "source_priority")},
    ),
    Scenario(
        "pay more than 2% off the ATS offer is a conflict, not applied",
        [
            ("ats", "a1", 0, {"compensation": pay(100000)}),
            ("hris", "h1", 5, {"compensation": pay(110000)}),
        ],
        {"compensation": pay(100000)},
        {"compensation": ("a1", "source_priority")},
        {("compensation", "a1", "h1")},
    ),
    Scenario(
        "pay in another currency is a conflict: it cannot be compared without a guess",
        [
            ("ats", "a1", 0, {"compensation": pay(100000)}),
            ("hris", "h1", 5, {"compensation": pay(100000, "EUR")}),
        ],
        {"compensation": pay(100000)},
        conflicts={("compensation", "a1", "h1")},
    ),
    Scenario(
        "pay for another period is a conflict",
        [
            ("ats", "a1", 0, {"compensation": pay(120000)}),
            ("hris", "h1", 5, {"compensation": pay(10000, period="monthly")}),
        ],
        {"compensation": pay(120000)},
        conflicts={("compensation", "a1", "h1")},
    ),
    Scenario(
        "a revised offer replaces the first one without a conflict",
        [
            ("ats", "a1", 0, {"compensation": pay(100000)}),
            ("ats", "a2", 5, {"compensation": pay(115000)}),
        ],
        {"compensation": pay(115000)},
        {"compensation": ("a2", "source_priority")},
    ),
    Scenario(
        "without an offer the HRIS pay is the golden pay",
        [("hris", "h1", 0, {"compensation": pay(90000)}), ("crm", "c1", 2, {"given_name": "Li"})],
        {"compensation": pay(90000)},
        {"compensation": ("h1", "source_priority_fallback")},
    ),
    Scenario(
        "a steward's choice wins while its record holds the value",
        [
            ("ats", "a1", 0, {"compensation": pay(100000)}),
            ("hris", "h1", 5, {"compensation": pay(110000)}),
        ],
        {"compensation": pay(110000)},
        {"compensation": ("h1", "steward_choice")},
        choices={"compensation": Choice("hris", "h1", pay(110000))},
    ),
    Scenario(
        "a choice whose record changed its value no longer applies",
        [
            ("ats", "a1", 0, {"compensation": pay(100000)}),
            ("hris", "h1", 5, {"compensation": pay(130000)}),
        ],
        {"compensation": pay(100000)},
        {"compensation": ("a1", "source_priority")},
        {("compensation", "a1", "h1")},
        choices={"compensation": Choice("hris", "h1", pay(110000))},
    ),
    Scenario(
        "a steward keeping the offer silences the conflict's other side",
        [
            ("ats", "a1", 0, {"hire_date": "2020-01-06"}),
            ("hris", "h1", 5, {"hire_date": "2020-02-03"}),
        ],
        {"hire_date": "2020-02-03"},
        {"hire_date": ("h1", "steward_choice")},
        {("hire_date", "h1", "a1")},
        choices={"hire_date": Choice("hris", "h1", "2020-02-03")},
    ),
    Scenario(
        "interview feedback is the ATS's",
        [
            ("ats", "a1", 0, {"interview_feedback": "Strong"}),
            ("crm", "c1", 5, {"interview_feedback": "Met at a fair"}),
        ],
        {"interview_feedback": "Strong"},
        {"interview_feedback": ("a1", "source_priority")},
    ),
    Scenario(
        "a source no longer configured loses to every owner but still fills gaps",
        [
            ("legacy", "l1", 9, {"given_name": "Ann", "cost_center": "CC-1"}),
            ("crm", "c1", 0, {"given_name": "Anne"}),
        ],
        {"given_name": "Anne", "cost_center": "CC-1"},
        {
            "given_name": ("c1", "source_priority"),
            "cost_center": ("l1", "source_priority_fallback"),
        },
    ),
    Scenario(
        "empty values are missing values",
        [
            ("hris", "h1", 5, {"job_title": "", "emails": []}),
            ("ats", "a1", 0, {"job_title": "Nurse", "emails": ["a@b.co"]}),
        ],
        {"job_title": "Nurse", "emails": ["a@b.co"]},
        {"job_title": ("a1", "source_priority")},
    ),
    Scenario(
        "records merged from two persons: the union of their records decides",
        [
            ("crm", "c1", 0, {"given_name": "Bob", "emails": ["bob@x.io"]}),
            ("ats", "a1", 1, {"given_name": "Robert", "compensation": pay(80000)}),
            (
                "hris",
                "h1",
                2,
                {"given_name": "Robert", "employee_id": "E7", "compensation": pay(80500)},
            ),
        ],
        {
            "given_name": "Robert",
            "employee_id": "E7",
            "compensation": pay(80000),
            "emails": ["bob@x.io"],
        },
        {"given_name": ("h1", "source_priority")},
    ),
    Scenario(
        "a record split out takes its values with it",
        [("hris", "h1", 0, {"given_name": "Robert", "job_title": "Chef"})],
        {"given_name": "Robert", "job_title": "Chef"},
    ),
]


def _views(records: list[tuple[str, str, int, dict[str, Any]]]) -> list[RecordView]:
    return [
        RecordView(
            source,
            source_id,
            1,
            attributes,
            T0 + timedelta(days=day),
            None if source == "legacy" else source,
        )
        for source, source_id, day, attributes in records
    ]


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 25


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_survivorship_scenario(scenario: Scenario) -> None:
    result = build_golden(_views(scenario.records), DEFAULT_RULES, scenario.choices)
    for name, value in scenario.golden.items():
        assert result.attributes.get(name) == value, name
    for name, (source_id, rule) in scenario.origin.items():
        assert (result.lineage[name]["source_id"], result.lineage[name]["rule"]) == (
            source_id,
            rule,
        ), name
    conflicts = {(c.field, c.kept.source_id, c.other.source_id) for c in result.conflicts}
    assert conflicts == scenario.conflicts


def test_lineage_names_the_values_the_golden_value_won_over() -> None:
    records = [
        ("crm", "c1", 3, {"job_title": "Sales"}),
        ("ats", "a1", 1, {"job_title": "Engineer"}),
        ("hris", "h1", 0, {"job_title": "Staff Engineer"}),
    ]
    lineage = build_golden(_views(records)).lineage["job_title"]
    assert lineage["source"] == "hris" and lineage["kind"] == "hris"
    assert [(c["source_id"], c["value"]) for c in lineage["candidates"]] == [
        ("c1", "Sales"),
        ("a1", "Engineer"),
    ]
    emails = build_golden(
        _views(
            [("crm", "c1", 1, {"emails": ["a@x.io"]}), ("hris", "h1", 0, {"emails": ["b@y.io"]})]
        )
    ).lineage["emails"]
    assert emails["primary"]["value"] == "b@y.io"
    assert [v["source_id"] for v in emails["values"]] == ["h1", "c1"]


def test_the_most_frequent_strategy_counts_records_and_breaks_ties_by_recency() -> None:
    rules = {"department": FieldRule(Strategy.MOST_FREQUENT)}
    records = [
        ("crm", "c1", 0, {"department": "Sales"}),
        ("ats", "a1", 1, {"department": "Sales"}),
        ("hris", "h1", 9, {"department": "Ops"}),
    ]
    assert build_golden(_views(records), rules).attributes["department"] == "Sales"
    tie = records[1:]
    assert build_golden(_views(tie), rules).attributes["department"] == "Ops"


RECORD = st.tuples(
    st.sampled_from(["crm", "ats", "hris", "legacy"]),
    st.sampled_from(["r1", "r2", "r3", "r4", "r5"]),
    st.integers(0, 5),
    st.fixed_dictionaries(
        {},
        optional={
            "given_name": st.sampled_from(["Ana", "Anna", "Ann"]),
            "job_title": st.sampled_from(["Nurse", "Chef", ""]),
            "emails": st.lists(st.sampled_from(["a@x.io", "b@x.io", "c@x.io"]), max_size=2),
            "hire_date": st.sampled_from(["2020-01-06", "2021-03-01"]),
            "compensation": st.sampled_from([pay(100000), pay(101000), pay(120000), pay(1, "EUR")]),
            "status": st.sampled_from(["candidate", "hired"]),
        },
    ),
)


@given(
    records=st.lists(RECORD, max_size=8, unique_by=lambda r: (r[0], r[1])),
    order=st.randoms(use_true_random=False),
)
def test_the_golden_record_does_not_depend_on_the_order_of_the_records(
    records: list[tuple[str, str, int, dict[str, Any]]], order: Any
) -> None:
    shuffled = list(records)
    order.shuffle(shuffled)
    first, second = build_golden(_views(records)), build_golden(_views(shuffled))
    assert first.attributes == second.attributes
    assert first.lineage == second.lineage
    assert {c.key for c in first.conflicts} == {c.key for c in second.conflicts}


def test_rules_are_configuration(tmp_path: Path) -> None:
    file = tmp_path / "rules.toml"
    file.write_text(
        '[fields.job_title]\nstrategy = "most_recent"\n\n'
        '[fields.department]\nstrategy = "most_frequent"\n\n'
        '[fields.compensation]\nstrategy = "source_priority"\nowners = ["hris", "ats"]\n'
        "sensitive = true\ntolerance = 0.05\n"
    )
    rules = load_rules(file)
    assert rules["job_title"] == FieldRule(Strategy.MOST_RECENT)
    assert rules["compensation"].owners == ("hris", "ats")
    assert rules["given_name"] == DEFAULT_RULES["given_name"]  # the rest keep the defaults
    records = [
        ("hris", "h1", 0, {"job_title": "Chef"}),
        ("crm", "c1", 3, {"job_title": "Cook"}),
    ]
    assert build_golden(_views(records), rules).attributes["job_title"] == "Cook"
    assert build_golden(_views(records)).attributes["job_title"] == "Chef"


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ('[fields.job_title]\nstrategy = "newest"\n', "rules.toml:2: fields.job_title.strategy"),
        ('[fields.salary]\nstrategy = "most_recent"\n', "rules.toml:1: fields.salary: 'salary'"),
        ('[fields.job_title]\nstrategy = "union"\n', "rules.toml:2: fields.job_title.strategy"),
        ('[fields.job_title]\nstrategy = "most_recent"\nowner = ["hris"]\n', "rules.toml:3:"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_line(tmp_path: Path, text: str, fault: str) -> None:
    file = tmp_path / "rules.toml"
    file.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_rules(file)
    assert info.value.faults[0].replace(str(tmp_path) + "/", "").startswith(fault)
