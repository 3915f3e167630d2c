"""Payment and refund state as data: the outcome of applying a provider event, and the
stored enums (re-exported from `gql_inventory.models` for the edge, which reads no tables).

One spelling per meaning: Stripe's "canceled" for Stripe things (`RefundStatus.CANCELED`,
``payment_intent.canceled``); ours, "cancelled", for our order status (`OrderStatus.CANCELLED`,
pinned by the GraphQL contract) and the outcome of cancelling an order.
"""

from __future__ import annotations

import enum

from gql_inventory.models.orders import PaymentEventKind, RefundSource, RefundStatus


class Outcome(enum.StrEnum):
    """What applying a provider event (webhook, pending-payment check) did to an order.

    The values are answered as the webhook's HTTP body ``outcome``, stored in
    `webhook_events.outcome` and printed by the CLI: never rename one.
    """

    # a payment's success (`payment_outcomes.payment_succeeded`)
    SOLD = "sold"
    SOLD_LATE = "sold_late"  # its reservation had ended: sold from what was available
    NEEDS_ATTENTION = "needs_attention"  # flagged for an admin (no stock, partial refund)
    AMOUNT_MISMATCH = "amount_mismatch"
    ALREADY_PAID = "already_paid"
    # failure, cancel, payment in progress
    RECORDED = "recorded"  # written to the order's history, nothing else changed
    CANCELLED = "cancelled"  # the order became CANCELLED
    IGNORED = "ignored"  # not for this order's state, or an event type not handled
    EXTENDED = "extended"  # the reservation is held longer
    UNCHANGED = "unchanged"  # already held that long, or capped
    # refunds (`provider_events`)
    RESTOCKED = "restocked"
    REFUNDED = "refunded"  # in full, nothing left to restock
    REFUND_FAILED = "refund_failed"
    CURRENCY_MISMATCH = "currency_mismatch"
    # finding the order, impossible and repeated events
    ORDER_MISMATCH = "order_mismatch"
    ORDER_NOT_FOUND = "order_not_found"
    PAYMENT_INTENT_MISMATCH = "payment_intent_mismatch"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    # the pending-payment check (`payment_check.apply_payment_state`)
    STILL_PENDING = "still_pending"
    CANCEL_CONFIRMED = "cancel_confirmed"
    CANCEL_RETRIED = "cancel_retried"


#: Refund statuses under which no money went back.
FAILED_REFUND_STATUSES = frozenset({RefundStatus.FAILED, RefundStatus.CANCELED})

__all__ = [
    "FAILED_REFUND_STATUSES",
    "Outcome",
    "PaymentEventKind",
    "RefundSource",
    "RefundStatus",
]
