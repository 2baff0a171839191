"""The `mdm` command line, end to end on an embedded SQLite database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from mdm.cli import app
from mdm.config import get_settings
from mdm.store.tables import MatchModelRow, PersonRow, RejectionRow, SourceRecordRow

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/cli.db"
    monkeypatch.setenv("MDM_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    yield url
    get_settings.cache_clear()


def count(url: str, table: type) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = int(conn.scalar(select(func.count()).select_from(table)) or 0)
    engine.dispose()
    return n


def test_import_jsonl_reports_decisions_and_writes_rejects(database: str, tmp_path: Path) -> None:
    lines = [
        {"source_id": "c1", "given_name": "Ana", "family_name": "Ruiz", "email": "ana@x.es"},
        {"source_id": "c2", "given_name": "Ana", "family_name": "Ruiz", "email": "ANA@x.es"},
        {"source_id": "c3", "family_name": "Solo"},
    ]
    path = tmp_path / "contacts.jsonl"
    path.write_text(
        "\n".join(json.dumps(line) for line in lines) + "\nnot json\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["import", str(path), "--source", "crm"])
    assert result.exit_code == 0, result.output
    assert "created" in result.output and "linked" in result.output
    rejects = [
        json.loads(x) for x in (tmp_path / "contacts.jsonl.rejects.jsonl").read_text().splitlines()
    ]
    assert [r["line"] for r in rejects] == [3, 4]
    assert rejects[0]["errors"][0]["field"] == "data"
    assert count(database, SourceRecordRow) == 2
    assert count(database, PersonRow) == 1
    assert count(database, RejectionRow) == 1


def test_import_csv(database: str, tmp_path: Path) -> None:
    path = tmp_path / "employees.csv"
    path.write_text(
        "source_id,given_name,family_name,phone,country,birth_date\n"
        "e1,Jürgen,Müller,030 12345678,DE,1980-05-06\n"
        "e2,Juergen,Mueller,+49 30 12345678,DE,1980-05-06\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["import", str(path), "--source", "hris"])
    assert result.exit_code == 0, result.output
    assert count(database, SourceRecordRow) == 2
    assert count(database, PersonRow) == 1


def test_demo_loads_once(database: str) -> None:
    first = runner.invoke(app, ["demo", "--records", "120"])
    assert first.exit_code == 0, first.output
    loaded = count(database, SourceRecordRow)
    assert loaded >= 115
    second = runner.invoke(app, ["demo", "--records", "120"])
    assert second.exit_code == 0
    assert "nothing loaded" in second.output
    assert count(database, SourceRecordRow) == loaded


def test_serve_without_a_key_generates_one_once_and_the_app_accepts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from mdm.cli import ensure_admin_key

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MDM_ADMIN_KEY", raising=False)
    monkeypatch.setenv("MDM_DATABASE_URL", f"sqlite:///{tmp_path}/k.db")
    get_settings.cache_clear()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    try:
        settings = ensure_admin_key()
        key = (tmp_path / ".mdm-admin-key").read_text().strip()
        assert settings.admin_key == key and key.startswith("mdm_")
        assert oct((tmp_path / ".mdm-admin-key").stat().st_mode & 0o777) == "0o600"
        monkeypatch.delenv("MDM_ADMIN_KEY")
        get_settings.cache_clear()
        assert ensure_admin_key().admin_key == key  # read back, not generated again
        with TestClient(create_app()) as client:
            ok = client.get("/v1/reviews", headers={"Authorization": f"Bearer {key}"})
            bad = client.get("/v1/reviews", headers={"Authorization": "Bearer other"})
        assert ok.status_code == 200
        assert bad.status_code == 401
    finally:
        get_settings.cache_clear()


def test_train_needs_records_then_activates_a_model(database: str) -> None:
    refused = runner.invoke(app, ["train"])
    assert refused.exit_code == 1
    assert "at least 1,000 records" in refused.output
    assert runner.invoke(app, ["demo", "--records", "1100"]).exit_code == 0
    dry = runner.invoke(app, ["train", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "nothing stored" in dry.output and "email" in dry.output
    assert count(database, MatchModelRow) == 0
    trained = runner.invoke(app, ["train"])
    assert trained.exit_code == 0, trained.output
    assert "is active" in trained.output
    assert count(database, MatchModelRow) == 1


def test_evaluate_reports_precision_and_recall_from_a_labelled_file(
    database: str, tmp_path: Path
) -> None:
    lines = [
        {"source_id": "c1", "given_name": "Ana", "family_name": "Ruiz", "email": "ana@x.es"},
        {"source_id": "c2", "given_name": "Ana", "family_name": "Ruiz", "email": "ANA@x.es"},
        {"source_id": "c3", "given_name": "Ana", "family_name": "Ruiz", "email": "ar@y.es"},
    ]
    path = tmp_path / "contacts.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    assert runner.invoke(app, ["import", str(path), "--source", "crm"]).exit_code == 0
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "source_a,source_id_a,source_b,source_id_b,match\n"
        "crm,c1,crm,c2,yes\ncrm,c1,crm,c3,yes\ncrm,c2,crm,c3,yes\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["evaluate", "--labels", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)["pairs"]
    # c1 and c2 share an address; c3 has nothing but the name, so it stays apart.
    assert (figures["linked"], figures["matches"]) == (1, 3)
    assert figures["precision"] == 1.0 and figures["recall"] == pytest.approx(1 / 3)
    table = runner.invoke(app, ["evaluate", "--labels", str(labels)])
    assert table.exit_code == 0 and "auto-merge recall" in table.output


def test_evaluate_names_the_bad_line_of_a_labelled_file(database: str, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("source_a,source_id_a,source_b,source_id_b,match\ncrm,c1,crm,c2,perhaps\n")
    result = runner.invoke(app, ["evaluate", "--labels", str(labels)])
    assert result.exit_code == 2
    assert "line 2" in result.output


SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "samples"


def test_mapping_check_reports_the_shipped_sample_clean(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    get_settings.cache_clear()
    result = runner.invoke(
        app,
        [
            "mapping",
            "check",
            str(SAMPLES / "workday_worker.json"),
            "--source",
            "workday",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records"] == 1 and report["failed"] == 0
    assert report["fields"]["hire_date"] == {
        "mapped": 1, "transformed": 1, "unmapped": {}, "truncated": 0, "warnings": {},
        "failures": {},
    }  # fmt: skip


def test_mapping_check_counts_failures_and_unmapped_values_per_field(tmp_path: Path) -> None:
    get_settings.cache_clear()
    sample = json.loads((SAMPLES / "greenhouse_candidate.json").read_text())["data"]
    odd = json.loads(json.dumps(sample))
    odd["keyed_custom_fields"]["department"]["value"] = "Eng - Robotics"
    bad = json.loads(json.dumps(sample))
    bad["keyed_custom_fields"]["date_of_birth"]["value"] = "02/30/1985"
    bad["applications"][0]["status"] = "archived"
    file = tmp_path / "samples.jsonl"
    file.write_text("\n".join(json.dumps(p) for p in (sample, odd, bad)))
    result = runner.invoke(app, ["mapping", "check", str(file), "--source", "greenhouse", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["records"], report["failed"]) == (3, 1)
    fields = report["fields"]
    assert fields["department"]["unmapped"] == {"Eng - Robotics": 1}
    assert fields["department"]["transformed"] == 1
    assert fields["birth_date"]["failures"] == {"no such day: 1985-02-30 (format MM/DD/YYYY)": 1}
    assert fields["status"]["failures"] == {"no translation for 'archived' in the profile": 1}


def test_a_bad_profile_stops_the_command_naming_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "acme.toml").write_text(
        '[source]\nkey = "acme"\nkind = "crm"\n\n[fields.family_name]\npaht = "x"\n'
    )
    monkeypatch.setenv("MDM_PROFILES_DIR", str(tmp_path))
    get_settings.cache_clear()
    result = runner.invoke(
        app, ["mapping", "check", str(SAMPLES / "crm_contact.json"), "--source", "crm"]
    )
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert f"{tmp_path / 'acme.toml'}:6: fields.family_name.paht: unknown key" in " ".join(
        result.output.split()
    )


def test_a_bad_profile_stops_serve_with_workers_before_it_listens(tmp_path: Path) -> None:
    # With workers, the profiles are checked in a child process (the supervisor stays
    # small); its faults must still stop the command, named, with the same exit status.
    import os
    import subprocess
    import sys

    (tmp_path / "acme.toml").write_text(
        '[source]\nkey = "acme"\nkind = "crm"\n\n[fields.family_name]\npaht = "x"\n'
    )
    env = {**os.environ, "MDM_PROFILES_DIR": str(tmp_path), "MDM_ADMIN_KEY": "k" * 32,
           "MDM_DATABASE_URL": f"sqlite:///{tmp_path}/s.db", "COLUMNS": "200"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "mdm.cli", "serve", "--workers", "2", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path / 'acme.toml'}:6: fields.family_name.paht: unknown key" in " ".join(
        done.stderr.split()
    )
    assert "serving" not in done.stderr


def test_keys_are_created_listed_rotated_and_revoked(database: str) -> None:
    created = runner.invoke(
        app, ["keys", "create", "--name", "workday", "--scopes", "records:write,records:read",
              "--source", "hris", "--expires", "2026-12-15"],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("mdm_")
    prefix = key.split("_")[1]
    listed = runner.invoke(app, ["keys", "list"])
    assert prefix in listed.stdout and key not in listed.stdout  # never the key itself
    rotated = runner.invoke(app, ["keys", "rotate", prefix])
    assert rotated.exit_code == 0
    assert rotated.stdout.strip().splitlines()[-1].startswith("mdm_")
    assert runner.invoke(app, ["keys", "revoke", prefix]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code == 2
    bad = runner.invoke(app, ["keys", "create", "--name", "x", "--scopes", "root"])
    assert bad.exit_code == 2


def test_dedupe_names_a_wrong_engine_or_spark_setting(database: str) -> None:
    wrong = runner.invoke(app, ["dedupe", "--nice", "0", "--engine", "hadoop"])
    assert wrong.exit_code == 2
    assert "--engine hadoop: inprocess or spark" in " ".join(wrong.output.split())
    bad = runner.invoke(
        app, ["dedupe", "--nice", "0", "--engine", "spark", "--spark-conf", "executor.memory"]
    )
    assert bad.exit_code == 2
    assert "--spark-conf executor.memory: expected NAME=VALUE" in " ".join(bad.output.split())


def test_dedupe_reports_its_run_as_json(database: str, tmp_path: Path) -> None:
    from mdm.config import get_settings as settings_now
    from mdm.services.context import Registry
    from mdm.services.ingest import load_unmatched
    from tests.factories import incoming

    registry = Registry.from_settings(settings_now())
    load_unmatched(
        registry,
        [
            incoming("crm", "c1", email="ana@x.example"),
            incoming("ats", "a1", email="ana@x.example"),
        ],
        actor="legacy",
    )
    registry.close()
    result = runner.invoke(app, ["dedupe", "--nice", "0", "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["persons"], report["merges"]) == (2, 1)
    assert [s["name"] for s in report["stages"]] == [
        "read", "block", "score", "decide", "cluster", "write"
    ]  # fmt: skip
