"""``POST /webhooks/stripe``: Stripe events, verified, applied once, in any order.

1. The ``Stripe-Signature`` header is checked with the endpoint secret by
   `stripe.WebhookSignature.verify_header` (HMAC-SHA256 of ``"{t}.{body}"``;
   timestamps more than 300 s old are refused), and timestamps more than 300 s in
   the future are refused too. A missing or bad signature, or a body that is not a
   Stripe event (or lacks a field a handler needs): 400, nothing written.
2. One transaction: the event id goes into `webhook_events` (``ON CONFLICT DO
   NOTHING``: a redelivery answers 200 and changes nothing), then the event is
   applied through the domain, which records it in the order's `payment_events`
   with its Stripe event id. Stock events are published after the commit.
3. The order is found by the PaymentIntent id and the ``metadata.order_id`` Stripe
   echoes back; when they disagree nothing is done. Unknown event types are
   acknowledged (200). Nothing slow happens here: no call to Stripe.
4. Every number and id an event carries is checked before it is used
   (`stripe_objects`) and against the order (`orders.event_checks`): an
   impossible event (amount 0, negative, above Stripe's largest, above what was
   paid; a refund of an unpaid order) is recorded and answered 200 ``invalid``,
   changing no stock and no status.
5. While PostgreSQL is unreachable: 503 with ``Retry-After``, so Stripe redelivers.

Ordering (Stripe retries for days and does not keep order): each domain function
looks at the locked order's state, so any order of events ends in the same state.
A ``charge.refunded`` before the payment's success applies the success first (the
charge says the payment succeeded; a refund event alone on an unpaid order is
``invalid``); a cancel after a success is ignored; a success
after a cancel or an expiry sells from the stock left, or flags NEEDS_ATTENTION.
Refund rules (our own refunds, dashboard refunds): `orders.provider_events`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gql_inventory.domain.uow import STRIPE, UnitOfWork
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.outage import is_database_outage
from gql_inventory.orders import (
    orders,
    payment_outcomes,
    payment_progress,
    provider_events,
    webhook_log,
)
from gql_inventory.orders.lookup import order_for_payment
from gql_inventory.orders.payment_states import Outcome, PaymentEventKind
from gql_inventory.services import Services
from gql_inventory.settings import Settings
from gql_inventory.uow import run_in_transaction
from gql_inventory.webhooks import stripe_objects as objects
from gql_inventory.webhooks.stripe_objects import (
    InvalidEvent,
    MalformedEvent,
    is_event_id,
    is_event_type,
)

log = get_logger(__name__)

#: Seconds a signature's timestamp may be away from now, either way.
TOLERANCE_SECONDS = 300

#: ``Retry-After`` of a 503 while the database is unreachable (a hint: Stripe keeps
#: its own retry schedule).
RETRY_AFTER_SECONDS = 30

REFUND_EVENTS = frozenset(
    {
        PaymentEventKind.REFUND_CREATED,
        PaymentEventKind.REFUND_UPDATED,
        PaymentEventKind.REFUND_FAILED,
        PaymentEventKind.CHARGE_REFUND_UPDATED,
    }
)


class InvalidSignature(Exception):
    """The ``Stripe-Signature`` header is missing, wrong, too old or too far ahead."""


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """The parts of a verified event the handlers use; `obj` is ``data.object``."""

    id: str
    type: str
    obj: dict[str, Any]

    @property
    def kind(self) -> PaymentEventKind:
        """The event's type as recorded in the order's history. Raises `ValueError` for a
        type not handled here (handlers are only called for types of `HANDLERS`)."""
        return PaymentEventKind(self.type)


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

    The signature is checked by the stripe library (`stripe.WebhookSignature`); the
    body is then read as plain JSON (no StripeObject is built: nothing recursive runs
    on a deeply nested body). Raises `InvalidSignature` (missing, bad, stale or future
    signature) or `MalformedEvent` (not UTF-8, not JSON, nested too deeply, no
    storable id or type, no ``data.object``).
    """
    if not header:
        raise InvalidSignature("no Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise MalformedEvent("the body is not UTF-8") from exc
    signed_at = _timestamp(header)
    now = time.time() if now is None else now
    if signed_at is None or signed_at > now + TOLERANCE_SECONDS:
        raise InvalidSignature(f"timestamp {signed_at} is more than {TOLERANCE_SECONDS} s ahead")
    try:
        values = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # not JSON, or nested past the stack
        raise MalformedEvent(f"not a Stripe event: {type(exc).__name__}") from exc
    if not isinstance(values, dict):
        raise MalformedEvent("an event is a JSON object")
    data = values.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    event_id, type_ = values.get("id"), values.get("type")
    if not (is_event_id(event_id) and is_event_type(type_)):
        raise MalformedEvent("an event needs a Stripe id and a type")
    if not isinstance(obj, dict):
        raise MalformedEvent("an event needs data.object")
    return StripeEvent(id=str(event_id), type=str(type_), obj=obj)


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

Handler = Callable[[UnitOfWork, uuid.UUID, StripeEvent, Settings], Awaitable[Outcome]]


async def _succeeded(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: Settings
) -> Outcome:
    session = uow.session
    received = objects.optional_amount(event.obj, "amount_received")
    amount = received or objects.amount(event.obj, "amount")
    currency = objects.currency(event.obj)
    outcome = await payment_outcomes.payment_succeeded(
        uow, order_id, reference=event.id, amount=amount, currency=currency
    )
    if outcome is Outcome.ALREADY_PAID:
        await orders.record_payment_event(
            session, order_id, event.kind, provider_event_id=event.id, detail="already applied"
        )
    return outcome


async def _failed(uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: Settings) -> Outcome:
    session = uow.session
    error = event.obj.get("last_payment_error")
    message = None
    if isinstance(error, dict):
        code = objects.text(error, "decline_code") or objects.text(error, "code")
        text = objects.text(error, "message")
        message = ": ".join(part for part in (code, text) if part) or None
    return await payment_outcomes.payment_failed(
        session, order_id, error=message, reference=event.id
    )


async def _in_progress(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, settings: Settings
) -> Outcome:
    session = uow.session
    return await payment_progress.payment_in_progress(
        session,
        order_id,
        kind=event.kind,
        hold_seconds=settings.payment_hold_seconds,
        max_hold_seconds=settings.payment_hold_max_seconds,
        reference=event.id,
    )


async def _canceled(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: Settings
) -> Outcome:
    session = uow.session
    outcome = await payment_outcomes.payment_canceled(uow, order_id, reference=event.id)
    if outcome is Outcome.IGNORED:
        await orders.record_payment_event(
            session,
            order_id,
            event.kind,
            provider_event_id=event.id,
            detail="ignored: the order is no longer pending",
        )
    return outcome


async def _charge_refunded(
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: Settings
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
    uow: UnitOfWork, order_id: uuid.UUID, event: StripeEvent, _: Settings
) -> Outcome:
    return await provider_events.refund_reported(
        uow, order_id, objects.refund(event.obj), kind=event.kind, reference=event.id
    )


HANDLERS: dict[str, Handler] = {
    PaymentEventKind.PAYMENT_INTENT_SUCCEEDED: _succeeded,
    PaymentEventKind.PAYMENT_INTENT_PAYMENT_FAILED: _failed,
    PaymentEventKind.PAYMENT_INTENT_PROCESSING: _in_progress,
    PaymentEventKind.PAYMENT_INTENT_REQUIRES_ACTION: _in_progress,
    PaymentEventKind.PAYMENT_INTENT_CANCELED: _canceled,
    PaymentEventKind.CHARGE_REFUNDED: _charge_refunded,
    **dict.fromkeys(REFUND_EVENTS, _refund_event),
}


async def _apply(uow: UnitOfWork, event: StripeEvent, settings: Settings) -> Outcome:
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
            return await handler(uow, order_id, event, settings)
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


async def apply_event(uow: UnitOfWork, event: StripeEvent, settings: Settings) -> Outcome:
    """Store the event id and apply the event, in the caller's transaction.

    Returns the outcome (``duplicate`` when the id was seen before; ``ignored`` for
    types not handled; ``invalid`` for an impossible event: a value out of range
    (`stripe_objects.InvalidEvent`) or impossible for the order
    (`orders.event_checks`), recorded and changing nothing). Raises
    `MalformedEvent` (the caller rolls back).
    """
    session = uow.session
    if not await webhook_log.record_delivery(
        session, event.id, provider="stripe", event_type=event.type
    ):
        return Outcome.DUPLICATE
    outcome = await _apply(uow, event, settings)
    await webhook_log.set_outcome(session, event.id, outcome)
    return outcome


_KNOWN_TYPES = frozenset(kind.value for kind in PaymentEventKind)


def _type_label(event_type: str) -> str:
    """The metric label of a Stripe event type: the types we know, else "other"."""
    return event_type if event_type in _KNOWN_TYPES else "other"


def stripe_webhook(services: Services) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint, bound to the process's services.

    Answers 200 (applied, duplicate, ignored, invalid), 400 (bad signature or
    malformed body: nothing written) or, while PostgreSQL is unreachable, 503 with
    ``Retry-After`` so that Stripe delivers the event again later (Stripe retries
    any non-2xx answer for up to three days: https://docs.stripe.com/webhooks).
    Raises `ConfigurationError` when the settings have no usable webhook secret.
    """
    secret = services.settings.webhook_secret()

    async def endpoint(request: Request) -> Response:
        payload = await request.body()
        header = request.headers.get("stripe-signature")
        try:
            event = verify_event(payload, header, secret)
            outcome = await run_in_transaction(
                services, lambda s: apply_event(s, event, services.settings), actor=STRIPE
            )
        except InvalidSignature as exc:
            metrics.WEBHOOK_EVENTS.labels("unknown", "refused_signature").inc()
            log.warning("stripe.webhook_refused", reason="signature", error=str(exc))
            return JSONResponse({"error": "invalid signature"}, status_code=400)
        except MalformedEvent as exc:
            metrics.WEBHOOK_EVENTS.labels("unknown", "refused_malformed").inc()
            log.warning("stripe.webhook_refused", reason="malformed", error=str(exc))
            return JSONResponse({"error": "malformed event"}, status_code=400)
        except Exception as exc:
            if not is_database_outage(exc):
                raise
            metrics.WEBHOOK_EVENTS.labels("unknown", "unavailable").inc()
            log.warning("stripe.webhook_unavailable", error=type(exc).__name__)
            return JSONResponse(
                {"error": "database unavailable, deliver again later"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        metrics.WEBHOOK_EVENTS.labels(_type_label(event.type), outcome.value).inc()
        log.info("stripe.webhook", event_id=event.id, type=event.type, outcome=outcome.value)
        return JSONResponse({"received": True, "id": event.id, "outcome": outcome})

    return endpoint


__all__ = [
    "InvalidEvent",
    "InvalidSignature",
    "MalformedEvent",
    "StripeEvent",
    "apply_event",
    "stripe_webhook",
    "verify_event",
]
