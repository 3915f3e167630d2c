"""Contract enums, exposed from the domain's own Python enums (one source of truth)."""

from __future__ import annotations

import enum

from gql_inventory.models import (
    InventoryPolicy,
    MovementKind,
    OrderStatus,
    ReservationStatus,
    StockState,
)
from gql_inventory.schema.docs import describe_enum
from gql_inventory.stock.adjust import AdjustmentReason

__all__ = [
    "AdjustmentReason",
    "InventoryPolicy",
    "LowStockState",
    "MovementKind",
    "OrderStatus",
    "ReservationStatus",
    "StockState",
    "UserErrorCode",
]

# describe_enum registers the class itself, so GraphQL and the domain share one enum.
describe_enum(
    ReservationStatus,
    description="Where a reservation is in its life. Only ACTIVE holds units (counted in "
    "`reserved`); the other statuses are final.",
    values={
        "ACTIVE": "Holds its units until `expiresAt`, until its order is paid, or until it is "
        "released or its order cancelled.",
        "COMPLETED": "Its order was paid: the units were sold (SALE movements).",
        "RELEASED": "Given back by the buyer (releaseReservation) or by cancelling its pending "
        "order; the units are available again (RELEASE movements).",
        "EXPIRED": "Passed `expiresAt` unpaid; the units are available again (EXPIRY "
        "movements) and a pending order on it was CANCELLED.",
    },
)
describe_enum(
    OrderStatus,
    description="Where an order's payment stands.",
    values={
        "PENDING_PAYMENT": "Made at checkout; waiting for its payment. Its reservation still "
        "holds the units.",
        "PAID": "The payment succeeded and the units were sold.",
        "PARTIALLY_REFUNDED": "Some units were refunded (refundOrder); the others stay sold.",
        "REFUNDED": "Every unit was refunded.",
        "CANCELLED": "Cancelled (cancelOrder, or its reservation was released or expired "
        "before payment). A paid order is refunded in full when cancelled.",
        "NEEDS_ATTENTION": "Paid, but not as ordered: paid after its reservation ended and "
        "the stock was gone, or paid another amount. `attentionReason` says which; an admin "
        "resolves it, e.g. with cancelOrder (which refunds).",
    },
)
describe_enum(
    MovementKind,
    description="Why a stock level changed: the kind of a ledger row (StockMovement).",
    values={
        "RECEIPT": "Goods received (adjustStock, reason RECEIVED, or receiveInboundShipment "
        "with reference shipment:<id>): onHand +n.",
        "ADJUSTMENT": "A manual correction (adjustStock, reason CORRECTION, DAMAGED, LOST or "
        "FOUND): onHand +n or -n.",
        "COUNT": "A count set an absolute figure (setStock, or adjustStock with reason "
        "CYCLE_COUNT): onHand +n or -n.",
        "RESERVATION": "A reservation took units (reserveStock, updateReservation, or a late "
        "payment re-reserving): reserved +n.",
        "RELEASE": "A reservation gave units back (updateReservation lowering a line, "
        "releaseReservation, a cancelled payment or order): reserved -n.",
        "EXPIRY": "A reservation passed its expiry unpaid: reserved -n.",
        "SALE": "A payment succeeded: onHand -n and reserved -n.",
        "RETURN": "A refund or cancellation of a paid order with restock: onHand +n at the "
        "location the units were sold from.",
        "TRANSFER": "Units moved between two locations (transferStock): two rows with one "
        "reference (transfer:<id>), onHand -n at the source and +n at the destination.",
        "STATE_CHANGE": "Units moved between states at one location (moveStockState): onHand "
        "and reserved unchanged; fromState and toState say which, available changes when one "
        "of them is AVAILABLE.",
        "BACKORDER_FILL": "Units that arrived went to a paid order waiting for them (oldest "
        "paid order first): onHand -n and backordered -n; reference order:<id>.",
    },
)
describe_enum(
    StockState,
    description="The state of on-hand units at a location. Only AVAILABLE units can be "
    "reserved or sold; the others count in `unavailable`.",
    values={
        "AVAILABLE": "For sale: onHand - reserved - unavailable.",
        "DAMAGED": "Damaged, kept on hand (e.g. awaiting return to the supplier); never sold.",
        "QUALITY_CONTROL": "Held for inspection; never sold until moved back to AVAILABLE.",
        "SAFETY_STOCK": "A buffer kept back from sale on purpose.",
    },
)
describe_enum(
    InventoryPolicy,
    description="Whether a variant keeps selling past zero (Shopify's inventoryPolicy); set "
    "with updateVariantInventory.",
    values={
        "DENY": "Sell only what is available (the default): a reservation never takes more "
        "than onHand - reserved - unavailable.",
        "CONTINUE": "Keep selling past zero (backorders, preorders), promising at most "
        "backorderLimit units beyond stock (null: no limit).",
    },
)
describe_enum(
    AdjustmentReason,
    description="Why an admin changed stock; it decides the kind of the ledger row.",
    values={
        "RECEIVED": "Goods received (a RECEIPT movement).",
        "CORRECTION": "A wrong figure corrected (an ADJUSTMENT movement).",
        "DAMAGED": "Units damaged and taken out (an ADJUSTMENT movement).",
        "LOST": "Units lost or stolen (an ADJUSTMENT movement).",
        "FOUND": "Units found again (an ADJUSTMENT movement).",
        "CYCLE_COUNT": "A stock count (a COUNT movement); setStock's default reason.",
    },
)


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
    PURCHASE_LIMIT_EXCEEDED = "PURCHASE_LIMIT_EXCEEDED"
    SHIPMENT_NOT_FOUND = "SHIPMENT_NOT_FOUND"
    INVALID_SHIPMENT_STATE = "INVALID_SHIPMENT_STATE"
    WEBHOOK_ENDPOINT_NOT_FOUND = "WEBHOOK_ENDPOINT_NOT_FOUND"
    WEBHOOK_URL_NOT_ALLOWED = "WEBHOOK_URL_NOT_ALLOWED"


