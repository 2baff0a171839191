"""Sync health on a registry with history: a drop in hires, a source whose records are
refused, a failing webhook endpoint; alerts raised once a day; `mdm health` exit status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from mdm.model.record import IncomingRecord
from mdm.services.context import Registry
from mdm.services.health import raise_alerts, sync_health
from mdm.services.ingest import ingest_many
from mdm.services.webhooks import create_subscription, disable_subscription
from mdm.store.tables import OutboxRow, SourceRecordRow


def hires(day: int, n: int) -> list[IncomingRecord]:
    return [
        IncomingRecord(
            "hris",
            f"h-{day}-{i}",
            {
                "given_name": f"Person{day}x{i}",
                "family_name": "Hire",
                "status": "hired",
                "employee_id": f"E{day}-{i}",
                "email": f"p{day}.{i}@corp.example",
            },
        )
        for i in range(n)
    ]


def backdate(registry: Registry, prefix: str, days: int) -> None:
    with registry.database.engine.begin() as conn:
        rows = conn.execute(
            select(SourceRecordRow.id, SourceRecordRow.received_at).where(
                SourceRecordRow.source_id.like(f"{prefix}%")
            )
        ).all()
        for record_id, at in rows:
            conn.execute(
                update(SourceRecordRow)
                .where(SourceRecordRow.id == record_id)
                .values(received_at=at - timedelta(days=days))
            )


def test_a_drop_in_hires_refusals_and_a_dead_endpoint_are_problems_alerted_once(
    registry: Registry,
) -> None:
    for day in range(1, 15):
        ingest_many(registry, hires(day, 10), actor="t")
        backdate(registry, f"h-{day}-", day)
    ingest_many(registry, hires(0, 2), actor="t")  # today: 2 hires, not 10
    bad = [IncomingRecord("crm", f"c-{i}", {"given_name": "X"}) for i in range(6)]
    good = [
        IncomingRecord("crm", f"g-{i}", {"given_name": "Y", "family_name": "Z",
                                         "email": f"y{i}@z.example"})
        for i in range(20)
    ]  # fmt: skip
    ingest_many(registry, bad + good, actor="t")
    hook = create_subscription(
        registry, url="https://93.184.215.14/hook", events=["alert.raised"], actor="t"
    )
    disable_subscription(registry, hook.id, actor="t")

    report = sync_health(registry)
    kinds = {p.kind for p in report.problems}
    assert kinds == {"volume_drop", "validation_failures", "webhook"}, report.problems
    drop = next(p for p in report.problems if p.kind == "volume_drop" and "hired" in p.key)
    assert drop.source == "hris" and "2 hired records" in drop.message
    hris = next(s for s in report.sources if s.source == "hris")
    assert hris.last_received_at is not None
    hired = next(v for v in hris.volume if v["status"] == "hired")
    assert (hired["today"], hired["baseline"], hired["verdict"]) == (2, 10, "drop")
    crm = next(s for s in report.sources if s.source == "crm")
    assert (crm.records_24h, crm.rejected_24h) == (20, 6)
    assert not report.healthy

    first = raise_alerts(registry, report)
    assert {p.key for p in first} == {p.key for p in report.problems}
    assert raise_alerts(registry, sync_health(registry)) == []  # once a day
    with registry.database.engine.connect() as conn:
        alerts = conn.scalar(
            select(func.count()).select_from(OutboxRow).where(OutboxRow.type == "alert.raised")
        )
    assert alerts == len(report.problems)


def test_a_quiet_registry_is_healthy(registry: Registry) -> None:
    report = sync_health(registry)
    assert report.healthy
    assert {s.source for s in report.sources} >= {"crm", "ats", "hris", "greenhouse"}
    assert report.as_dict()["problems"] == []
    assert datetime.now(UTC) - report.checked_at < timedelta(minutes=1)
