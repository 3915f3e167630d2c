"""Mutation inputs. Quantities are whole units; limits are the server's defaults (settings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import strawberry
from strawberry.types.arguments import InputContext
from strawberry.types.base import get_object_definition

from gql_inventory.schema.enums import AdjustmentReason, StockState

_IDEMPOTENCY_KEY = (
    "Optional. Send a random UUIDv4 and reuse it when retrying: the same key with the same "
    "input returns the first call's result without doing the work again; with another input "
    "it is IDEMPOTENCY_CONFLICT. 1 to 255 characters; without an admin token at least 16. "
    "Keys are scoped per caller (storefront, or each admin)."
)
_ADMIN_IDEMPOTENCY_KEY = (
    "Optional. Reuse the same key when retrying: the same key with the same input returns the "
    "first call's result without changing stock again; with another input it is "
    "IDEMPOTENCY_CONFLICT. 1 to 255 characters, scoped to the calling admin."
)


@strawberry.input(description="A SKU and a quantity in whole units.")
class StockLineInput:
    """A SKU and a quantity in units."""

    sku: str = strawberry.field(description="The variant's SKU.")
    quantity: int = strawberry.field(
        description="Units. reserveStock: 1 to 10000 by default (a SKU's lines summed, too). "
        "updateReservation: 0 to 10000, the absolute figure wanted. refundOrder: 1 or more, "
        "at most what was sold and not yet refunded."
    )


@strawberry.input(
    description="Lines to reserve, all or nothing. Units come from locations by priority and "
    "may be split across them."
)
class ReserveStockInput:
    """Lines to reserve, all or nothing. `ttlSeconds` is capped by the server maximum."""

    lines: list[StockLineInput] = strawberry.field(
        description="1 to 100 lines by default. Lines of the same SKU are added together."
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY_KEY)
    ttl_seconds: int | None = strawberry.field(
        default=None,
        description="Seconds until the reservation expires unpaid and its units go back: 1 to "
        "7200, null: 900 (server defaults). updateReservation restarts the same span.",
    )


def _reserve_stock_input(cls: type, value: Mapping[str, Any], _: InputContext) -> ReserveStockInput:
    """`ReserveStockInput` (or `cls`, a subclass) from its input value, keyed by GraphQL
    names and already coerced and validated by graphql-core (an omitted optional field
    holds its published default, None, or is missing). Built directly: strawberry's
    generic conversion resolves every field's annotation and name per request, ~40 µs
    of a reserveStock's CPU (docs/adr/0011-request-path.md)."""
    lines = [StockLineInput(sku=line["sku"], quantity=line["quantity"]) for line in value["lines"]]
    return cls(  # type: ignore[no-any-return]
        lines=lines,
        idempotency_key=value.get("idempotencyKey"),
        ttl_seconds=value.get("ttlSeconds"),
    )


get_object_definition(ReserveStockInput, strict=True).from_input = _reserve_stock_input


@strawberry.input(
    description="New absolute quantities for some SKUs of an ACTIVE reservation. SKUs left "
    "out keep their quantity; 0 removes a SKU."
)
class UpdateReservationInput:
    """Absolute quantities per SKU; 0 removes the line."""

    reservation_id: strawberry.ID = strawberry.field(
        description="The reservation's id, as reserveStock returned it."
    )
    lines: list[StockLineInput] = strawberry.field(
        description="1 to 100 lines, each SKU at most once. Each quantity is the total wanted "
        "for its SKU (not a change): 0 releases all its units; SKUs of the reservation that "
        "are not listed stay as they are."
    )


@strawberry.input(description="Turn an ACTIVE reservation into an order with a payment.")
class CheckoutInput:
    """Turn a reservation into an order with a payment."""

    reservation_id: strawberry.ID = strawberry.field(
        description="The reservation to buy; checking out the same one again returns the same "
        "pending order."
    )
    email: str | None = strawberry.field(
        default=None,
        description="Buyer's email, kept on the order and sent to Stripe for the receipt.",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY_KEY)


@strawberry.input(description="Admin: add or remove units (negative delta) at one location.")
class AdjustStockInput:
    """Admin: add or remove units (negative delta) at a location."""

    sku: str = strawberry.field(description="The variant's SKU.")
    delta: int = strawberry.field(
        description="Units to add (positive) or remove (negative); not 0, at most 1000000 "
        "either way. A removal may not take units that are reserved: at most onHand - "
        "reserved at the location."
    )
    reason: AdjustmentReason = strawberry.field(
        description="Why; decides the ledger kind (RECEIVED: RECEIPT, CYCLE_COUNT: COUNT, "
        "others: ADJUSTMENT)."
    )
    location_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Location.id; null: the default location. A level is created at 0 when "
        "the SKU has none there.",
    )
    note: str | None = strawberry.field(
        default=None,
        description='Free text kept in the movement\'s reason ("DAMAGED: dropped pallet").',
    )
    expected_on_hand: int | None = strawberry.field(
        default=None,
        description="Compare-and-set: refuse with STOCK_CHANGED unless onHand at the location "
        "is exactly this before the change.",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_ADMIN_IDEMPOTENCY_KEY)
    state: StockState = strawberry.field(
        default=StockState.AVAILABLE,
        description="The state the units arrive in or leave (default AVAILABLE). DAMAGED with "
        "delta +3: 3 units arrive damaged (onHand and damaged +3, available unchanged); -3 "
        "writes 3 damaged units off, refused with INSUFFICIENT_STOCK when fewer are damaged.",
    )


