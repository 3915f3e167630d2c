"""``POST /webhooks/stripe``: Stripe events, verified, applied once, in any order.

1. The ``Stripe-Signature`` header is checked with the endpoint secret by
   `stripe.Webhook.construct_event` (HMAC-SHA256 of ``"{t}.{body}"``; timestamps more
   than 300 s old are refused), and timestamps more than 300 s in the future are
   refused too. A missing or bad signature, or a body that is not a Stripe event:
   400, nothing written.
2. One transaction: the event id goes into `webhook_events` (``ON CONFLICT DO
   NOTHING``: a redelivery answers 200 and changes nothing), then the event is
   applied through the domain, which records it in the order's `payment_events`
   with its Stripe event id. Stock events are published after the commit.
3. The order is found by the PaymentIntent id and the ``metadata.order_id`` Stripe
   echoes back; when they disagree nothing is done. Unknown event types are
   acknowledged (200). Nothing slow happens here: no call to Stripe.

Ordering (Stripe retries for days and does not keep order): each domain function
looks at the locked order's state, so any order of events ends in the same state.
A refund event before the payment's success applies the success first (a charge
exists, so the payment succeeded); a cancel after a success is ignored; a success
after a cancel or an expiry sells from the stock left, or flags NEEDS_ATTENTION.
Refund rules (our own refunds, dashboard refunds): `inventory.provider_events`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gql_inventory.inventory import orders, payment_outcomes, provider_events
from gql_inventory.inventory.provider_events import ReportedRefund
from gql_inventory.logs import get_logger
from gql_inventory.models import Order, WebhookEvent
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.uow import run_in_transaction

log = get_logger(__name__)

#: Seconds a signature's timestamp may be away from now, either way.
TOLERANCE_SECONDS = 300

REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)


class InvalidSignature(Exception):
    """The ``Stripe-Signature`` header is missing, wrong, too old or too far ahead."""


class MalformedEvent(ValueError):
    """The body is signed but is not a Stripe event this endpoint can read."""


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """The parts of a verified event the handlers use; `obj` is ``data.object``."""

    id: str
    type: str
    obj: dict[str, Any]


def _timestamp(header: str) -> int | None:
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def verify_event(
    payload: bytes, header: str | None, secret: str, *, now: float | None = None
) -> StripeEvent:
    """Verify the signature as Stripe documents it and read the event.

    Raises `InvalidSignature` (missing, bad, stale or future signature) or
    `MalformedEvent`.
    """
    try:
        event = stripe.Webhook.construct_event(payload, header, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(str(exc)) from exc
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # not JSON / not an object
        raise MalformedEvent(f"not a Stripe event: {exc}") from exc
    assert header is not None  # construct_event refuses a missing header
    signed_at = _timestamp(header)
    now = time.time() if now is None else now
    if signed_at is None or signed_at > now + TOLERANCE_SECONDS:
        raise InvalidSignature(f"timestamp {signed_at} is more than {TOLERANCE_SECONDS} s ahead")
    values = event.to_dict()
    data = values.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, type_ = values.get("id"), values.get("type")
    if not (isinstance(event_id, str) and event_id and isinstance(type_, str) and type_):
        raise MalformedEvent("an event needs an id and a type")
    if not isinstance(obj, dict):
        raise MalformedEvent("an event needs data.object")
    return StripeEvent(id=event_id, type=type_, obj=obj)


# ---------------------------------------------------------------- reading objects


def _str(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _int(obj: dict[str, Any], key: str) -> int | None:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _id_of(value: Any) -> str | None:
    """An id, whether the field holds it or the expanded object."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        return _str(value, "id")
    return None


def _required_int(obj: dict[str, Any], key: str) -> int:
    value = _int(obj, key)
    if value is None:
        raise MalformedEvent(f"{obj.get('object')} without an integer {key!r}")
    return value


def _required_str(obj: dict[str, Any], key: str) -> str:
    value = _str(obj, key)
    if value is None:
        raise MalformedEvent(f"{obj.get('object')} without {key!r}")
    return value


def _refund(obj: dict[str, Any]) -> ReportedRefund:
    return ReportedRefund(
        refund_id=_required_str(obj, "id"),
        amount=_required_int(obj, "amount"),
        currency=_required_str(obj, "currency"),
        status=_str(obj, "status") or "pending",
    )


def _payment_intent_id(event: StripeEvent) -> str | None:
    if event.obj.get("object") == "payment_intent":
        return _str(event.obj, "id")
    return _id_of(event.obj.get("payment_intent"))


async def _find_order(
    session: AsyncSession, payment_intent_id: str | None, metadata: Any
) -> tuple[uuid.UUID | None, str | None]:
    """The order an event is about, or ``(None, why not)``."""
    raw = metadata.get("order_id") if isinstance(metadata, dict) else None
    try:
        meta_id = uuid.UUID(raw) if isinstance(raw, str) else None
    except ValueError:
        meta_id = None
    if payment_intent_id is not None:
        by_intent = (
            await session.execute(
                select(Order.id).where(Order.payment_intent_id == payment_intent_id)
            )
        ).scalar_one_or_none()
        if by_intent is not None:
            if meta_id is not None and meta_id != by_intent:
                return None, "order_mismatch"
            return by_intent, None
    if meta_id is None:
        return None, "order_not_found"
    row = (
        await session.execute(select(Order.id, Order.payment_intent_id).where(Order.id == meta_id))
    ).first()
    if row is None:
        return None, "order_not_found"
    if payment_intent_id is not None and row.payment_intent_id not in (None, payment_intent_id):
        return None, "payment_intent_mismatch"
    return meta_id, None


