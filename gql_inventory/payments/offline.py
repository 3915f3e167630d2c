"""Offline payments: local ids shaped like Stripe's, for development and demos without a key.

Payment outcomes arrive as signed Stripe-shaped events posted to the webhook
(`gql-inventory stripe-event`), so the whole flow runs on one machine.
"""

from __future__ import annotations

import hashlib
import secrets

from gql_inventory.models.orders import RefundStatus
from gql_inventory.payments.base import (
    CreatedPayment,
    PaymentRequest,
    PaymentState,
    ProviderRefund,
)


class OfflinePaymentProvider:
    """Deterministic PaymentIntent ids per order (``pi_offline_<hash>``); never fails."""

    name = "offline"

    async def create_payment(self, request: PaymentRequest) -> CreatedPayment:
        """A local payment id derived from the order id, and a random client secret."""
        digest = hashlib.sha256(str(request.order_id).encode()).hexdigest()[:24]
        payment_intent_id = f"pi_offline_{digest}"
        return CreatedPayment(
            payment_intent_id=payment_intent_id,
            client_secret=f"{payment_intent_id}_secret_{secrets.token_hex(12)}",
        )

    async def cancel_payment(self, payment_intent_id: str) -> None:
        """Nothing to cancel remotely."""

    async def refund(
        self, payment_intent_id: str, *, amount: int | None, idempotency_key: str
    ) -> ProviderRefund:
        """A local refund id derived from the idempotency key; status `succeeded`."""
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        return ProviderRefund(
            refund_id=f"re_offline_{digest}", status=RefundStatus.SUCCEEDED, amount=amount
        )

    async def retrieve_payment(self, payment_intent_id: str) -> PaymentState | None:
        """Unknown: offline payments are reported only by (CLI-posted) webhook events."""
        return None
