"""Mapped sources over HTTP: the data dictionary, refusals naming every field, the
rejection store, and replays after the profile is fixed with nothing lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from mdm.services.context import Registry
from tests.conftest import ADMIN_KEY, settings_for, truncate

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples"

PROFILE = """
[source]
key = "acme"
kind = "ats"
phone_region = "GB"

[fields.given_name]
path = "first_name"
required = true

[fields.family_name]
paths = [{family_paths}]
required = true

[fields.email]
path = "email"

[fields.birth_date]
path = "dob"
formats = [{date_formats}]

[fields.job_title]
path = "title"
max_length = {title_length}

[fields.status]
path = "stage"
on_unmapped = "reject"
values = {{ "Applied" = "candidate", "Offer" = "offer"{extra_status} }}
"""
BROKEN = {
    "family_paths": '"last_name"',
    "date_formats": '"DD.MM.YYYY"',
    "title_length": 20,
    "extra_status": "",
}
# The sender renamed last_name to surname, and sends it as {"value": ...} from one system.
FIXED = {
    "family_paths": '"last_name.value", "last_name", "surname"',
    "date_formats": '"DD.MM.YYYY", "iso"',
    "title_length": 60,
    "extra_status": ', "Sabbatical" = "candidate"',
}


def _profiles(directory: Path, **values: Any) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "acme.toml").write_text(PROFILE.format(**values))
    return directory


@pytest.fixture
def make_client(database_url: str) -> Iterator[Any]:
    registries: list[Registry] = []
    clients: list[TestClient] = []

    def make(profiles_dir: Path | None = None) -> TestClient:
        registry = Registry.from_settings(settings_for(database_url, profiles_dir=profiles_dir))
        if not registries and registry.database.dialect == "postgresql":
            truncate(registry)
        registries.append(registry)
        client = TestClient(
            create_app(registry.settings, registry=registry),
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)
    for registry in registries:
        registry.close()


def good(n: int) -> dict[str, Any]:
    return {
        "first_name": "Ada",
        "last_name": f"Okafor{n}",
        "email": f"ada{n}@example.com",
        "dob": f"0{n + 1}.03.1985",
        "title": "Engineer",
        "stage": "Applied",
    }


# One payload per kind of fault the issue names, each fixable in the profile.
BAD_PAYLOADS: dict[str, tuple[dict[str, Any], str, str]] = {
    "missing required": ({"last_name": None, "surname": "Okafor"}, "data.last_name", "required"),
    "wrong type": ({"last_name": {"value": "Okafor"}}, "data.last_name", "must be a string"),
    "bad date": ({"dob": "1985-03-09"}, "data.dob", "DD.MM.YYYY"),
    "unknown enum": ({"stage": "Sabbatical"}, "data.stage", "no translation for 'Sabbatical'"),
    "over-long text": (
        {"title": "Principal Software Engineer, Platform"},
        "data.title",
        "longer than 20",
    ),
}


def test_each_kind_of_bad_payload_is_refused_kept_and_replayed_after_the_profile_fix(
    make_client: Any, tmp_path: Path
) -> None:
    broken = make_client(_profiles(tmp_path / "broken", **BROKEN))
    refused: dict[str, str] = {}
    for n, (kind, (change, field, message)) in enumerate(BAD_PAYLOADS.items()):
        data = {**good(n), **change}
        r = broken.post("/v1/records", json={"source": "acme", "source_id": kind, "data": data})
        assert r.status_code == 422, (kind, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert [e["field"] for e in body["errors"]] == [field], (kind, body)
        assert message in body["errors"][0]["message"], (kind, body)
        refused[kind] = body["rejection_id"]

    listed = broken.get("/v1/rejections", params={"source": "acme", "limit": 500}).json()
    assert {i["id"] for i in listed["items"]} == set(refused.values())
    stored = broken.get(f"/v1/rejections/{refused['bad date']}").json()
    assert stored["status"] == "open"
    assert stored["raw"]["data"]["dob"] == "1985-03-09"  # kept exactly as posted
    by_field = broken.get("/v1/rejections", params={"field": "birth_date"}).json()
    assert [i["id"] for i in by_field["items"]] == [refused["bad date"]]

    # Still broken: a replay fails again, keeps the rejection open and counts the attempt.
    again = broken.post(f"/v1/rejections/{refused['unknown enum']}/replay")
    assert again.status_code == 422
    assert broken.get(f"/v1/rejections/{refused['unknown enum']}").json()["attempts"] == 2

    fixed = make_client(_profiles(tmp_path / "fixed", **FIXED))
    for kind, rejection_id in refused.items():
        r = fixed.post(f"/v1/rejections/{rejection_id}/replay")
        assert r.status_code == 200, (kind, r.text)
        body = r.json()
        assert body["rejection"]["status"] == "replayed"
        assert body["result"]["decision"] in ("created", "review"), (kind, body["result"])
        assert body["rejection"]["person_id"] == body["result"]["person_id"]
        person = fixed.get(f"/v1/persons/{body['result']['person_id']}").json()
        assert [(x["source"], x["source_id"]) for x in person["records"]] == [("acme", kind)]

    # Replaying again ingests nothing twice.
    twice = fixed.post(f"/v1/rejections/{refused['bad date']}/replay")
    assert twice.status_code == 200 and twice.json()["result"] is None
    assert fixed.get("/v1/rejections", params={"status": "open"}).json()["items"] == []
    replayed = fixed.get("/v1/rejections", params={"status": "replayed"}).json()["items"]
    assert len(replayed) == len(BAD_PAYLOADS)
    # Nothing lost in the round trip: every refused record is now a stored record.
    for n, kind in enumerate(BAD_PAYLOADS):
        found = fixed.get("/v1/persons", params={"email": f"ada{n}@example.com"}).json()
        assert [r["source_id"] for r in found["items"][0]["records"]] == [kind]


def test_one_payload_with_every_fault_names_every_field(make_client: Any, tmp_path: Path) -> None:
    client = make_client(_profiles(tmp_path / "broken", **BROKEN))
    data = {**good(0), "first_name": None, "last_name": 42, "dob": "31.02.1990",
            "stage": "Sabbatical", "title": "x" * 21}  # fmt: skip
    r = client.post("/v1/records", json={"source": "acme", "source_id": "all", "data": data})
    assert r.status_code == 422
    errors = {e["field"]: e for e in r.json()["errors"]}
    assert set(errors) == {"data.first_name", "data.last_name", "data.dob", "data.stage",
                           "data.title"}  # fmt: skip
    assert errors["data.last_name"]["pointer"] == "/data/last_name"
    assert errors["data.last_name"]["value"] == 42
    assert errors["data.dob"]["canonical"] == "birth_date"
    assert "no such day: 1990-02-31" in errors["data.dob"]["message"]
    # The birth date is sensitive: it is never echoed back.
    assert "value" not in errors["data.dob"]


def test_a_record_from_an_unknown_source_is_kept_and_replays_once_the_source_exists(
    make_client: Any, tmp_path: Path
) -> None:
    before = make_client()
    r = before.post("/v1/records", json={"source": "acme", "source_id": "1", "data": good(1)})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "source"
    after = make_client(_profiles(tmp_path / "fixed", **FIXED))
    replay = after.post(f"/v1/rejections/{r.json()['rejection_id']}/replay")
    assert replay.status_code == 200
    assert replay.json()["result"]["decision"] == "created"


def test_shipped_samples_ingest_and_keep_the_source_values(make_client: Any) -> None:
    client = make_client()
    for name in ("greenhouse_candidate", "workday_worker", "salesforce_contact"):
        envelope = json.loads((SAMPLES / f"{name}.json").read_text())
        r = client.post("/v1/records", json=envelope)
        assert r.status_code in (200, 201), r.text
        assert r.json()["warnings"] == []
    # The three are one human: the Workday worker's email and phone meet the others'.
    greenhouse = client.get("/v1/persons", params={"email": "jnunez85@gmail.com"}).json()
    assert len(greenhouse["items"]) == 1
    person = greenhouse["items"][0]
    assert {r["source"] for r in person["records"]} == {"greenhouse", "workday", "salesforce"}
    assert person["attributes"]["status"] in ("offer", "employee")
    greenhouse_record = next(r for r in person["records"] if r["source"] == "greenhouse")
    assert greenhouse_record["mapping"]["values"]["status"] == {
        "value": "offer",
        "source_value": "active",
        "by": "Offer",
    }


def test_truncation_and_unmapped_values_are_warnings_and_counted(
    make_client: Any,
) -> None:
    client = make_client()
    envelope = json.loads((SAMPLES / "greenhouse_candidate.json").read_text())
    custom = envelope["data"]["keyed_custom_fields"]
    custom["interview_notes"]["value"] = "Strong hire. " * 60
    custom["department"]["value"] = "Eng - Robotics"
    r = client.post("/v1/records", json=envelope)
    assert r.status_code == 201
    warnings = {w["canonical"]: w for w in r.json()["warnings"]}
    assert "truncated from 779 to 500 characters" in warnings["interview_feedback"]["message"]
    assert warnings["interview_feedback"]["field"] == (
        "data.keyed_custom_fields.interview_notes.value"
    )
    assert "no translation for 'Eng - Robotics'" in warnings["department"]["message"]
    person = client.get(f"/v1/persons/{r.json()['person_id']}").json()
    assert len(person["attributes"]["interview_feedback"]) == 500
    assert "department" not in person["attributes"]
    counters = {s["key"]: s["counters"] for s in client.get("/v1/sources").json()["items"]}
    assert counters["greenhouse"]["records"] == 1
    assert counters["greenhouse"]["truncated"] == {"interview_feedback": 1}
    assert counters["greenhouse"]["unmapped"] == {"department": 1}


def test_the_data_dictionary_is_published(make_client: Any) -> None:
    client = make_client()
    items = client.get("/v1/sources").json()["items"]
    kinds = {s["key"]: s["kind"] for s in items}
    assert kinds == {"crm": "crm", "ats": "ats", "hris": "hris", "greenhouse": "ats",
                     "workday": "hris", "salesforce": "crm"}  # fmt: skip
    mapping = client.get("/v1/sources/workday/mapping").json()
    fields = {f["field"]: f for f in mapping["fields"]}
    assert fields["hire_date"]["paths"] == ["Hire_Date"]
    assert fields["hire_date"]["format"] == ["MM/DD/YYYY"]
    assert fields["hire_date"]["required"] is True
    assert fields["national_id"]["sensitive"] is True
    assert fields["compensation"]["compensation"]["convert_to"] == "annual"
    assert fields["status"]["values"]["on leave"]["by"] == "Leave_Type"
    assert all(f["rule"] and f["survivorship"] for f in mapping["fields"])
    canonical = client.get("/v1/sources/crm/mapping").json()
    assert {f["field"] for f in canonical["fields"]} >= {"given_name", "emails", "compensation"}
    missing = client.get("/v1/sources/nope/mapping")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
