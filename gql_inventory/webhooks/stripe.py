"""``POST /webhooks/stripe``: verify the signature, apply the event in one transaction
through the one use case `orders.stripe_events.apply_event`, answer its outcome (200).

A signature missing, bad (`stripe.WebhookSignature.verify_header`), older or more than
300 s ahead, or a body that is not a Stripe event: 400, nothing written. PostgreSQL
unreachable: 503 with ``Retry-After``, so Stripe redelivers. No call to Stripe here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import stripe
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gql_inventory.domain.uow import STRIPE
from gql_inventory.kit import metrics
from gql_inventory.kit.logs import get_logger
from gql_inventory.kit.outage import is_database_outage
from gql_inventory.orders.payment_states import PaymentEventKind
from gql_inventory.orders.stripe_events import PaymentHold, apply_event
from gql_inventory.orders.stripe_objects import MalformedEvent, StripeEvent, read_event
from gql_inventory.services import Services
from gql_inventory.uow import run_in_transaction

log = get_logger(__name__)

#: Seconds a signature's timestamp may be away from now, either way.
TOLERANCE_SECONDS = 300
#: ``Retry-After`` of a 503 while the database is unreachable (a hint: Stripe keeps
#: its own retry schedule).
RETRY_AFTER_SECONDS = 30
_KNOWN_TYPES = frozenset(kind.value for kind in PaymentEventKind)


class InvalidSignature(Exception):
    """The ``Stripe-Signature`` header is missing, wrong, too old or too far ahead."""


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
    """Verify the signature with the stripe library, then read the event
    (`stripe_objects.read_event`). Raises `InvalidSignature` (missing, bad, stale or
    future signature) or `MalformedEvent` (not UTF-8, or not a readable event)."""
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
    return read_event(payload)


def stripe_webhook(services: Services) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint, bound to the process's services: 200 (the outcome), 400
    or 503 with ``Retry-After`` (Stripe retries any non-2xx answer for up to three days:
    https://docs.stripe.com/webhooks). Raises `ConfigurationError` when the settings
    have no usable webhook secret."""
    secret = services.settings.webhook_secret()

    async def endpoint(request: Request) -> Response:
        try:
            event = verify_event(
                await request.body(), request.headers.get("stripe-signature"), secret
            )
            settings = services.settings  # read per request: it may be replaced
            hold = PaymentHold(settings.payment_hold_seconds, settings.payment_hold_max_seconds)
            outcome = await run_in_transaction(
                services, lambda uow: apply_event(uow, event, hold), actor=STRIPE
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
        label = event.type if event.type in _KNOWN_TYPES else "other"
        metrics.WEBHOOK_EVENTS.labels(label, outcome.value).inc()
        log.info("stripe.webhook", event_id=event.id, type=event.type, outcome=outcome.value)
        return JSONResponse({"received": True, "id": event.id, "outcome": outcome})

    return endpoint
