"""Payment providers: the interface the domain calls, an offline provider, and Stripe."""

from gql_inventory.payments.base import (
    CreatedPayment,
    PaymentProvider,
    PaymentRequest,
    PaymentState,
    ProviderFailure,
    ProviderRefund,
)
from gql_inventory.payments.offline import OfflinePaymentProvider

__all__ = [
    "CreatedPayment",
    "OfflinePaymentProvider",
    "PaymentProvider",
    "PaymentRequest",
    "PaymentState",
    "ProviderFailure",
    "ProviderRefund",
]
