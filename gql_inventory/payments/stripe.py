"""Stripe payments through the official `stripe` library (`StripeClient`, async methods).

Amounts: orders store integers in the currency's minor units with the exponent of
`gql_inventory.kit.money`, which follows Stripe's own table (zero-decimal currencies such
as JPY are whole units, e.g. ``1500`` JPY; two-decimal ones are cents), so they go to
Stripe unchanged. Currencies go lower-case, as Stripe writes them.

Idempotency: a PaymentIntent is created with the key ``str(order_id)`` (an order id is
derived from its reservation, so a retried checkout gets the same PaymentIntent back);
refunds carry the domain's key (``refund:<order id>:<n>``); cancels ``cancel:<pi>``.
Every Stripe error becomes `ProviderFailure` with Stripe's message and code.
"""

from __future__ import annotations

import uuid
from typing import Any

import stripe
from stripe.params import PaymentIntentCreateParams

from gql_inventory.models.orders import RefundStatus
from gql_inventory.payments.base import (
    CreatedPayment,
    PaymentRequest,
    PaymentState,
    ProviderFailure,
    ProviderRefund,
)

#: PaymentIntents made by the offline provider: nothing to cancel at Stripe.
OFFLINE_PREFIX = "pi_offline_"


def _refund_status(value: str | None) -> RefundStatus:
    """Stripe's status of a refund (https://docs.stripe.com/api/refunds/object): none yet,
    or one not documented when this was written, is ``pending`` (not final: a later
    ``refund.updated`` event says what it became)."""
    try:
        return RefundStatus(value or RefundStatus.PENDING)
    except ValueError:
        return RefundStatus.PENDING


class _HTTPXClient(stripe.HTTPXClient):
    """stripe's httpx client, sending the form-encoded body as ``content=``.

    stripe 16 passes the encoded body as ``data=``, which httpx 0.28 deprecates
    (a DeprecationWarning on every request); the request itself is unchanged.
    """

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Any, post_data: Any
    ) -> list[Any]:
        args: list[Any] = super()._get_request_args_kwargs(method, url, headers, post_data)
        kwargs: dict[str, Any] = args[1]
        body = kwargs.pop("data", None)
        if body:
            kwargs["content"] = body
        return args


def _failure(exc: stripe.StripeError, action: str) -> ProviderFailure:
    message = exc.user_message or str(exc) or type(exc).__name__
    return ProviderFailure(f"Stripe refused to {action}: {message}", code=exc.code)


def _order_id_from_key(idempotency_key: str) -> str | None:
    """The order id in the domain's refund keys (``refund:<order id>:<n>``, ``cancel:<id>``)."""
    parts = idempotency_key.split(":")
    if len(parts) >= 2:
        try:
            return str(uuid.UUID(parts[1]))
        except ValueError:
            return None
    return None


class StripePaymentProvider:
    """PaymentIntents, cancels and refunds at Stripe (or at `api_base`, e.g. a test server)."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout_seconds: float = 20.0,
    ) -> None:
        self._http = _HTTPXClient(timeout=timeout_seconds)
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        """Create a PaymentIntent for the order total (minor units), idempotent per order."""
        params: PaymentIntentCreateParams = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "automatic_payment_methods": {"enabled": True},
            "metadata": {
                "order_id": str(request.order_id),
                "reservation_id": str(request.reservation_id),
            },
        }
        if request.email:
            params["receipt_email"] = request.email
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params=params, options={"idempotency_key": str(request.order_id)}
            )
        except stripe.StripeError as exc:
            raise _failure(exc, "create the payment") from exc
        if not intent.client_secret:
            raise ProviderFailure("Stripe returned a PaymentIntent without a client secret")
        return CreatedPayment(payment_intent_id=intent.id, client_secret=intent.client_secret)

    async def cancel_payment(self, payment_intent_id: str) -> None:
        """Cancel an unpaid PaymentIntent; one that is already canceled counts as done."""
        if payment_intent_id.startswith(OFFLINE_PREFIX):
            return
        try:
            await self.client.v1.payment_intents.cancel_async(
                payment_intent_id, options={"idempotency_key": f"cancel:{payment_intent_id}"}
            )
        except stripe.StripeError as exc:
            if _already_canceled(exc):
                return
            raise _failure(exc, "cancel the payment") from exc

    async def refund(
        self, payment_intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> ProviderRefund:
        """Refund `amount` minor units of a succeeded PaymentIntent (metadata: the order id).

        `amount` None leaves it out: Stripe then refunds all that is not refunded yet
        (https://docs.stripe.com/api/refunds/create, `amount`).
        """
        if payment_intent_id.startswith(OFFLINE_PREFIX):
            raise ProviderFailure("this order was paid offline, not through Stripe")
        order_id = _order_id_from_key(idempotency_key)
        try:
            params: stripe.params.RefundCreateParams = {
                "payment_intent": payment_intent_id,
                "metadata": {"order_id": order_id} if order_id else {},
            }
            if amount is not None:
                params["amount"] = amount
            refund = await self.client.v1.refunds.create_async(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise _failure(exc, "refund") from exc
        return ProviderRefund(
            refund_id=refund.id, status=_refund_status(refund.status), amount=refund.amount
        )

    async def retrieve_payment(self, payment_intent_id: str) -> PaymentState | None:
        """Retrieve a PaymentIntent (https://docs.stripe.com/api/payment_intents/retrieve).

        None for an offline payment id (nothing at Stripe). Raises `ProviderFailure`,
        also when Stripe's answer lacks a status, an amount or a currency.
        """
        if payment_intent_id.startswith(OFFLINE_PREFIX):
            return None
        try:
            intent = await self.client.v1.payment_intents.retrieve_async(payment_intent_id)
        except stripe.StripeError as exc:
            raise _failure(exc, "retrieve the payment") from exc
        return _payment_state(payment_intent_id, intent.to_dict())

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in stripe


def _payment_state(payment_intent_id: str, intent: dict[str, Any]) -> PaymentState:
    """Read the fields of a PaymentIntent the pending-payment check needs."""
    status, currency = intent.get("status"), intent.get("currency")
    amount, received = intent.get("amount"), intent.get("amount_received") or 0
    if not (isinstance(status, str) and isinstance(currency, str) and isinstance(amount, int)):
        raise ProviderFailure(f"Stripe returned an unreadable PaymentIntent {payment_intent_id}")
    if not isinstance(received, int) or isinstance(received, bool) or isinstance(amount, bool):
        raise ProviderFailure(f"Stripe returned an unreadable PaymentIntent {payment_intent_id}")
    metadata = intent.get("metadata")
    order_id = metadata.get("order_id") if isinstance(metadata, dict) else None
    error = intent.get("last_payment_error")
    message = error.get("message") if isinstance(error, dict) else None
    return PaymentState(
        payment_intent_id=str(intent.get("id") or payment_intent_id),
        status=status,
        amount=amount,
        amount_received=received,
        currency=currency,
        order_id=order_id if isinstance(order_id, str) else None,
        last_payment_error=message if isinstance(message, str) else None,
    )


def _already_canceled(exc: stripe.StripeError) -> bool:
    """Stripe's answer to cancelling a canceled PaymentIntent (unexpected state, canceled)."""
    if exc.code != "payment_intent_unexpected_state" or not isinstance(exc.json_body, dict):
        return False
    error = exc.json_body.get("error")
    intent = error.get("payment_intent") if isinstance(error, dict) else None
    return isinstance(intent, dict) and intent.get("status") == "canceled"