describe_enum(
    UserErrorCode,
    description="Why an operation was refused: an expected outcome, not a server failure. "
    "Nothing was changed.",
    values={
        "INVALID_INPUT": "Input that cannot succeed as sent: a quantity, delta, onHand or "
        "ttlSeconds out of range, no or too many lines, a blank SKU, a SKU repeated in "
        "updateReservation, a bad idempotency key. `field` points at it.",
        "UNKNOWN_SKU": "No variant has the SKU in `sku`.",
        "UNKNOWN_LOCATION": "No location has this id (or, with no locationId, none is the "
        "default).",
        "INSUFFICIENT_STOCK": "Fewer units than asked for. For a reservation, `available` is "
        "summed over every location; for adjustStock and setStock, it is at the location in "
        "`locationId`. `requested` is what was asked for.",
        "RESERVATION_NOT_FOUND": "No reservation has this id.",
        "RESERVATION_NOT_ACTIVE": "The reservation is COMPLETED, RELEASED or EXPIRED (the "
        "message says which).",
        "ORDER_NOT_FOUND": "No order has this id.",
        "INVALID_ORDER_STATE": "The order's status does not allow the operation, e.g. "
        "refunding an unpaid order or changing a reservation that was checked out.",
        "REFUND_EXCEEDS_QUANTITY": "More units asked back than were sold and not yet "
        "refunded; `available` is what can still be refunded.",
        "STOCK_CHANGED": "`expectedOnHand` did not match on hand at the location in "
        "`locationId` (another change came first): read it again and decide anew.",
        "IDEMPOTENCY_CONFLICT": "The idempotency key was used before with a different input.",
        "PAYMENT_PROVIDER_ERROR": "The payment provider (Stripe) refused or failed; nothing "
        "was changed here, so the call may be retried.",
        "PURCHASE_LIMIT_EXCEEDED": "The reservation would hold more units of the SKU in "
        "`sku` than the variant's maxPerOrder. `requested` is the units it would hold in "
        "all (lines of one SKU summed; updateReservation: the new quantity), `available` the "
        "most it may hold: the limit, or what it already holds when the limit was lowered "
        "under it (kept; only an increase is refused).",
        "SHIPMENT_NOT_FOUND": "No inbound shipment has this id.",
        "INVALID_SHIPMENT_STATE": "The inbound shipment is RECEIVED or CANCELLED: nothing is "
        "expected on it any more (the message says which).",
        "WEBHOOK_ENDPOINT_NOT_FOUND": "No webhook endpoint (or delivery) has this id.",
        "WEBHOOK_URL_NOT_ALLOWED": "The endpoint URL is refused: it must be https outside "
        "development, and its host must not be or resolve to a loopback, private, "
        "link-local or cloud metadata address (unless WEBHOOK_ALLOW_PRIVATE_URLS=true).",
    },
)


class LowStockState(enum.Enum):
    """Which boundary a variant's available units crossed."""

    LOW = "LOW"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    BACK_IN_STOCK = "BACK_IN_STOCK"


describe_enum(
    LowStockState,
    description="Which boundary a variant's available units (summed over locations) crossed.",
    values={
        "LOW": "Now at or under the variant's threshold, and above zero.",
        "OUT_OF_STOCK": "Now zero: nothing left to reserve.",
        "BACK_IN_STOCK": "Above the threshold again.",
    },
)