@strawberry.input(description="Admin: set the on-hand figure of one location (a count).")
class SetStockInput:
    """Admin: set the on-hand figure (a count)."""

    sku: str = strawberry.field(description="The variant's SKU.")
    on_hand: int = strawberry.field(
        description="The counted units, 0 to 1000000; not below what is reserved at the "
        "location (INSUFFICIENT_STOCK). The same figure as now changes nothing."
    )
    location_id: strawberry.ID | None = strawberry.field(
        default=None, description="Location.id; null: the default location."
    )
    reason: AdjustmentReason | None = strawberry.field(
        default=None, description="Why; null: CYCLE_COUNT (a COUNT movement)."
    )
    expected_on_hand: int | None = strawberry.field(
        default=None,
        description="Compare-and-set: refuse with STOCK_CHANGED unless onHand at the location "
        "(with a state other than AVAILABLE: that state's units) is exactly this now.",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_ADMIN_IDEMPOTENCY_KEY)
    state: StockState = strawberry.field(
        default=StockState.AVAILABLE,
        description="Which figure was counted (default AVAILABLE: the level's onHand). "
        "DAMAGED, QUALITY_CONTROL or SAFETY_STOCK: `onHand` is that state's counted units; "
        "onHand changes by the same difference.",
    )


@strawberry.input(
    description="Admin: move on-hand units between states at one location (moveStockState)."
)
class MoveStockStateInput:
    """Admin: move `quantity` units at a location from one state to another."""

    sku: str = strawberry.field(description="The variant's SKU.")
    location_id: strawberry.ID | None = strawberry.field(
        default=None, description="Location.id; null: the default location."
    )
    quantity: int = strawberry.field(
        description="Units to move, 1 to 1000000; at most what the `from` state holds "
        "(AVAILABLE: onHand - reserved - unavailable) at the location."
    )
    from_: StockState = strawberry.field(name="from", description="The state units leave.")
    to: StockState = strawberry.field(description="The state units enter; not `from`.")
    reason: str | None = strawberry.field(
        default=None, description="Free text kept in the movement's reason."
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_ADMIN_IDEMPOTENCY_KEY)


@strawberry.input(
    description="Admin: move units between two locations in one transaction (transferStock)."
)
class TransferStockInput:
    """Admin: move `quantity` available units of a SKU from one location to another."""

    sku: str = strawberry.field(description="The variant's SKU.")
    from_location_id: strawberry.ID = strawberry.field(
        description="Location.id the units leave; they must be available there (onHand - "
        "reserved - unavailable)."
    )
    to_location_id: strawberry.ID = strawberry.field(
        description="Location.id the units arrive at; not fromLocationId. Its level is "
        "created when the SKU has none there."
    )
    quantity: int = strawberry.field(description="Units to move, 1 to 1000000.")
    reason: str | None = strawberry.field(
        default=None, description="Free text kept in both movements' reason."
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_ADMIN_IDEMPOTENCY_KEY)


@strawberry.input(description="Admin: refund units of a PAID or PARTIALLY_REFUNDED order.")
class RefundOrderInput:
    """Admin: refund lines (null: everything not yet refunded), restocking by default."""

    order_id: strawberry.ID = strawberry.field(description="The order's id.")
    lines: list[StockLineInput] | None = strawberry.field(
        default=None,
        description="SKUs and units to refund (lines of one SKU add up); null: every unit not "
        "refunded yet. The money refunded is the units' frozen unit prices.",
    )
    restock: bool | None = strawberry.field(
        default=True,
        description="Put the units back on hand where they were sold from (RETURN "
        "movements); null counts as true. false for goods that do not come back.",
    )
    reason: str | None = strawberry.field(
        default=None, description="Free text kept in the order's paymentEvents and the ledger."
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_ADMIN_IDEMPOTENCY_KEY)


@strawberry.input(description="Admin: cancel an order.")
class CancelOrderInput:
    """Admin: cancel an order (pending: release; paid: full refund with restock)."""

    order_id: strawberry.ID = strawberry.field(description="The order's id.")
    reason: str | None = strawberry.field(
        default=None, description="Free text kept in the order's paymentEvents."
    )