# ---------------------------------------------------------------- handlers

Handler = Callable[[AsyncSession, uuid.UUID, StripeEvent, Settings], Awaitable[str]]


async def _succeeded(
    session: AsyncSession, order_id: uuid.UUID, event: StripeEvent, _: Settings
) -> str:
    amount = _int(event.obj, "amount_received") or _required_int(event.obj, "amount")
    outcome = await payment_outcomes.payment_succeeded(
        session,
        order_id,
        reference=event.id,
        amount=amount,
        currency=_required_str(event.obj, "currency"),
    )
    if outcome == "already_paid":
        await orders.record_payment_event(
            session, order_id, event.type, provider_event_id=event.id, detail="already applied"
        )
    return outcome


async def _failed(
    session: AsyncSession, order_id: uuid.UUID, event: StripeEvent, _: Settings
) -> str:
    error = event.obj.get("last_payment_error")
    message = None
    if isinstance(error, dict):
        code = _str(error, "decline_code") or _str(error, "code")
        text = _str(error, "message")
        message = ": ".join(part for part in (code, text) if part) or None
    return await payment_outcomes.payment_failed(
        session, order_id, error=message, reference=event.id
    )


async def _in_progress(
    session: AsyncSession, order_id: uuid.UUID, event: StripeEvent, settings: Settings
) -> str:
    return await provider_events.payment_in_progress(
        session,
        order_id,
        kind=event.type,
        hold_seconds=settings.payment_hold_seconds,
        max_hold_seconds=settings.payment_hold_max_seconds,
        reference=event.id,
    )


async def _canceled(
    session: AsyncSession, order_id: uuid.UUID, event: StripeEvent, _: Settings
) -> str:
    outcome = await payment_outcomes.payment_canceled(session, order_id, reference=event.id)
    if outcome == "ignored":
        await orders.record_payment_event(
            session,
            order_id,
            event.type,
            provider_event_id=event.id,
            detail="ignored: the order is no longer pending",
        )
    return outcome


async def _charge_refunded(
    session: AsyncSession, order_id: uuid.UUID, event: StripeEvent, _: Settings
) -> str:
    charge = event.obj
    listed = charge.get("refunds")  # only when expanded (API versions >= 2022-11-15)
    refunds = []
    if isinstance(listed, dict) and isinstance(listed.get("data"), list):
        refunds = [_refund(r) for r in listed["data"] if isinstance(r, dict)]
    return await provider_events.charge_refunded(
        session,
        order_id,
        amount_refunded=_required_int(charge, "amount_refunded"),
        fully_refunded=charge.get("refunded") is True,
        charge_amount=_int(charge, "amount_captured") or _int(charge, "amount"),
        currency=_required_str(charge, "currency"),
        refunds=refunds,
        kind=event.type,
        reference=event.id,
    )


async def _refund_event(
    session: AsyncSession, order_id: uuid.UUID, event: StripeEvent, _: Settings
) -> str:
    return await provider_events.refund_reported(
        session, order_id, _refund(event.obj), kind=event.type, reference=event.id
    )


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _succeeded,
    "payment_intent.payment_failed": _failed,
    "payment_intent.processing": _in_progress,
    "payment_intent.requires_action": _in_progress,
    "payment_intent.canceled": _canceled,
    "charge.refunded": _charge_refunded,
    **dict.fromkeys(REFUND_EVENTS, _refund_event),
}


async def apply_event(session: AsyncSession, event: StripeEvent, settings: Settings) -> str:
    """Store the event id and apply the event, in the caller's transaction.

    Returns the outcome (``duplicate`` when the id was seen before; ``ignored`` for
    types not handled). Raises `MalformedEvent` (the caller rolls back).
    """
    fresh = await session.execute(
        insert(WebhookEvent)
        .values(id=event.id, provider="stripe", type=event.type)
        .on_conflict_do_nothing(index_elements=[WebhookEvent.id])
        .returning(WebhookEvent.id)
    )
    if fresh.first() is None:
        return "duplicate"
    handler = HANDLERS.get(event.type)
    if handler is None:
        outcome = "ignored"
    else:
        order_id, problem = await _find_order(
            session, _payment_intent_id(event), event.obj.get("metadata")
        )
        if order_id is None:
            outcome = problem or "order_not_found"
        else:
            outcome = await handler(session, order_id, event, settings)
    await session.execute(
        update(WebhookEvent).where(WebhookEvent.id == event.id).values(outcome=outcome)
    )
    return outcome


def stripe_webhook(services: Services) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint, bound to the process's services."""

    async def endpoint(request: Request) -> Response:
        payload = await request.body()
        header = request.headers.get("stripe-signature")
        try:
            event = verify_event(payload, header, services.settings.stripe_webhook_secret)
            outcome = await run_in_transaction(
                services, lambda s: apply_event(s, event, services.settings)
            )
        except InvalidSignature as exc:
            log.warning("stripe.webhook_refused", reason="signature", error=str(exc))
            return JSONResponse({"error": "invalid signature"}, status_code=400)
        except MalformedEvent as exc:
            log.warning("stripe.webhook_refused", reason="malformed", error=str(exc))
            return JSONResponse({"error": "malformed event"}, status_code=400)
        log.info("stripe.webhook", event_id=event.id, type=event.type, outcome=outcome)
        return JSONResponse({"received": True, "id": event.id, "outcome": outcome})

    return endpoint


__all__ = [
    "InvalidSignature",
    "MalformedEvent",
    "StripeEvent",
    "apply_event",
    "stripe_webhook",
    "verify_event",
]
