"""Deliver outbox events to webhook subscriptions (`mdm worker`).

Two steps, each its own short transaction: the fan-out turns new outbox events into one
delivery per interested subscription (the payload filtered and redacted for it), and the
delivery step claims due deliveries, posts them signed per the Standard Webhooks
specification, and records the outcome. A failure is retried on a schedule of about
three days with jitter; 429 is retried no sooner than its Retry-After; 410 disables the
subscription; after the last attempt the delivery is dead: visible and replayable.
Events of one person reach a subscriber in order: a delivery waits while an earlier one
for the same person is still open.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from uuid import UUID

import httpx
from standardwebhooks.webhooks import Webhook

from mdm.flow.survivorship import FieldRule, Strategy
from mdm.model.ids import new_id
from mdm.model.redaction import redact
from mdm.model.webhook import Delivery, PublishedEvent, Subscription
from mdm.services.context import Registry
from mdm.services.health import raise_alerts, sync_health
from mdm.services.webhooks import check_url

log = logging.getLogger("mdm.worker")
JITTER = 0.2
RECORD_EVENTS = ("record.linked", "record.updated")


def owned_fields(rules: Mapping[str, FieldRule], kind: str) -> frozenset[str]:
    """The golden fields a system of this kind owns (first in their owner order): it is
    their source of truth, so it is never sent them."""
    return frozenset(
        name
        for name, rule in rules.items()
        if rule.strategy is not Strategy.UNION and rule.owners and rule.owners[0] == kind
    )


def sync_of(registry: Registry, source: str, fields: list[str]) -> dict[str, dict[str, Any]]:
    """Where each of a source's fields flows once in the registry: the systems whose
    subscriptions receive it, and whether it also flows back to the source (both ways) or
    only from it (one-way)."""
    kinds = registry.source_kinds
    with registry.database.uow() as uow:
        subscriptions = [
            s
            for s in uow.webhooks.subscriptions(active_only=True)
            if s.system and (s.wants("person.updated") or s.wants("person.created"))
        ]
    out: dict[str, dict[str, Any]] = {}
    for name in fields:
        golden = {"email": "emails", "phone": "phones"}.get(name, name)
        receivers = sorted(
            {
                s.system
                for s in subscriptions
                if s.system
                and (s.fields is None or golden in s.fields)
                and golden not in owned_fields(registry.rules, kinds.get(s.system, ""))
            }
        )
        out[name] = {"direction": "both" if source in receivers else "one-way", "to": receivers}
    return out


def payload_for(
    subscription: Subscription, event: PublishedEvent, owned: frozenset[str]
) -> dict[str, Any] | None:
    """What this subscription receives of this event, or None: not a type it wants, a
    change it made itself (no echo), or only fields it owns or did not ask for."""
    if not subscription.wants(event.type):
        return None
    data = dict(event.payload)
    system = subscription.system
    if system is not None and event.type in RECORD_EVENTS and data.get("source") == system:
        return None
    changes = data.get("changes")
    if isinstance(changes, dict):
        sources: dict[str, list[str]] = data.get("sources") or {}
        kept = {
            name: value
            for name, value in changes.items()
            if (subscription.fields is None or name in subscription.fields)
            and not (system is not None and name in owned)
            and not (system is not None and sources.get(name) and set(sources[name]) <= {system})
        }
        if not kept and event.type in ("person.updated", "person.employee_id_assigned"):
            return None
        data["changes"] = redact(kept, subscription.scopes)
        data["sources"] = {name: sources.get(name, []) for name in data["changes"]}
        if "changed_fields" in data:
            data["changed_fields"] = sorted(data["changes"])
    return {"type": event.type, "timestamp": event.created_at.isoformat(), "data": data}


def fan_out(registry: Registry, *, limit: int = 1000) -> int:
    """Turn up to `limit` new outbox events into deliveries; the number of events read."""
    kinds = registry.source_kinds
    with registry.database.uow() as uow:
        events = uow.webhooks.claim_unpublished(limit)
        if not events:
            return 0
        now = datetime.now(UTC)
        subscriptions = uow.webhooks.subscriptions(active_only=True)
        owned = {
            s.id: owned_fields(registry.rules, kinds.get(s.system, "")) if s.system else frozenset()
            for s in subscriptions
        }
        deliveries = []
        for event in events:
            for s in subscriptions:
                payload = payload_for(s, event, owned[s.id])
                if payload is None:
                    continue
                deliveries.append(
                    Delivery(
                        id=new_id(),
                        subscription_id=s.id,
                        event_seq=event.seq,
                        event_id=event.id,
                        event_type=event.type,
                        person_id=event.person_id,
                        payload=payload,
                        status="pending",
                        attempts=0,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        uow.webhooks.insert_deliveries(deliveries)
        uow.webhooks.mark_published([e.seq for e in events], now)
        uow.commit()
        return len(events)


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery: Delivery
    status: str  # delivered | pending (retry) | dead | disabled
    attempts: int
    next_attempt_at: datetime
    http_status: int | None
    error: str | None
    at: datetime

    def row(self) -> dict[str, Any]:
        return {
            "id": self.delivery.id,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_status": self.http_status,
            "last_error": self.error,
            "delivered_at": self.at if self.status == "delivered" else None,
        }


def retry_delay(attempts: int, schedule: list[float], rnd: random.Random) -> float | None:
    """Seconds before the next attempt after `attempts` failed ones; None: no more."""
    if attempts > len(schedule):
        return None
    return schedule[attempts - 1] * (1 + rnd.uniform(-JITTER, JITTER))


def retry_after(response: httpx.Response, now: datetime) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max((parsedate_to_datetime(value) - now).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


class Worker:
    """Fans out and delivers, batch after batch; `run` until `stop` is set."""

    def __init__(
        self,
        registry: Registry,
        *,
        batch: int = 200,
        threads: int = 16,
        client: httpx.Client | None = None,
        seed: int | None = None,
    ) -> None:
        self.registry = registry
        self.settings = registry.settings
        self.batch = batch
        self._client = client
        # One client per delivery thread: a shared connection pool's lock was where the
        # threads spent most of their time.
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook")
        self.rnd = random.Random(seed)
        self.checked_at: float | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is not None:
            return self._client
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(
                timeout=self.settings.webhook_timeout,
                follow_redirects=False,  # a redirect could point anywhere: no SSRF through it
            )
            self._local.client = client
            self._clients.append(client)
        return client

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for client in self._clients:
            client.close()

    def run(self, stop: threading.Event, *, idle: float = 0.2) -> None:
        """Deliver until `stop` is set. (Writing one batch's outcomes while the next is on
        the wire was measured: no faster, the process is bound by its interpreter.)"""
        while not stop.is_set():
            if not self.run_once():
                stop.wait(idle)

    def run_once(self) -> int:
        """One delivery batch, its outcomes written, and one fan-out; how much work there
        was."""
        sending = self._send_due()
        events = fan_out(self.registry, limit=self.batch * 5)
        self._record([f.result() for f in sending])
        return events + len(sending)

    def _send_due(self) -> list[Future[Outcome]]:
        self._check_health()
        now = datetime.now(UTC)
        lease = now + timedelta(seconds=self.settings.webhook_lease)
        with self.registry.database.uow() as uow:
            due = uow.webhooks.claim_due(now, self.batch, lease)
            subscriptions = {s.id: s for s in uow.webhooks.subscriptions()} if due else {}
            uow.commit()
        return [self.pool.submit(self._deliver, d, subscriptions) for d in due]

    def _record(self, outcomes: list[Outcome]) -> None:
        if not outcomes:
            return
        with self.registry.database.uow() as uow:
            uow.webhooks.record_outcomes(o.row() for o in outcomes)
            for o in outcomes:
                if o.status == "disabled":
                    uow.webhooks.disable_subscription(
                        o.delivery.subscription_id, "the receiver answered 410 Gone", o.at
                    )
            uow.commit()

    def _check_health(self) -> None:
        """Every `health_interval`: the sync health check, its problems raised as alerts
        (published by this same worker)."""
        interval = self.settings.health_interval
        clock = time.monotonic()
        if not interval or (self.checked_at is not None and clock - self.checked_at < interval):
            return
        self.checked_at = clock
        try:
            raised = raise_alerts(self.registry, sync_health(self.registry))
        except Exception:  # the health check must never stop the deliveries
            log.exception("the sync health check failed")
            return
        for problem in raised:
            log.warning("alert raised: %s", problem.kind)

    def _deliver(self, delivery: Delivery, subscriptions: Mapping[UUID, Subscription]) -> Outcome:
        subscription = subscriptions.get(delivery.subscription_id)
        now = datetime.now(UTC)
        attempts = delivery.attempts + 1
        if subscription is None or subscription.status != "active":
            return Outcome(delivery, "disabled", delivery.attempts, now, None, "disabled", now)
        why = check_url(subscription.url, allow_private=self.settings.webhook_allow_private)
        response: httpx.Response | None = None
        error: str | None = None
        if why is not None:
            error = f"refused: {why}"
        else:
            body = json.dumps(delivery.payload, separators=(",", ":"), default=str)
            signature = Webhook(subscription.secret).sign(str(delivery.event_id), now, body)
            headers = {
                "content-type": "application/json",
                "user-agent": "mdm-webhooks/1",
                "webhook-id": str(delivery.event_id),
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature,
            }
            try:
                response = self.client.post(subscription.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        status = response.status_code if response is not None else None
        # Retries count from the answer (or the timeout), not from the send.
        now = datetime.now(UTC)
        if status is not None and 200 <= status < 300:
            return Outcome(delivery, "delivered", attempts, now, status, None, now)
        if status == 410:
            return Outcome(delivery, "disabled", attempts, now, status, "410 Gone", now)
        delay = retry_delay(attempts, self.settings.webhook_retry_schedule, self.rnd)
        if status is not None:
            error = f"HTTP {status}"
        if delay is None:
            log.warning("delivery %s is dead after %d attempts", delivery.id, attempts)
            return Outcome(delivery, "dead", attempts, now, status, error, now)
        if response is not None and status == 429:
            delay = max(delay, retry_after(response, now) or 0.0)
        return Outcome(
            delivery, "pending", attempts, now + timedelta(seconds=delay), status, error, now
        )
