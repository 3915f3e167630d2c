"""The Stripe webhook's use case: apply one verified Stripe event, once, in any order.

`apply_event` runs in the caller's transaction (`gql_inventory.uow.run_in_transaction`):

1. The event id goes into `webhook_events` (``ON CONFLICT DO NOTHING``: a redelivery
   answers ``duplicate`` and changes nothing).
2. The order is found by the PaymentIntent id and the ``metadata.order_id`` Stripe
   echoes back (`orders.lookup.order_for_payment`); when they disagree nothing is done.
   Types not in `HANDLERS` are acknowledged (``ignored``).
3. The handler for its type runs in a savepoint. Every number and id it reads is
   checked first (`stripe_objects`) and against the order (`event_checks`): an
   impossible event rolls the savepoint back, forgets what it would have announced
   (`UnitOfWork.rewind`), is recorded in the order's `payment_events` and answers
   ``invalid``, changing no stock and no status.

Ordering (Stripe retries for days and does not keep order): each domain function looks
at the locked order's state, so any order of events ends in the same state. A
``charge.refunded`` before the payment's success applies the success first; a cancel
after a success is ignored; a success after a cancel or an expiry sells from the stock
left, or flags NEEDS_ATTENTION. Refund rules: `provider_events`. The route that calls
it: `webhooks.stripe` (docs/adr/0016-one-of-each.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.kit.logs import get_logger
from gql_inventory.orders import (
    orders,
    payment_outcomes,
    payment_progress,
    provider_events,
    webhook_log,
)
from gql_inventory.orders import stripe_objects as objects
from gql_inventory.orders.lookup import order_for_payment
from gql_inventory.orders.payment_states import Outcome, PaymentEventKind
from gql_inventory.orders.stripe_objects import InvalidEvent, StripeEvent

log = get_logger(__name__)

REFUND_EVENTS = frozenset(
    {
        PaymentEventKind.REFUND_CREATED,
        PaymentEventKind.REFUND_UPDATED,
        PaymentEventKind.REFUND_FAILED,
        PaymentEventKind.CHARGE_REFUND_UPDATED,
    }
)


@dataclass(frozen=True, slots=True)
class PaymentHold:
    """How long a payment in progress holds its reservation (seconds; from the settings
    ``PAYMENT_HOLD_SECONDS`` and ``PAYMENT_HOLD_MAX_SECONDS``)."""

    seconds: int
    max_seconds: int


# ---------------------------------------------------------------- finding the order


def _payment_intent_id(event: StripeEvent) -> str | None:
    """Raises `InvalidEvent` for a PaymentIntent id that is not a Stripe id."""
    if event.obj.get("object") == "payment_intent":
        return objects.stripe_id(event.obj.get("id"), "id")
    return objects.stripe_id(event.obj.get("payment_intent"), "payment_intent")


def _meta_order_id(metadata: Any) -> uuid.UUID | None:
    """The ``metadata.order_id`` we set on the PaymentIntent, if it is a UUID."""
    raw = metadata.get("order_id") if isinstance(metadata, dict) else None
    try:
        return uuid.UUID(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


# ---------------------------------------------------------------- handlers

Handler = Callable[[UnitOfWork, uuid.UUID, StripeEvent, PaymentHold], Awaitable[Outcome]]


async def _succeeded(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: PaymentHold
) -> Outcome:
    received = objects.optional_amount(event.obj, "amount_received")
    amount = received or objects.amount(event.obj, "amount")
    currency = objects.currency(event.obj)
    outcome = await payment_outcomes.payment_succeeded(
        uow, order_id, reference=event.id, amount=amount, currency=currency
    )
    if outcome is Outcome.ALREADY_PAID:
        await orders.record_payment_event(
            uow.session, order_id, event.kind, provider_event_id=event.id, detail="already applied"
        )
    return outcome


async def _failed(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: PaymentHold
) -> Outcome:
    error = event.obj.get("last_payment_error")
    message = None
    if isinstance(error, dict):
        code = objects.text(error, "decline_code") or objects.text(error, "code")
        text = objects.text(error, "message")
        message = ": ".join(part for part in (code, text) if part) or None
    return await payment_outcomes.payment_failed(uow, order_id, error=message, reference=event.id)


async def _in_progress(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, hold: PaymentHold
) -> Outcome:
    return await payment_progress.payment_in_progress(
        uow.session,
        order_id,
        kind=event.kind,
        hold_seconds=hold.seconds,
        max_hold_seconds=hold.max_seconds,
        reference=event.id,
    )


async def _canceled(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: PaymentHold
) -> Outcome:
    outcome = await payment_outcomes.payment_canceled(uow, order_id, reference=event.id)
    if outcome is Outcome.IGNORED:
        await orders.record_payment_event(
            uow.session,
            order_id,
            event.kind,
            provider_event_id=event.id,
            detail="ignored: the order is no longer pending",
        )
    return outcome


async def _charge_refunded(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: PaymentHold
) -> Outcome:
    charge = event.obj
    refunds = objects.listed_refunds(charge)
    captured = objects.optional_amount(charge, "amount_captured")
    amount_refunded = objects.amount(charge, "amount_refunded")
    currency = objects.currency(charge)
    return await provider_events.charge_refunded(
        uow,
        order_id,
        amount_refunded=amount_refunded,
        fully_refunded=charge.get("refunded") is True,
        charge_amount=captured or objects.optional_amount(charge, "amount"),
        currency=currency,
        refunds=refunds,
        kind=event.kind,
        reference=event.id,
    )


async def _refund_event(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: PaymentHold
) -> Outcome:
    return await provider_events.refund_reported(
        uow, order_id, objects.refund(event.obj), kind=event.kind, reference=event.id
    )


#: The handler of each event type applied; any other type is acknowledged (``ignored``).
HANDLERS: dict[str, Handler] = {
    PaymentEventKind.PAYMENT_INTENT_SUCCEEDED: _succeeded,
    PaymentEventKind.PAYMENT_INTENT_PAYMENT_FAILED: _failed,
    PaymentEventKind.PAYMENT_INTENT_PROCESSING: _in_progress,
    PaymentEventKind.PAYMENT_INTENT_REQUIRES_ACTION: _in_progress,
    PaymentEventKind.PAYMENT_INTENT_CANCELED: _canceled,
    PaymentEventKind.CHARGE_REFUNDED: _charge_refunded,
    **dict.fromkeys(REFUND_EVENTS, _refund_event),
}


async def _apply(uow: UnitOfWork, event: StripeEvent, hold: PaymentHold) -> Outcome:
    session = uow.session
    handler = HANDLERS.get(event.type)
    if handler is None:
        return Outcome.IGNORED
    order_id: uuid.UUID | None = None
    mark = uow.mark()
    try:
        order_id, problem = await order_for_payment(
            session, _payment_intent_id(event), _meta_order_id(event.obj.get("metadata"))
        )
        if order_id is None:
            return problem or Outcome.ORDER_NOT_FOUND
        async with session.begin_nested():  # an impossible value undoes the handler's work
            return await handler(uow, order_id, event, hold)
    except InvalidEvent as exc:
        uow.rewind(mark)  # the savepoint rolled back: nothing of it is announced
        log.warning("stripe.webhook_invalid", event_id=event.id, type=event.type, error=str(exc))
        if order_id is not None:
            await orders.record_payment_event(
                session,
                order_id,
                PaymentEventKind.INVALID_EVENT,
                provider_event_id=event.id,
                detail=f"{event.type}: {exc}",
            )
        return Outcome.INVALID


async def apply_event(uow: UnitOfWork, event: StripeEvent, hold: PaymentHold) -> Outcome:
    """Store the event id and apply the event, in the caller's transaction.

    Returns the outcome (``duplicate`` when the id was seen before; ``ignored`` for
    types not handled; ``invalid`` for an impossible event: a value out of range
    (`stripe_objects.InvalidEvent`) or impossible for the order (`event_checks`),
    recorded and changing nothing). Raises `MalformedEvent` (the caller rolls back).
    """
    session = uow.session
    if not await webhook_log.record_delivery(
        session, event.id, provider="stripe", event_type=event.type
    ):
        return Outcome.DUPLICATE
    outcome = await _apply(uow, event, hold)
    await webhook_log.set_outcome(session, event.id, outcome)
    return outcome


__all__ = ["HANDLERS", "PaymentHold", "apply_event"]
