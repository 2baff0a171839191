"""Webhook subscriptions and their deliveries."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api.deps import ActorDep, RegistryDep
from api.schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookCreatedOut,
    WebhookIn,
    WebhookOut,
    WebhookPage,
)
from mdm.model.errors import InvalidCursor
from mdm.services.webhooks import (
    create_subscription,
    disable_subscription,
    get_subscription,
    list_deliveries,
    list_subscriptions,
    replay_delivery,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post("", response_model=WebhookCreatedOut, status_code=201, responses={422: {}})
async def create(body: WebhookIn, registry: RegistryDep, actor: ActorDep) -> WebhookCreatedOut:
    """Subscribe a URL to event types. The response holds the signing secret, shown once:
    deliveries carry `webhook-id`, `webhook-timestamp` and `webhook-signature` per the
    Standard Webhooks specification. Internal addresses are refused."""
    created = create_subscription(
        registry,
        url=body.url,
        events=body.events,
        actor=actor,
        system=body.system,
        fields=body.fields,
        scopes=body.scopes,
    )
    return WebhookCreatedOut.model_validate(created, from_attributes=True)


@router.get("", response_model=WebhookPage)
async def subscriptions(registry: RegistryDep, actor: ActorDep) -> WebhookPage:
    return WebhookPage(
        items=[
            WebhookOut.model_validate(s, from_attributes=True) for s in list_subscriptions(registry)
        ]
    )


@router.get("/{subscription_id}", response_model=WebhookOut, responses={404: {}})
async def subscription(subscription_id: UUID, registry: RegistryDep, actor: ActorDep) -> WebhookOut:
    return WebhookOut.model_validate(
        get_subscription(registry, subscription_id), from_attributes=True
    )


@router.delete("/{subscription_id}", status_code=204, responses={404: {}})
async def disable(subscription_id: UUID, registry: RegistryDep, actor: ActorDep) -> Response:
    """Stop deliveries; what was waiting is kept, marked disabled."""
    disable_subscription(registry, subscription_id, actor=actor)
    return Response(status_code=204)


@router.get("/{subscription_id}/deliveries", response_model=DeliveryPage, responses={404: {}})
async def deliveries(
    subscription_id: UUID,
    registry: RegistryDep,
    actor: ActorDep,
    status: Literal["pending", "delivering", "delivered", "dead", "disabled"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> DeliveryPage:
    """Deliveries in event order, with attempts, the last answer and the payload sent."""
    after = None
    if cursor is not None:
        if not cursor.isdigit():
            raise InvalidCursor()
        after = int(cursor)
    found = list_deliveries(registry, subscription_id, status=status, after=after, limit=limit + 1)
    return DeliveryPage(
        items=[DeliveryOut.model_validate(d, from_attributes=True) for d in found[:limit]],
        next_cursor=str(found[limit - 1].event_seq) if len(found) > limit else None,
    )


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    responses={404: {}, 422: {}},
)
async def replay(
    subscription_id: UUID, delivery_id: UUID, registry: RegistryDep, actor: ActorDep
) -> DeliveryOut:
    """Send a dead delivery again (same event id), as soon as a worker can."""
    return DeliveryOut.model_validate(
        replay_delivery(registry, subscription_id, delivery_id), from_attributes=True
    )
