"""Tests for the synthetic CRM / ATS / HRIS record generator (fixtures.generator)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from functools import lru_cache
from pathlib import Path

import pytest

from fixtures.generator import (
    SOURCES,
    GeneratedRecord,
    generate,
    generate_with_stats,
    has_usable_identity,
    record_to_json,
    write_jsonl,
)

ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "fixtures.generator")
IDENTITY_KEYS = ("email", "emails", "phone", "phones", "birth_date", "employee_id", "national_id")
CANONICAL_KEYS = {
    "given_name",
    "middle_name",
    "family_name",
    "email",
    "emails",
    "phone",
    "phones",
    "country",
    "birth_date",
    "national_id",
    "employee_id",
    "hire_date",
    "department",
    "cost_center",
    "job_title",
    "compensation",
    "status",
    "interview_feedback",
}
STATUSES = {"candidate", "offer", "hired", "employee", "on_leave", "terminated", "rehired"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@lru_cache(maxsize=4)
def _records(n: int, seed: int = 42) -> tuple[GeneratedRecord, ...]:
    return tuple(generate(n, seed=seed))


def _norm(value: object) -> str:
    return str(value).strip().lower()


def _emails(data: dict[str, object]) -> list[str]:
    if "email" in data:
        return [str(data["email"])]
    values = data.get("emails", [])
    assert isinstance(values, list)
    return [str(v) for v in values]


def _phones(data: dict[str, object]) -> list[str]:
    if "phone" in data:
        return [str(data["phone"])]
    values = data.get("phones", [])
    assert isinstance(values, list)
    return [str(v) for v in values]


def _lines(records: list[GeneratedRecord] | tuple[GeneratedRecord, ...]) -> str:
    buf = io.StringIO()
    write_jsonl(buf, records)
    return buf.getvalue()


# --------------------------------------------------------------------------- interface


def test_exact_count_and_shape() -> None:
    records = list(generate(1234, seed=3))
    assert len(records) == 1234
    for rec in records:
        assert isinstance(rec, GeneratedRecord)
        assert rec.source in SOURCES
        assert rec.source_id.startswith(rec.source + "-")
        assert TIMESTAMP.match(rec.updated_at)
        assert "2019-01-01" <= rec.updated_at[:10] <= "2026-12-31"
        assert rec.truth and rec.truth not in rec.source_id
        assert set(rec.data) <= CANONICAL_KEYS, set(rec.data) - CANONICAL_KEYS
        assert all(v is not None for v in rec.data.values())
        assert not ("email" in rec.data and "emails" in rec.data)
        assert not ("phone" in rec.data and "phones" in rec.data)
        if "emails" in rec.data:
            assert isinstance(rec.data["emails"], list) and len(rec.data["emails"]) >= 2
        if "status" in rec.data:
            assert rec.data["status"] in STATUSES
        if rec.source != "hris":
            assert "employee_id" not in rec.data
        if rec.source != "ats":
            assert "interview_feedback" not in rec.data
        if "compensation" in rec.data:
            comp = rec.data["compensation"]
            assert isinstance(comp, dict)
            assert set(comp) == {"amount", "currency", "period"}
            assert isinstance(comp["amount"], (int, float)) and comp["amount"] > 0
            assert comp["period"] in {"annual", "monthly", "hourly"}
            assert re.fullmatch(r"[A-Z]{3}", str(comp["currency"]))
        if "country" in rec.data:
            assert re.fullmatch(r"[A-Z]{2}", str(rec.data["country"]))


def test_zero_and_negative() -> None:
    assert list(generate(0)) == []
    with pytest.raises(ValueError):
        list(generate(-1))


def test_hris_records_have_employee_fields() -> None:
    hris = [r for r in _records(20_000) if r.source == "hris"]
    assert hris
    for rec in hris:
        assert re.fullmatch(r"E\d{6,}", str(rec.data["employee_id"]))
        assert "hire_date" in rec.data and "department" in rec.data and "job_title" in rec.data
        assert rec.data["status"] in {"employee", "on_leave", "terminated", "rehired"}


# --------------------------------------------------------------------------- determinism


def test_same_seed_is_byte_identical() -> None:
    assert _lines(list(generate(3000, seed=7))) == _lines(list(generate(3000, seed=7)))


def test_different_seeds_differ() -> None:
    a = list(generate(500, seed=1))
    b = list(generate(500, seed=2))
    assert _lines(a) != _lines(b)
    assert len({r.truth for r in a} & {r.truth for r in b}) < 10
    assert [r.data.get("family_name") for r in a] != [r.data.get("family_name") for r in b]


def test_determinism_survives_hash_randomisation(tmp_path: Path) -> None:
    """Output must not depend on PYTHONHASHSEED (no hash() of str, no set ordering)."""
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"out{hash_seed}.jsonl"
        subprocess.run(
            [*CLI, "--records", "2000", "--seed", "5", "--out", str(out)],
            check=True,
            cwd=ROOT,
            env={"PYTHONHASHSEED": hash_seed, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
            capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") == 2000


# --------------------------------------------------------------------------- volumes


def test_records_per_human_ratio() -> None:
    records = _records(20_000)
    per_truth = Counter(r.truth for r in records)
    ratio = len(records) / len(per_truth)
    assert 1.45 <= ratio <= 1.8, ratio
    assert max(per_truth.values()) <= 7
    assert sum(1 for c in per_truth.values() if c >= 3) > 500
    sources = Counter(r.source for r in records)
    assert sources["crm"] > sources["hris"] and sources["ats"] > sources["hris"] > 1000


def test_hris_people_usually_have_ats_records() -> None:
    by_truth: defaultdict[str, set[str]] = defaultdict(set)
    for rec in _records(20_000):
        by_truth[rec.truth].add(rec.source)
    hris = [s for s in by_truth.values() if "hris" in s]
    assert sum("ats" in s for s in hris) / len(hris) > 0.6


def test_source_ids_unique_per_source() -> None:
    records = _records(20_000)
    for source in SOURCES:
        ids = [r.source_id for r in records if r.source == source]
        assert len(ids) == len(set(ids))


def test_employee_ids_identify_one_human() -> None:
    owner: dict[str, str] = {}
    for rec in _records(20_000):
        emp = rec.data.get("employee_id")
        if emp is not None:
            assert owner.setdefault(str(emp), rec.truth) == rec.truth


def test_national_ids_identify_one_human() -> None:
    owner: dict[str, str] = {}
    for rec in _records(20_000):
        nid = rec.data.get("national_id")
        if nid is not None:
            key = re.sub(r"[\s-]", "", str(nid))
            assert owner.setdefault(key, rec.truth) == rec.truth


# --------------------------------------------------------------------------- validity


def test_every_record_is_usable() -> None:
    for rec in _records(20_000):
        data = rec.data
        assert data.get("given_name") or data.get("family_name")
        assert any(key in data for key in IDENTITY_KEYS)
        # stricter: at least one identifier that is not a placeholder or a broken value
        assert has_usable_identity(data), rec


def test_invalid_values_are_rare_but_present() -> None:
    records = _records(20_000)
    bad_dates = 0
    for rec in records:
        value = rec.data.get("birth_date")
        if value is None:
            continue
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", str(value))
        try:
            date.fromisoformat(str(value))
        except ValueError:
            bad_dates += 1
    malformed = sum(
        1
        for rec in records
        for e in _emails(rec.data)
        if e.count("@") != 1 or "." not in e.split("@")[-1] or " " in e.strip()
    )
    assert 5 <= bad_dates <= 200
    assert 20 <= malformed <= 400


def test_birth_dates_are_plausible() -> None:
    years = [int(str(r.data["birth_date"])[:4]) for r in _records(20_000) if "birth_date" in r.data]
    assert min(years) >= 1930 and max(years) <= 2008
    crm = [r for r in _records(20_000) if r.source == "crm"]
    assert sum("birth_date" in r.data for r in crm) / len(crm) < 0.4  # many CRM lack it


def test_phones_parse_for_their_country() -> None:
    phonenumbers = pytest.importorskip("phonenumbers")
    total = valid = 0
    for rec in _records(20_000):
        region = rec.data.get("country")
        for phone in _phones(rec.data):
            total += 1
            try:
                parsed = phonenumbers.parse(phone, region)
            except phonenumbers.NumberParseException:
                continue
            valid += bool(phonenumbers.is_valid_number(parsed))
    assert total > 10_000
    assert valid / total >= 0.9, valid / total


def test_us_people_have_ssn_style_ids() -> None:
    ssn = re.compile(r"^\d{3}-?\d{2}-?\d{4}$")
    us_ids = [
        str(r.data["national_id"])
        for r in _records(20_000)
        if "national_id" in r.data and r.data.get("country") == "US"
    ]
    assert len(us_ids) > 500
    assert all(ssn.match(v) for v in us_ids)


# --------------------------------------------------------------------------- hard cases


def test_common_names_collide_across_humans() -> None:
    name_truths: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for rec in _records(20_000):
        key = (_norm(rec.data.get("given_name")), _norm(rec.data.get("family_name")))
        name_truths[key].add(rec.truth)
    groups = [truths for truths in name_truths.values() if len(truths) > 1]
    assert len(groups) >= 300
    assert max(len(t) for t in groups) >= 5


def test_same_name_and_birth_year_different_humans() -> None:
    seen: defaultdict[tuple[str, str, str], set[str]] = defaultdict(set)
    for rec in _records(20_000):
        if "birth_date" in rec.data:
            key = (
                _norm(rec.data.get("given_name")),
                _norm(rec.data.get("family_name")),
                str(rec.data["birth_date"])[:4],
            )
            seen[key].add(rec.truth)
    assert sum(1 for t in seen.values() if len(t) > 1) >= 10


def test_shared_emails_and_phones_between_humans() -> None:
    email_truths: defaultdict[str, set[str]] = defaultdict(set)
    phone_truths: defaultdict[str, set[str]] = defaultdict(set)
    for rec in _records(20_000):
        for e in _emails(rec.data):
            email_truths[_norm(e)].add(rec.truth)
        for p in _phones(rec.data):
            digits = re.sub(r"\D", "", p)
            if len(digits) >= 9:
                phone_truths[digits[-9:]].add(rec.truth)
    shared_emails = [e for e, t in email_truths.items() if len(t) > 1]
    households = [e for e in shared_emails if "family" in e or e.startswith("the") or "and" in e]
    assert len(shared_emails) >= 20
    assert len(households) >= 10
    assert "test@test.com" in shared_emails or "noemail@example.com" in shared_emails
    assert sum(1 for t in phone_truths.values() if len(t) > 1) >= 50


def test_same_human_varies_between_records() -> None:
    by_truth: defaultdict[str, list[GeneratedRecord]] = defaultdict(list)
    for rec in _records(20_000):
        by_truth[rec.truth].append(rec)
    multi = [recs for recs in by_truth.values() if len(recs) > 1]
    differing_given = sum(
        1 for recs in multi if len({_norm(r.data.get("given_name")) for r in recs}) > 1
    )
    differing_family = sum(
        1 for recs in multi if len({_norm(r.data.get("family_name")) for r in recs}) > 1
    )
    differing_email = sum(
        1 for recs in multi if len({_norm(e) for r in recs for e in _emails(r.data)}) > 1
    )
    assert differing_given >= 0.15 * len(multi)
    assert differing_family >= 0.1 * len(multi)
    assert differing_email >= 0.3 * len(multi)


def test_nicknames_typos_and_accents_occur() -> None:
    records, stats = generate_with_stats(20_000, seed=42)
    assert len(records) == 20_000
    assert 0.06 <= stats["typo"] / len(records) <= 0.10
    assert stats["nickname"] / len(records) >= 0.05
    for key in ("accents_dropped", "swapped_names", "maiden_name_used", "twins", "namesakes"):
        assert stats[key] > 0, key
    by_truth: defaultdict[str, set[str]] = defaultdict(set)
    for rec in records:
        by_truth[rec.truth].add(str(rec.data.get("given_name")))
    pairs = {frozenset(names) for names in by_truth.values() if len(names) > 1}
    flat = {n for names in pairs for n in names}
    assert any({"William", "Bill"} <= names or {"Robert", "Bob"} <= names for names in pairs) or (
        {"Bill", "Bob", "Mike", "Jim"} & flat
    )
    accented = {n for n in flat if not n.isascii()}
    assert accented  # José vs Jose etc.


def test_placeholder_values_only_in_crm() -> None:
    for rec in _records(20_000):
        if any(e in ("test@test.com", "noemail@example.com") for e in _emails(rec.data)):
            assert rec.source == "crm"


# --------------------------------------------------------------------------- output


def test_write_jsonl_roundtrip(tmp_path: Path) -> None:
    records = list(generate(300, seed=11))
    path = tmp_path / "sub" / "people.jsonl"
    assert write_jsonl(path, records) == 300
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 300
    first = json.loads(lines[0])
    assert set(first) == {"source", "source_id", "data", "updated_at", "truth"}
    assert first["source_id"] == records[0].source_id
    assert first["data"] == records[0].data
    assert first == records[0].as_dict()
    assert lines[0] == record_to_json(records[0])


def test_cli_writes_file(tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    result = subprocess.run(
        [*CLI, "--records", "250", "--seed", "9", "--out", str(out)],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "wrote 250 records" in result.stderr
    assert out.read_text(encoding="utf-8") == _lines(list(generate(250, seed=9)))


def test_sample_payloads_are_canonical() -> None:
    samples = ROOT / "fixtures" / "samples"
    for name, source in (
        ("crm_contact.json", "crm"),
        ("ats_candidate.json", "ats"),
        ("hris_employee.json", "hris"),
    ):
        payload = json.loads((samples / name).read_text(encoding="utf-8"))
        assert payload["source"] == source
        assert payload["source_id"]
        assert set(payload["data"]) <= CANONICAL_KEYS
        assert has_usable_identity(payload["data"])
