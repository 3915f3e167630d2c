"""The payment provider interface. Amounts are integers in the currency's minor units."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from gql_inventory.models.orders import RefundStatus


class ProviderFailure(Exception):
    """The provider refused or could not be reached; `message` is safe to show an admin."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What checkout asks the provider for: `amount` minor units of ISO `currency`."""

    order_id: uuid.UUID
    reservation_id: uuid.UUID
    amount: int
    currency: str
    email: str | None


@dataclass(frozen=True, slots=True)
class CreatedPayment:
    """A PaymentIntent (or the offline equivalent) and the secret the browser confirms with."""

    payment_intent_id: str
    client_secret: str


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    """A refund created at the provider; `status` as the provider reports it."""

    refund_id: str
    status: RefundStatus
    amount: int | None = None


@dataclass(frozen=True, slots=True)
class PaymentState:
    """A payment as the provider reports it now, read on demand (not from a webhook).

    `status` takes Stripe's PaymentIntent values (``requires_payment_method``,
    ``requires_confirmation``, ``requires_action``, ``processing``,
    ``requires_capture``, ``canceled``, ``succeeded``;
    https://docs.stripe.com/payments/paymentintents/lifecycle). `amount` and
    `amount_received` are minor units of `currency`; `order_id` is the order id the
    payment's metadata carries, if any.
    """

    payment_intent_id: str
    status: str
    amount: int
    amount_received: int
    currency: str
    order_id: str | None = None
    last_payment_error: str | None = None


class PaymentProvider(Protocol):
    """What the domain needs from a payment provider. Every method raises `ProviderFailure`."""

    name: str

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        """Create a payment for an order; idempotent per order id."""
        ...

    async def cancel_payment(self, payment_intent_id: str) -> None:
        """Cancel an unpaid payment (order cancelled or its reservation expired)."""
        ...

    async def refund(
        self, payment_intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> ProviderRefund:
        """Refund `amount` minor units of a succeeded payment (None: all not yet refunded).

        The result's `amount` is what the provider refunded, when it says.
        """
        ...

    async def retrieve_payment(self, payment_intent_id: str) -> PaymentState | None:
        """The payment's state now, or None when this provider cannot tell (offline
        payments: their outcomes arrive only as webhook events)."""
        ...
