"""Sync health: is every integration alive and sending what it usually sends?

Per source: the last record received, the records and rejections of the last 24 hours,
and today's volume per lifecycle status against the same hours of earlier days (a drop
from 10 hires a day to 2 is flagged). Per webhook subscription: disabled, dead or
retrying deliveries. Each condition that needs attention is a problem; `raise_alerts`
publishes each once a day as an `alert.raised` event, so a relay subscribed to alerts
hears of a failing integration within the hour.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mdm.flow.volume import judge_volume
from mdm.model.ids import new_id
from mdm.model.person import AuditEvent, OutboxEvent
from mdm.services.context import Registry
from mdm.services.keys import EXPIRING_WITHIN

FAILURE_RATE = 0.05  # of the last 24 hours' records refused
MIN_ATTEMPTS = 20  # fewer records: too few to judge a rate
HISTORY_DAYS = 29


@dataclass(frozen=True, slots=True)
class Problem:
    key: str  # stable within a day: an alert is raised once
    kind: str  # volume_drop | volume_spike | validation_failures | webhook
    message: str
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "message": self.message,
                "source": self.source}  # fmt: skip


@dataclass(slots=True)
class SourceHealth:
    source: str
    kind: str | None
    last_received_at: datetime | None
    records_24h: int
    rejected_24h: int
    volume: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failure_rate(self) -> float | None:
        attempts = self.records_24h + self.rejected_24h
        return self.rejected_24h / attempts if attempts else None


@dataclass(slots=True)
class SyncHealth:
    checked_at: datetime
    sources: list[SourceHealth]
    webhooks: list[dict[str, Any]]
    problems: list[Problem]
    expiring_keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at.isoformat(),
            "healthy": self.healthy,
            "problems": [p.as_dict() for p in self.problems],
            "sources": [
                {
                    "source": s.source,
                    "kind": s.kind,
                    "last_received_at": (
                        s.last_received_at.isoformat() if s.last_received_at else None
                    ),
                    "records_24h": s.records_24h,
                    "rejected_24h": s.rejected_24h,
                    "failure_rate": s.failure_rate,
                    "volume": s.volume,
                }
                for s in self.sources
            ],
            "webhooks": self.webhooks,
            "expiring_keys": self.expiring_keys,
        }


def sync_health(registry: Registry, *, now: datetime | None = None) -> SyncHealth:
    now = now or datetime.now(UTC)
    today = now.date()
    day_ago = now - timedelta(days=1)
    start = datetime.combine(today - timedelta(days=HISTORY_DAYS), datetime.min.time(), UTC)
    with registry.database.uow() as uow:
        last = uow.health.last_received()
        daily = uow.health.daily_counts(start, now.time())
        received = uow.health.received_since(day_ago)
        rejected = uow.health.rejected_since(day_ago)
        webhooks = uow.health.webhook_trouble(day_ago)
        expiring = uow.keys.expiring(now, now + EXPIRING_WITHIN)
    kinds = registry.source_kinds
    keys = sorted(set(kinds) | set(last) | set(received) | {s for s in rejected if s})
    counts: dict[tuple[str, str | None], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for source, status, day, n in daily:
        counts[(source, None)][day] += n
        if status:
            counts[(source, status)][day] += n
    problems: list[Problem] = []
    sources: list[SourceHealth] = []
    for key in keys:
        health = SourceHealth(
            source=key,
            kind=kinds.get(key),
            last_received_at=last.get(key),
            records_24h=received.get(key, 0),
            rejected_24h=rejected.get(key, 0),
        )
        for (source, status), series in sorted(
            counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        ):
            if source != key:
                continue
            judged = judge_volume(series, today)
            health.volume.append(
                {"status": status, "today": judged.today, "baseline": judged.baseline,
                 "verdict": judged.verdict}
            )  # fmt: skip
            if judged.anomalous:
                what = f"{status} records" if status else "records"
                problems.append(
                    Problem(
                        f"volume:{key}:{status or '*'}:{judged.verdict}:{today}",
                        f"volume_{judged.verdict}",
                        f"{key}: {judged.today} {what} so far today against a usual "
                        f"{judged.baseline:g} by this hour",
                        key,
                    )
                )
        rate = health.failure_rate
        if (
            rate is not None
            and rate > FAILURE_RATE
            and (health.records_24h + health.rejected_24h >= MIN_ATTEMPTS)
        ):
            problems.append(
                Problem(
                    f"rejections:{key}:{today}",
                    "validation_failures",
                    f"{key}: {rate:.0%} of the last 24 hours' records were refused "
                    f"({health.rejected_24h} of {health.records_24h + health.rejected_24h}); "
                    "see GET /v1/rejections",
                    key,
                )
            )
        sources.append(health)
    for hook in webhooks:
        trouble = []
        if hook["status"] != "active":
            trouble.append(f"disabled ({hook['disabled_reason']})")
        if hook["dead"]:
            trouble.append(f"{hook['dead']} dead deliveries")
        if hook["retrying"]:
            trouble.append(f"{hook['retrying']} deliveries retrying")
        if trouble:
            problems.append(
                Problem(
                    f"webhook:{hook['id']}:{today}",
                    "webhook",
                    f"webhook {hook['url']}: {', '.join(trouble)}",
                )
            )
    for api_key in expiring:
        assert api_key.expires_at is not None
        problems.append(
            Problem(
                f"key:{api_key.prefix}:{today}",
                "key_expiring",
                f"API key {api_key.prefix} ({api_key.name}) expires on "
                f"{api_key.expires_at:%Y-%m-%d}: rotate it (mdm keys rotate)",
            )
        )
    return SyncHealth(
        now, sources, webhooks, problems,
        [{"prefix": k.prefix, "name": k.name, "expires_at": k.expires_at.isoformat()}
         for k in expiring if k.expires_at],
    )  # fmt: skip


def raise_alerts(registry: Registry, health: SyncHealth) -> list[Problem]:
    """Publish each problem not yet raised today as an `alert.raised` event (with its
    audit entry); the problems raised now."""
    midnight = datetime.combine(health.checked_at.date(), datetime.min.time(), UTC)
    with registry.database.uow() as uow:
        raised = uow.health.alerts_since(midnight)
        new = [p for p in health.problems if p.key not in raised]
        if new:
            uow.registry.insert_outbox(
                [
                    OutboxEvent(new_id(), "alert.raised", None, p.as_dict(), health.checked_at)
                    for p in new
                ]
            )
            uow.registry.insert_audit(
                [
                    AuditEvent(new_id(), health.checked_at, "mdm", "alert.raised", "alert",
                               p.key, None, None, p.as_dict())
                    for p in new
                ]
            )  # fmt: skip
            uow.commit()
    return new
