"""Webhook subscriptions: create (with the secret shown once), list, disable, and the
deliveries of each, replayable from the dead letter."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit
from uuid import UUID

from mdm.flow.survivorship import MULTI_VALUED
from mdm.mapping.profile import CANONICAL_FIELDS
from mdm.model.errors import (
    DeliveryNotFound,
    FieldIssue,
    InvalidRecord,
    SubscriptionNotFound,
)
from mdm.model.ids import new_id
from mdm.model.scopes import SCOPES
from mdm.model.webhook import EVENT_TYPES, Delivery, Subscription
from mdm.services.context import Registry

GOLDEN_FIELDS = tuple(f for f in CANONICAL_FIELDS if f not in ("email", "phone"))


class InvalidSubscription(InvalidRecord):
    title = "Invalid webhook subscription"

    def __init__(self, errors: list[FieldIssue]) -> None:
        super().__init__(errors, "The webhook subscription is not valid")


def check_url(url: str, *, allow_private: bool) -> str | None:
    """Why `url` may not receive webhooks, or None. A target that resolves to a private,
    loopback, link-local or otherwise internal address is refused (server-side request
    forgery), unless the setting allows it; checked again before every delivery, since
    DNS can change."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an http(s) URL with a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    if allow_private:
        return None
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return "the host does not resolve"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address.is_unspecified
        ):
            return f"resolves to an internal address ({address}); refused"
    return None


def create_subscription(
    registry: Registry,
    *,
    url: str,
    events: Sequence[str],
    actor: str,
    system: str | None = None,
    fields: Sequence[str] | None = None,
    scopes: Sequence[str] = (),
) -> Subscription:
    """A new subscription with a generated secret (``whsec_...``): shown once, in what
    this returns."""
    errors: list[FieldIssue] = []
    why = check_url(url, allow_private=registry.settings.webhook_allow_private)
    if why:
        errors.append(FieldIssue("url", why, url))
    unknown = [e for e in events if e != "*" and e not in EVENT_TYPES]
    if not events or unknown:
        errors.append(
            FieldIssue("events", f"event types from: *, {', '.join(EVENT_TYPES)}", unknown or None)
        )
    if system is not None and registry.sources.get(system) is None:
        errors.append(FieldIssue("system", "not a configured source", system))
    bad_fields = [f for f in fields or () if f not in GOLDEN_FIELDS and f not in MULTI_VALUED]
    if bad_fields:
        errors.append(FieldIssue("fields", f"golden fields from: {', '.join(GOLDEN_FIELDS)}"))
    bad_scopes = [s for s in scopes if s not in SCOPES]
    if bad_scopes:
        errors.append(FieldIssue("scopes", f"scopes from: {', '.join(SCOPES)}", bad_scopes))
    if errors:
        raise InvalidSubscription(errors)
    now = datetime.now(UTC)
    subscription = Subscription(
        id=new_id(),
        url=url,
        events=tuple(dict.fromkeys(events)),
        system=system,
        fields=tuple(fields) if fields is not None else None,
        scopes=tuple(dict.fromkeys(scopes)),
        secret="whsec_" + secrets.token_urlsafe(24).replace("-", "A").replace("_", "B"),
        status="active",
        created_at=now,
        updated_at=now,
        created_by=actor,
    )
    with registry.database.uow() as uow:
        uow.webhooks.insert_subscription(subscription)
        uow.commit()
    return subscription


def list_subscriptions(registry: Registry) -> list[Subscription]:
    with registry.database.uow() as uow:
        return uow.webhooks.subscriptions()


def get_subscription(registry: Registry, subscription_id: UUID) -> Subscription:
    with registry.database.uow() as uow:
        found = uow.webhooks.get_subscription(subscription_id)
    if found is None:
        raise SubscriptionNotFound(subscription_id)
    return found


def disable_subscription(registry: Registry, subscription_id: UUID, *, actor: str) -> None:
    get_subscription(registry, subscription_id)
    with registry.database.uow() as uow:
        uow.webhooks.disable_subscription(
            subscription_id, f"disabled by {actor}", datetime.now(UTC)
        )
        uow.commit()


def list_deliveries(
    registry: Registry,
    subscription_id: UUID,
    *,
    status: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    get_subscription(registry, subscription_id)
    with registry.database.uow() as uow:
        return uow.webhooks.deliveries(subscription_id, status=status, after=after, limit=limit)


def replay_delivery(registry: Registry, subscription_id: UUID, delivery_id: UUID) -> Delivery:
    """Send a dead (or disabled) delivery again, same event id, as soon as a worker can."""
    with registry.database.uow() as uow:
        found = uow.webhooks.get_delivery(delivery_id)
        if found is None or found.subscription_id != subscription_id:
            raise DeliveryNotFound(delivery_id)
        subscription = uow.webhooks.get_subscription(subscription_id)
        if subscription is None or subscription.status != "active":
            raise InvalidSubscription(
                [FieldIssue("subscription", "is disabled: re-create it to receive deliveries")]
            )
        if found.status in ("dead", "disabled"):
            uow.webhooks.requeue(delivery_id, datetime.now(UTC))
            uow.commit()
        replayed = uow.webhooks.get_delivery(delivery_id)
    assert replayed is not None
    return replayed
