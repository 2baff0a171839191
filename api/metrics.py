"""Prometheus metrics at /metrics (prometheus-client). Labels are bounded: sources are the
configured ones, fields the canonical ones; never a person id or any personal data.

Counters and histograms are per process; with `mdm serve --workers N` the processes share
them through PROMETHEUS_MULTIPROC_DIR, which `mdm serve` sets. Queue depths and lags are
read from the database at scrape time, so every process reports the same.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mdm.mapping.profile import CANONICAL_FIELDS
from mdm.services.context import Registry
from mdm.services.keys import EXPIRING_WITHIN

CONFIDENCE_BUCKETS = (0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class Metrics:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        own = None if self.multiprocess else CollectorRegistry()
        self.collectors = own
        self.ingested = Counter(
            "mdm_records_ingested", "Records ingested, by source and decision",
            ["source", "decision"], registry=own,
        )  # fmt: skip
        self.refused = Counter(
            "mdm_validation_failures", "Records refused, by source and canonical field",
            ["source", "field"], registry=own,
        )  # fmt: skip
        self.confidence = Histogram(
            "mdm_match_confidence", "Match confidence of ingest decisions",
            buckets=CONFIDENCE_BUCKETS, registry=own,
        )  # fmt: skip
        self.latency = Histogram(
            "mdm_http_request_duration_seconds", "HTTP request latency, by route",
            ["method", "route", "status"], registry=own,
        )  # fmt: skip

    def source_label(self, source: str | None) -> str:
        return source if source and self.registry.sources.get(source) else "unknown"

    def field_label(self, issue: dict[str, Any]) -> str:
        name = issue.get("canonical") or str(issue.get("field", "")).removeprefix("data.")
        name = name.split(".")[0]
        return name if name in CANONICAL_FIELDS or name == "source" else "other"

    def record_ingested(self, source: str, decision: str, score: float) -> None:
        self.ingested.labels(self.source_label(source), decision).inc()
        if decision != "updated":
            self.confidence.observe(score)

    def record_refused(self, source: str | None, errors: list[dict[str, Any]]) -> None:
        label = self.source_label(source)
        for name in {self.field_label(e) for e in errors} or {"other"}:
            self.refused.labels(label, name).inc()

    def exposition(self) -> tuple[bytes, str]:
        scrape = CollectorRegistry()
        if self.multiprocess:
            multiprocess.MultiProcessCollector(scrape)
        else:
            assert self.collectors is not None
            scrape.register(_Forward(self.collectors))
        scrape.register(_DatabaseGauges(self.registry))
        return generate_latest(scrape), CONTENT_TYPE_LATEST


class _Forward(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.source = registry

    def collect(self) -> Iterator[Any]:
        yield from self.source.collect()


class _DatabaseGauges(Collector):
    """Read at scrape time: the same in every process."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        now = datetime.now(UTC)
        with self.registry.database.engine.connect() as conn:
            depth, oldest = conn.execute(
                text("SELECT count(*), min(created_at) FROM review_items WHERE status = 'open'")
            ).one()
            by_status = conn.execute(
                text("SELECT status, count(*), coalesce(sum(attempts), 0) "
                     "FROM webhook_deliveries GROUP BY status")
            ).all()  # fmt: skip
            lag = conn.scalar(text("SELECT min(created_at) FROM outbox WHERE published_at IS NULL"))
        queue = GaugeMetricFamily("mdm_review_queue_depth", "Open review items")
        queue.add_metric([], float(depth))
        yield queue
        age = GaugeMetricFamily(
            "mdm_review_queue_oldest_age_seconds", "Age of the oldest open review item"
        )
        age.add_metric([], _age(oldest, now))
        yield age
        deliveries = GaugeMetricFamily(
            "mdm_webhook_deliveries", "Webhook deliveries by status", labels=["status"]
        )
        attempts = GaugeMetricFamily(
            "mdm_webhook_delivery_attempts", "Delivery attempts made, by delivery status",
            labels=["status"],
        )  # fmt: skip
        for status, count, tries in by_status:
            deliveries.add_metric([status], float(count))
            attempts.add_metric([status], float(tries))
        yield deliveries
        yield attempts
        outbox = GaugeMetricFamily(
            "mdm_outbox_lag_seconds", "Age of the oldest event not yet handed to webhooks"
        )
        outbox.add_metric([], _age(lag, now))
        yield outbox
        with self.registry.database.uow() as uow:
            expiring = len(uow.keys.expiring(now, now + EXPIRING_WITHIN))
        keys = GaugeMetricFamily("mdm_api_keys_expiring", "API keys that expire within 30 days")
        keys.add_metric([], float(expiring))
        yield keys


def _age(at: Any, now: datetime) -> float:
    if at is None:
        return 0.0
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max((now - at).total_seconds(), 0.0)


class Timing:
    """Request latency by route template (never the raw path: it holds person ids)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )
