"""Stripe-shaped events about an order, signed as Stripe signs them.

Used by `gql-inventory stripe-event` (so the whole flow runs offline, like
``stripe trigger``) and by the tests. Objects follow Stripe's API reference:
PaymentIntent, Charge (without its ``refunds`` list, which Stripe stopped including
in API version 2022-11-15) and Refund, wrapped in the event envelope
``{"id": "evt_...", "object": "event", "type": ..., "data": {"object": ...}}``.
The ``Stripe-Signature`` header comes from the stripe library itself
(`stripe.WebhookSignature.generate_signature_header`):
``t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.models import Order, Refund, RefundSource

PAYMENT_INTENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "requires_payment_method",
    "payment_intent.processing": "processing",
    "payment_intent.requires_action": "requires_action",
    "payment_intent.canceled": "canceled",
}
REFUND_EVENT_TYPES = ("refund.created", "refund.updated", "refund.failed", "charge.refund.updated")
EVENT_TYPES = (*PAYMENT_INTENT_STATUS, "charge.refunded", *REFUND_EVENT_TYPES)

DECLINED = "Your card was declined."


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What an event about an order needs: its PaymentIntent, total (minor units), refunds."""

    order_id: uuid.UUID
    reservation_id: uuid.UUID | None
    payment_intent_id: str
    amount: int
    currency: str
    refunds: tuple[tuple[str, int], ...] = ()  # (provider refund id, amount), oldest first


async def load_order_facts(session: AsyncSession, order_id: uuid.UUID) -> OrderFacts:
    """Read an order's facts. Raises LookupError (no such order, or no payment)."""
    order = (await session.execute(select(Order).where(Order.id == order_id))).scalar_one_or_none()
    if order is None:
        raise LookupError(f"no order {order_id}")
    if not order.payment_intent_id:
        raise LookupError(f"order {order_id} has no payment")
    refunds = (
        await session.execute(
            select(Refund.provider_refund_id, Refund.amount)
            .where(
                Refund.order_id == order_id,
                Refund.provider_refund_id.is_not(None),
                Refund.source != RefundSource.UNATTRIBUTED,
            )
            .order_by(Refund.id)
        )
    ).all()
    return OrderFacts(
        order_id=order.id,
        reservation_id=order.reservation_id,
        payment_intent_id=order.payment_intent_id,
        amount=order.total_amount,
        currency=order.currency_code,
        refunds=tuple((str(r.provider_refund_id), int(r.amount)) for r in refunds),
    )


def _digest(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:24]


def charge_id(payment_intent_id: str) -> str:
    """The (stable) id of the charge of a PaymentIntent in these events."""
    return f"ch_{_digest(payment_intent_id)}"


def _metadata(facts: OrderFacts) -> dict[str, str]:
    meta = {"order_id": str(facts.order_id)}
    if facts.reservation_id is not None:
        meta["reservation_id"] = str(facts.reservation_id)
    return meta


def payment_intent_object(
    facts: OrderFacts,
    *,
    status: str,
    amount: int | None = None,
    currency: str | None = None,
    error_message: str | None = None,
) -> dict[str, Any]:
    """A PaymentIntent as Stripe returns it; `amount`/`currency` override the order's."""
    pi, now = facts.payment_intent_id, int(time.time())
    amount = facts.amount if amount is None else amount
    error = None
    if error_message is not None:
        error = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": error_message,
        }
    return {
        "id": pi,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": amount if status == "succeeded" else 0,
        "automatic_payment_methods": {"enabled": True},
        "canceled_at": now if status == "canceled" else None,
        "cancellation_reason": "abandoned" if status == "canceled" else None,
        "capture_method": "automatic",
        "client_secret": f"{pi}_secret_{_digest(pi)}",
        "confirmation_method": "automatic",
        "created": now,
        "currency": (currency or facts.currency).lower(),
        "last_payment_error": error,
        "latest_charge": charge_id(pi) if status == "succeeded" else None,
        "livemode": False,
        "metadata": _metadata(facts),
        "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {}}
        if status == "requires_action"
        else None,
        "payment_method_types": ["card"],
        "status": status,
    }


def charge_object(facts: OrderFacts, *, amount_refunded: int) -> dict[str, Any]:
    """The PaymentIntent's charge with `amount_refunded` refunded so far (cumulative)."""
    return {
        "id": charge_id(facts.payment_intent_id),
        "object": "charge",
        "amount": facts.amount,
        "amount_captured": facts.amount,
        "amount_refunded": amount_refunded,
        "captured": True,
        "created": int(time.time()),
        "currency": facts.currency.lower(),
        "livemode": False,
        "metadata": _metadata(facts),
        "paid": True,
        "payment_intent": facts.payment_intent_id,
        "refunded": amount_refunded >= facts.amount,
        "status": "succeeded",
    }


def refund_object(
    facts: OrderFacts, *, refund_id: str, amount: int, status: str = "succeeded"
) -> dict[str, Any]:
    """A Refund of the PaymentIntent's charge."""
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "charge": charge_id(facts.payment_intent_id),
        "created": int(time.time()),
        "currency": facts.currency.lower(),
        "metadata": {"order_id": str(facts.order_id)},
        "payment_intent": facts.payment_intent_id,
        "reason": None,
        "status": status,
    }


def envelope(type_: str, obj: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The event around `obj`, with a fresh ``evt_`` id unless given."""
    return {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
    }


def event_for_order(
    type_: str,
    facts: OrderFacts,
    *,
    amount: int | None = None,
    currency: str | None = None,
    refund_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """An event of `type_` (one of `EVENT_TYPES`) about the order.

    `amount` (minor units): for PaymentIntent events the amount paid (default the
    order total); for ``charge.refunded`` the cumulative amount refunded (default:
    what this service refunded, or the whole total when it refunded nothing); for
    refund events the refund's amount (default: that of `refund_id` when known here,
    else the total). Refund events are about `refund_id`, default the latest refund
    known here, else a new one. Raises ValueError for other types.
    """
    if type_ in PAYMENT_INTENT_STATUS:
        obj = payment_intent_object(
            facts,
            status=PAYMENT_INTENT_STATUS[type_],
            amount=amount,
            currency=currency,
            error_message=DECLINED if type_ == "payment_intent.payment_failed" else None,
        )
    elif type_ == "charge.refunded":
        known = sum(a for _, a in facts.refunds)
        obj = charge_object(
            facts, amount_refunded=amount if amount is not None else known or facts.amount
        )
    elif type_ in REFUND_EVENT_TYPES:
        amounts = dict(facts.refunds)
        if refund_id is None:
            refund_id = facts.refunds[-1][0] if facts.refunds else f"re_{secrets.token_hex(12)}"
        if amount is None:
            amount = amounts.get(refund_id, facts.amount)
        status = "failed" if type_ == "refund.failed" else "succeeded"
        obj = refund_object(facts, refund_id=refund_id, amount=amount, status=status)
    else:
        raise ValueError(f"unsupported event type {type_!r}; one of: {', '.join(EVENT_TYPES)}")
    return envelope(type_, obj, event_id=event_id)


def encode(event: dict[str, Any]) -> str:
    """The body as Stripe sends it (pretty-printed JSON)."""
    return json.dumps(event, indent=2)


def sign(payload: str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for `payload`, computed by the stripe library."""
    return str(
        stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    )


def signed(
    event: dict[str, Any], secret: str, *, timestamp: int | None = None
) -> tuple[str, dict[str, str]]:
    """``(body, headers)`` of a delivery of `event`, as Stripe would post it."""
    payload = encode(event)
    return payload, {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": sign(payload, secret, timestamp=timestamp),
    }
