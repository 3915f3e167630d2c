"""SQLAlchemy tables only: no behaviour lives here."""

from gql_inventory.models.base import Base
from gql_inventory.models.catalog import Location, Product, Variant
from gql_inventory.models.orders import (
    IdempotencyRecord,
    Order,
    OrderAllocation,
    OrderLine,
    OrderStatus,
    PaymentEvent,
    PaymentEventKind,
    Refund,
    RefundSource,
    RefundStatus,
    Reservation,
    ReservationLine,
    ReservationStatus,
    WebhookEvent,
)
from gql_inventory.models.stock import (
    STATE_COLUMNS,
    MovementKind,
    StockLevel,
    StockMovement,
    StockState,
)

__all__ = [
    "STATE_COLUMNS",
    "Base",
    "IdempotencyRecord",
    "Location",
    "MovementKind",
    "Order",
    "OrderAllocation",
    "OrderLine",
    "OrderStatus",
    "PaymentEvent",
    "PaymentEventKind",
    "Product",
    "Refund",
    "RefundSource",
    "RefundStatus",
    "Reservation",
    "ReservationLine",
    "ReservationStatus",
    "StockLevel",
    "StockMovement",
    "StockState",
    "Variant",
    "WebhookEvent",
]
