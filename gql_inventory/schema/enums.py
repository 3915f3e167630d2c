"""Contract enums, exposed from the domain's own Python enums (one source of truth)."""

from __future__ import annotations

import enum

import strawberry

from gql_inventory.inventory.adjust import AdjustmentReason
from gql_inventory.models import MovementKind, OrderStatus, ReservationStatus

# strawberry.enum registers the class itself, so GraphQL and the domain share one enum.
for _enum in (ReservationStatus, OrderStatus, MovementKind, AdjustmentReason):
    strawberry.enum(_enum, name=_enum.__name__)

__all__ = [
    "AdjustmentReason",
    "LowStockState",
    "MovementKind",
    "OrderStatus",
    "ReservationStatus",
    "UserErrorCode",
]


@strawberry.enum
class UserErrorCode(enum.Enum):
    """Why an operation was refused (an expected outcome, not a server failure)."""

    INVALID_INPUT = "INVALID_INPUT"
    UNKNOWN_SKU = "UNKNOWN_SKU"
    UNKNOWN_LOCATION = "UNKNOWN_LOCATION"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    RESERVATION_NOT_FOUND = "RESERVATION_NOT_FOUND"
    RESERVATION_NOT_ACTIVE = "RESERVATION_NOT_ACTIVE"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    INVALID_ORDER_STATE = "INVALID_ORDER_STATE"
    REFUND_EXCEEDS_QUANTITY = "REFUND_EXCEEDS_QUANTITY"
    STOCK_CHANGED = "STOCK_CHANGED"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    PAYMENT_PROVIDER_ERROR = "PAYMENT_PROVIDER_ERROR"


@strawberry.enum
class LowStockState(enum.Enum):
    """Which threshold a variant's available units crossed."""

    LOW = "LOW"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    BACK_IN_STOCK = "BACK_IN_STOCK"
