"""Profiles: the shipped ones map their samples; a bad one is refused naming the file,
the line and the key; a mapped payload keeps where each value came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdm.flow.map import map_record
from mdm.flow.normalise import normalise
from mdm.mapping.load import SHIPPED_PROFILES, ProfileError, load_sources, parse_profile
from mdm.mapping.paths import BadPath, compile_path
from mdm.model.errors import InvalidRecord
from mdm.model.record import IncomingRecord

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "samples").glob("*.json"))
SOURCES = load_sources([SHIPPED_PROFILES])


def test_there_are_samples_for_every_shipped_profile() -> None:
    shipped = {p.stem for p in SHIPPED_PROFILES.glob("*.toml")}
    sampled = {json.loads(p.read_text())["source"] for p in SAMPLES}
    assert shipped == {"greenhouse", "workday", "salesforce"}
    assert shipped <= sampled


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_every_shipped_sample_maps_with_no_failure_and_no_warning(sample: Path) -> None:
    envelope = json.loads(sample.read_text())
    source = SOURCES.get(envelope["source"])
    assert source is not None
    mapped = map_record(envelope["data"], source.profile)
    incoming = IncomingRecord(envelope["source"], envelope["source_id"], envelope["data"])
    record = normalise(incoming, blind_index_key="k", mapped=mapped)
    assert record.warnings == ()
    assert record.attributes["given_name"] and record.attributes["family_name"]


def test_the_greenhouse_sample_keeps_source_values_next_to_canonical_ones() -> None:
    envelope = json.loads((SAMPLES[0].parent / "greenhouse_candidate.json").read_text())
    mapped = map_record(envelope["data"], SOURCES.get("greenhouse").profile)  # type: ignore[union-attr]
    assert mapped.values["status"] == "offer"
    assert mapped.notes["values"]["status"] == {
        "value": "offer",
        "source_value": "active",
        "by": "Offer",
    }
    assert mapped.notes["values"]["department"]["source_value"] == "Eng - Platform"
    assert mapped.values["compensation"] == {
        "amount": 145000,
        "currency": "USD",
        "period": "annual",
    }
    assert mapped.where("emails", 0) == "data.email_addresses.1.value"  # personal first


def test_workday_hourly_pay_is_annualised_on_the_declared_hours() -> None:
    envelope = json.loads((SAMPLES[0].parent / "workday_worker.json").read_text())
    data = {**envelope["data"], "Total_Base_Pay": "31.25", "Frequency": "Hourly"}
    mapped = map_record(data, SOURCES.get("workday").profile)  # type: ignore[union-attr]
    assert mapped.values["compensation"] == {"amount": 65000, "currency": "USD", "period": "annual"}
    assert mapped.notes["values"]["compensation"]["source_value"]["period"] == "Hourly"


@pytest.mark.parametrize(
    ("leave_type", "expected"), [("Paid", "on_leave"), ("Unpaid", "on_leave"), ("Garden", None)]
)
def test_an_enum_can_depend_on_a_second_field(leave_type: str, expected: str | None) -> None:
    envelope = json.loads((SAMPLES[0].parent / "workday_worker.json").read_text())
    data = {**envelope["data"], "Worker_Status": "On Leave", "Leave_Type": leave_type}
    profile = SOURCES.get("workday").profile  # type: ignore[union-attr]
    if expected is None:
        with pytest.raises(InvalidRecord) as info:
            map_record(data, profile)
        assert [e.field for e in info.value.errors] == ["data.Worker_Status"]
    else:
        assert map_record(data, profile).values["status"] == expected


def test_a_monthly_salary_of_ten_million_is_flagged() -> None:
    envelope = json.loads((SAMPLES[0].parent / "workday_worker.json").read_text())
    data = {**envelope["data"], "Total_Base_Pay": "10,000,000", "Frequency": "Monthly"}
    with pytest.raises(InvalidRecord) as info:
        map_record(data, SOURCES.get("workday").profile)  # type: ignore[union-attr]
    (issue,) = info.value.errors
    assert issue.field == "data.Total_Base_Pay"
    assert "outside the plausible range" in issue.message
    assert issue.value is None  # pay is sensitive: not echoed


@pytest.mark.parametrize(
    ("amount", "currency", "frequency", "refused"),
    [
        ("0", "USD", "Annual", True),
        ("0", "VND", "Annual", True),
        ("150,000,000", "VND", "Annual", False),
        ("6,000,000", "USD", "Annual", True),
        ("6,000,000", "JPY", "Annual", False),
        ("400,000", "USD", "Monthly", False),
        ("15", "USD", "Hourly", False),
    ],
)
def test_pay_ranges_are_per_currency(
    amount: str, currency: str, frequency: str, refused: bool
) -> None:
    envelope = json.loads((SAMPLES[0].parent / "workday_worker.json").read_text())
    data = {
        **envelope["data"],
        "Total_Base_Pay": amount,
        "Currency": currency,
        "Frequency": frequency,
    }
    profile = SOURCES.get("workday").profile  # type: ignore[union-attr]
    if refused:
        with pytest.raises(InvalidRecord, match="not valid"):
            map_record(data, profile)
    else:
        assert map_record(data, profile).values["compensation"]["currency"] == currency


def test_a_cross_field_rule_names_the_later_field() -> None:
    envelope = json.loads((SAMPLES[0].parent / "workday_worker.json").read_text())
    data = {**envelope["data"], "Hire_Date": "01/01/1980"}
    with pytest.raises(InvalidRecord) as info:
        map_record(data, SOURCES.get("workday").profile)  # type: ignore[union-attr]
    assert [(e.field, e.message) for e in info.value.errors] == [
        ("data.Hire_Date", "the hire date is not after the birth date")
    ]


HEAD = '[source]\nkey = "acme"\nkind = "ats"\n'


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            '[fields.given_name]\npath = "first"\nrequird = true\n',
            6,
            "fields.given_name.requird: unknown key",
        ),
        ('[fields.given_nam]\npath = "first"\n', 4, "'given_nam' is not a canonical field"),
        ('[fields.given_name]\npath = "a..b"\n', 5, "fields.given_name.path: empty key"),
        ('[fields.birth_date]\npath = "dob"\nformat = "MM/YYYY"\n', 6, "needs a year"),
        ('[fields.birth_date]\npath = "dob"\ntype = "string"\n', 6, "birth_date is a date field"),
        ('[fields.status]\npath = "s"\nvalues = { a = "candidat" }\n', 6, "not a lifecycle status"),
        (
            '[fields.compensation]\namount = "pay"\ncurrency = "cur"\n',
            4,
            "period path or a period_default",
        ),
        (
            '[fields.compensation]\namount = "p"\ncurrency_default = "usd$"\n'
            'period_default = "annual"\n',
            6,
            "ISO 4217",
        ),
        (
            '[fields.compensation]\namount = "p"\ncurrency = "c"\nperiod = "f"\nlocale = "xx_YY"\n',
            8,
            "unknown locale",
        ),
        (
            '[fields.job_title]\npath = "t"\n\n[[rules]]\ncheck = "before"\n'
            'fields = ["birth_date", "job_title"]\n',
            9,
            "job_title is not a date field",
        ),
        ('[fields.given_name\npath = "x"\n', 4, "not valid TOML"),
    ],
)
def test_a_bad_profile_is_refused_naming_file_line_and_key(
    body: str, line: int, message: str
) -> None:
    with pytest.raises(ProfileError) as info:
        parse_profile(HEAD + body, "acme.toml")
    (fault,) = info.value.faults
    assert fault.startswith(f"acme.toml:{line}: "), fault
    assert message in fault


def test_every_fault_of_a_profile_is_reported_at_once() -> None:
    body = '[fields.given_nam]\npath = "x"\n[fields.birth_date]\npath = "d"\nformat = "YY"\n'
    with pytest.raises(ProfileError) as info:
        parse_profile(HEAD + body, "acme.toml")
    assert [f.split(":")[1] for f in info.value.faults] == ["4", "8"]


def test_a_profile_directory_can_replace_a_default_source(tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text(
        '[source]\nkey = "crm"\nkind = "crm"\n[fields.family_name]\npath = "LastName"\n'
    )
    sources = load_sources([SHIPPED_PROFILES, tmp_path])
    assert sources.get("crm").profile.origin == str(tmp_path / "crm.toml")  # type: ignore[union-attr]
    assert sources.get("ats").profile.name == "canonical"  # type: ignore[union-attr]


def test_two_files_defining_one_source_are_refused(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.toml").write_text(
            '[source]\nkey = "acme"\nkind = "crm"\n[fields.family_name]\npath = "x"\n'
        )
    with pytest.raises(ProfileError, match="also defined in"):
        load_sources([tmp_path])


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        ("a.b", {"a": {"b": 1}}, [("data.a.b", 1)]),
        ("a[1]", {"a": [1, 2]}, [("data.a.1", 2)]),
        ("a[-1]", {"a": [1, 2]}, [("data.a.1", 2)]),
        ("a[5]", {"a": [1, 2]}, []),
        (
            "a[*].v",
            {"a": [{"v": 1}, {"w": 2}, {"v": None}, {"v": 3}]},
            [("data.a.0.v", 1), ("data.a.3.v", 3)],
        ),
        ("a[t=home].v", {"a": [{"t": "work", "v": 1}, {"t": "home", "v": 2}]}, [("data.a.1.v", 2)]),
        ("a[ok=true].v", {"a": [{"ok": True, "v": 1}]}, [("data.a.0.v", 1)]),
        ("a.b", {"a": "text"}, []),
        ("a.b", {"a": [{"b": 1}]}, []),
        ("Email_-_Work", {"Email_-_Work": "x@y.z"}, [("data.Email_-_Work", "x@y.z")]),
    ],
)
def test_paths_find_values_and_their_locations(path: str, data: Any, expected: list[Any]) -> None:
    assert compile_path(path).find(data) == expected


@pytest.mark.parametrize("path", ["", "a.", ".a", "a..b", "a[0", "a]", "a b[x"])
def test_bad_paths_are_refused(path: str) -> None:
    with pytest.raises(BadPath):
        compile_path(path)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
PAYLOAD_KEYS = st.sampled_from(
    ["first_name", "last_name", "Legal_Name", "Hire_Date", "Total_Base_Pay", "Frequency",
     "Worker_Status", "email_addresses", "applications", "keyed_custom_fields", "FirstName",
     "LastName", "Email", "Birthdate", "given_name", "compensation", "emails"]
)  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    source=st.sampled_from(["greenhouse", "workday", "salesforce", "crm"]),
    data=st.dictionaries(PAYLOAD_KEYS | st.text(max_size=8), JSON, max_size=8),
)
def test_any_payload_maps_or_is_refused_with_named_fields(source: str, data: Any) -> None:
    profile = SOURCES.get(source).profile  # type: ignore[union-attr]
    try:
        mapped = map_record(data, profile)
    except InvalidRecord as exc:
        assert exc.errors and all(e.field.startswith("data") for e in exc.errors)
        return
    for name, value in mapped.values.items():
        if isinstance(value, str):
            assert isinstance(mapped.where(name), str)
