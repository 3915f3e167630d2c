"""The log of provider webhook events applied: an event id is applied at most once.

Stripe delivers an event at least once and may redeliver it for days
(https://docs.stripe.com/webhooks#handle-duplicate-events): the id's presence in
`webhook_events` makes a redelivery a no-op.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.models import WebhookEvent
from gql_inventory.orders.payment_states import Outcome


async def record_delivery(
    session: AsyncSession, event_id: str, *, provider: str, event_type: str
) -> bool:
    """Note the event id in the caller's transaction; False when it was seen before.

    ``INSERT ... ON CONFLICT DO NOTHING``: of two concurrent deliveries of one id, the
    second waits for the first's transaction and then sees the conflict.
    """
    fresh = await session.execute(
        insert(WebhookEvent)
        .values(id=event_id, provider=provider, type=event_type)
        .on_conflict_do_nothing(index_elements=[WebhookEvent.id])
        .returning(WebhookEvent.id)
    )
    return fresh.first() is not None


async def set_outcome(session: AsyncSession, event_id: str, outcome: Outcome) -> None:
    """Store what applying the event did (``sold``, ``ignored``, ``invalid``...)."""
    await session.execute(
        update(WebhookEvent).where(WebhookEvent.id == event_id).values(outcome=outcome)
    )
