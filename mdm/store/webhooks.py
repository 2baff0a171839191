"""Subscriptions, the outbox fan-out and the delivery queue.

On PostgreSQL the fan-out and the delivery claim take their rows with FOR UPDATE SKIP
LOCKED, so any number of workers share the work without waiting on each other; a claimed
delivery carries a lease, and one whose worker died is claimed again when it expires
(at-least-once, with the same event id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    exists,
    insert,
    or_,
    select,
    update,
)

from mdm.model.webhook import Delivery, PublishedEvent, Subscription
from mdm.store.sealing import Sealer
from mdm.store.tables import OutboxRow, WebhookDeliveryRow, WebhookSubscriptionRow

subscriptions_t = cast(Table, WebhookSubscriptionRow.__table__)
deliveries_t = cast(Table, WebhookDeliveryRow.__table__)
outbox_t = cast(Table, OutboxRow.__table__)
# A delivery waiting for its turn or its next attempt; "delivering" with a lapsed lease is
# one whose worker died.
OPEN = ("pending", "delivering")


class WebhookRepository:
    def __init__(self, conn: Connection, sealer: Sealer) -> None:
        self.sealer = sealer
        self.conn = conn
        self.postgres = conn.dialect.name == "postgresql"

    # -- subscriptions ----------------------------------------------------------------------
    def insert_subscription(self, s: Subscription) -> None:
        self.conn.execute(insert(subscriptions_t).values(_subscription_values(s)))

    def get_subscription(self, subscription_id: UUID) -> Subscription | None:
        row = self.conn.execute(
            select(subscriptions_t).where(subscriptions_t.c.id == subscription_id)
        ).first()
        return _subscription(row._mapping) if row is not None else None

    def subscriptions(self, *, active_only: bool = False) -> list[Subscription]:
        stmt = select(subscriptions_t).order_by(subscriptions_t.c.created_at)
        if active_only:
            stmt = stmt.where(subscriptions_t.c.status == "active")
        return [_subscription(r._mapping) for r in self.conn.execute(stmt)]

    def _delivery(self, m: Any) -> Delivery:
        return _delivery(m, self.sealer)

    def erase(self, person_ids: Sequence[UUID]) -> int:
        """Deliveries about erased persons keep their type and person id, nothing else;
        those still to be sent go out so (the person.erased event follows them)."""
        d = deliveries_t.c
        rows = self.conn.execute(
            select(d.id, d.event_type, d.person_id).where(d.person_id.in_(person_ids))
        ).all()
        for delivery_id, event_type, person_id in rows:
            scrubbed = {"type": event_type, "data": {"person_id": str(person_id), "erased": True}}
            self.conn.execute(
                update(deliveries_t).where(d.id == delivery_id).values(payload=scrubbed)
            )
        return len(rows)

    # -- fan-out ----------------------------------------------------------------------------
    def claim_unpublished(self, limit: int) -> list[PublishedEvent]:
        c = outbox_t.c
        stmt = select(outbox_t).where(c.published_at.is_(None)).order_by(c.seq).limit(limit)
        if self.postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        return [
            PublishedEvent(
                seq=r.seq,
                id=r.id,
                type=r.type,
                person_id=r.person_id,
                payload=self.sealer.open("event", r.payload),
                created_at=r.created_at,
            )
            for r in self.conn.execute(stmt)
        ]

    def mark_published(self, seqs: Sequence[int], at: datetime) -> None:
        if seqs:
            self.conn.execute(
                update(outbox_t).where(outbox_t.c.seq.in_(seqs)).values(published_at=at)
            )

    def insert_deliveries(self, deliveries: Sequence[Delivery]) -> None:
        if deliveries:
            self.conn.execute(
                insert(deliveries_t), [_delivery_values(d, self.sealer) for d in deliveries]
            )

    # -- delivery queue ---------------------------------------------------------------------
    def claim_due(self, now: datetime, limit: int, lease_until: datetime) -> list[Delivery]:
        """Due deliveries, at most one per subscription and person: the earliest open one,
        so a person's events reach each subscriber in order."""
        d = deliveries_t.c
        earlier = deliveries_t.alias("earlier")
        due = or_(
            and_(d.status == "pending", d.next_attempt_at <= now),
            and_(d.status == "delivering", d.lease_until < now),
        )
        blocked = exists().where(
            earlier.c.subscription_id == d.subscription_id,
            earlier.c.person_id == d.person_id,
            earlier.c.event_seq < d.event_seq,
            earlier.c.status.in_(OPEN),
        )
        stmt = (
            select(deliveries_t)
            .where(due, ~blocked)
            .order_by(d.next_attempt_at, d.event_seq)
            .limit(limit)
        )
        if self.postgres:
            stmt = stmt.with_for_update(skip_locked=True, of=deliveries_t)
        claimed = [self._delivery(r._mapping) for r in self.conn.execute(stmt)]
        if claimed:
            self.conn.execute(
                update(deliveries_t)
                .where(d.id.in_([x.id for x in claimed]))
                .values(status="delivering", lease_until=lease_until)
            )
        return claimed

    def record_outcomes(self, outcomes: Iterable[dict[str, Any]]) -> None:
        """Each outcome: id, status, attempts, next_attempt_at, last_status, last_error,
        delivered_at."""
        rows = [{f"b_{k}": v for k, v in o.items()} for o in outcomes]
        if not rows:
            return
        self.conn.execute(
            update(deliveries_t)
            .where(deliveries_t.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                attempts=bindparam("b_attempts"),
                next_attempt_at=bindparam("b_next_attempt_at"),
                last_status=bindparam("b_last_status"),
                last_error=bindparam("b_last_error"),
                delivered_at=bindparam("b_delivered_at"),
                lease_until=None,
            ),
            rows,
        )

    def disable_subscription(self, subscription_id: UUID, reason: str, at: datetime) -> None:
        self.conn.execute(
            update(subscriptions_t)
            .where(subscriptions_t.c.id == subscription_id)
            .values(status="disabled", disabled_reason=reason, updated_at=at)
        )
        # What was still waiting for it will not be sent; it stays visible, replayable.
        self.conn.execute(
            update(deliveries_t)
            .where(
                deliveries_t.c.subscription_id == subscription_id,
                deliveries_t.c.status.in_(OPEN),
            )
            .values(status="disabled", lease_until=None)
        )

    def deliveries(
        self,
        subscription_id: UUID,
        *,
        status: str | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        d = deliveries_t.c
        stmt = select(deliveries_t).where(d.subscription_id == subscription_id)
        if status is not None:
            stmt = stmt.where(d.status == status)
        if after is not None:
            stmt = stmt.where(d.event_seq > after)
        stmt = stmt.order_by(d.event_seq, d.id).limit(limit)
        return [self._delivery(r._mapping) for r in self.conn.execute(stmt)]

    def get_delivery(self, delivery_id: UUID) -> Delivery | None:
        row = self.conn.execute(
            select(deliveries_t).where(deliveries_t.c.id == delivery_id)
        ).first()
        return self._delivery(row._mapping) if row is not None else None

    def requeue(self, delivery_id: UUID, at: datetime) -> None:
        self.conn.execute(
            update(deliveries_t)
            .where(deliveries_t.c.id == delivery_id)
            .values(status="pending", next_attempt_at=at, lease_until=None, attempts=0)
        )


def _subscription_values(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.id,
        "url": s.url,
        "events": list(s.events),
        "system": s.system,
        "fields": list(s.fields) if s.fields is not None else None,
        "scopes": list(s.scopes),
        "secret": s.secret,
        "status": s.status,
        "disabled_reason": s.disabled_reason,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "created_by": s.created_by,
    }


def _subscription(m: Any) -> Subscription:
    return Subscription(
        id=m["id"],
        url=m["url"],
        events=tuple(m["events"]),
        system=m["system"],
        fields=tuple(m["fields"]) if m["fields"] is not None else None,
        scopes=tuple(m["scopes"]),
        secret=m["secret"],
        status=m["status"],
        disabled_reason=m["disabled_reason"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        created_by=m["created_by"],
    )


def _delivery_values(d: Delivery, sealer: Sealer) -> dict[str, Any]:
    return {
        "id": d.id,
        "subscription_id": d.subscription_id,
        "event_seq": d.event_seq,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "person_id": d.person_id,
        "payload": sealer.seal("event", d.payload),
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "lease_until": d.lease_until,
        "last_status": d.last_status,
        "last_error": d.last_error,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
    }


def _delivery(m: Any, sealer: Sealer) -> Delivery:
    return Delivery(
        id=m["id"],
        subscription_id=m["subscription_id"],
        event_seq=m["event_seq"],
        event_id=m["event_id"],
        event_type=m["event_type"],
        person_id=m["person_id"],
        payload=sealer.open("event", m["payload"]),
        status=m["status"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        created_at=m["created_at"],
        lease_until=m["lease_until"],
        last_status=m["last_status"],
        last_error=m["last_error"],
        delivered_at=m["delivered_at"],
    )
