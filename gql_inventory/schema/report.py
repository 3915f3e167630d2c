"""InventoryReport, VariantStockouts, VariantSales and UnitsByState (admin reports;
figures: `stock.report`)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.schema.catalog import MoneyType, VariantType
from gql_inventory.schema.docs import described_field
from gql_inventory.schema.orders import load_variant
from gql_inventory.stock import report as domain

_WINDOW = " in the window [from, to) (an event exactly at `to` belongs to the next one)"


@strawberry.type(
    name="VariantStockouts",
    description="How often one variant ran out in the window, its available units summed "
    "over every location.",
)
class VariantStockoutsType:
    """One variant's stockouts and seconds at 0 available."""

    stockouts: int = strawberry.field(
        description="Times its available units (all locations) reached 0 from above by a "
        "stock change" + _WINDOW + "."
    )
    out_of_stock_seconds: int = strawberry.field(
        description="Seconds" + _WINDOW + " during which its available units (all locations) "
        "were 0, whole seconds."
    )
    variant_id: strawberry.Private[int]

    @described_field("The variant.")
    async def variant(self, info: Info[Context, None]) -> VariantType:
        """The variant."""
        return await load_variant(info, self.variant_id)


@strawberry.type(
    name="VariantSales",
    description="Units of one variant sold in the window (SALE movements, gross of returns).",
)
class VariantSalesType:
    """One variant's units sold."""

    units_sold: int = strawberry.field(
        description="Units of its SALE movements" + _WINDOW + "; a later refund or return "
        "does not lower it (those are InventoryReport.unitsReturned)."
    )
    variant_id: strawberry.Private[int]

    @described_field("The variant.")
    async def variant(self, info: Info[Context, None]) -> VariantType:
        """The variant."""
        return await load_variant(info, self.variant_id)


@strawberry.type(
    name="UnitsByState",
    description="Units on hand that are not for sale, per state, summed over every stock "
    "level (moveStockState puts units in and out of these states).",
)
class UnitsByStateType:
    """Unavailable units per state."""

    damaged: int = strawberry.field(description="Units in the DAMAGED state.")
    quality_control: int = strawberry.field(description="Units in the QUALITY_CONTROL state.")
    safety_stock: int = strawberry.field(description="Units in the SAFETY_STOCK state.")
    total: int = strawberry.field(
        description="damaged + qualityControl + safetyStock: the unavailable units."
    )

    @classmethod
    def build(cls, units: domain.UnitsByState) -> UnitsByStateType:
        """Map the domain figures (units)."""
        return cls(
            damaged=units.damaged,
            quality_control=units.quality_control,
            safety_stock=units.safety_stock,
            total=units.total,
        )


def _rate(text: str) -> str:
    return text + "; 0.0 when the denominator is 0. A fraction (0.25), not a percentage."


@strawberry.type(
    name="InventoryReport",
    description="The operator's figures for the window [from, to), every one computed from "
    "the stock ledger, reservations, orders and refunds.",
)
class InventoryReportType:
    """The report, as `stock.report.InventoryReport` computes it."""

    from_: datetime = strawberry.field(name="from", description="Start of the window (included).")
    to: datetime = strawberry.field(description="End of the window (excluded).")
    reservations_created: int = strawberry.field(description="Reservations made" + _WINDOW + ".")
    reservations_checked_out: int = strawberry.field(
        description="Reservations that became COMPLETED (their order paid)" + _WINDOW + "."
    )
    reservations_expired: int = strawberry.field(
        description="Reservations that EXPIRED" + _WINDOW + "."
    )
    reservations_released: int = strawberry.field(
        description="Reservations RELEASED (by the buyer, or by a cancelled order)" + _WINDOW + "."
    )
    conversion_rate: float = strawberry.field(
        description=_rate(
            "Reservations made in the window that became paid orders before `to`, divided by "
            "reservationsCreated"
        )
    )
    expiry_rate: float = strawberry.field(
        description=_rate("reservationsExpired divided by reservationsCreated")
    )
    orders_paid: int = strawberry.field(
        description="Orders whose payment was received and applied" + _WINDOW + "."
    )
    units_sold: int = strawberry.field(description="Units of SALE movements" + _WINDOW + ".")
    units_returned: int = strawberry.field(
        description="Units of refunds made" + _WINDOW + " (pending or succeeded; restocked or not)."
    )
    refund_rate: float = strawberry.field(description=_rate("unitsReturned divided by unitsSold"))
    revenue: list[MoneyType] = strawberry.field(
        description="Per currency (ordered by code): totals of the orders paid in the window "
        "minus the refunds made in it (pending or succeeded); may be negative."
    )
    stockouts: int = strawberry.field(
        description="Times any variant's available units (all locations) reached 0 from "
        "above" + _WINDOW + ": the sum of every variant's VariantStockouts.stockouts."
    )
    top_stockouts: list[VariantStockoutsType] = strawberry.field(
        description=f"Up to {domain.TOP_STOCKOUTS} variants that ran out or were out in the "
        "window: most stockouts first, then most seconds out of stock, then SKU."
    )
    count_discrepancy_units: int = strawberry.field(
        description="Sum of |onHandDelta| of COUNT movements and of LOST, DAMAGED and FOUND "
        "adjustments" + _WINDOW + "."
    )
    orders_needing_attention: int = strawberry.field(
        description="Orders NEEDS_ATTENTION made before `to` (today's status: the status "
        "history is not kept)."
    )
    top_sellers: list[VariantSalesType] = strawberry.field(
        description=f"Up to {domain.TOP_SELLERS} variants with the most units sold in the "
        "window, most units first, then SKU. Gross units (SALE movements): with no limit "
        "they would add up to unitsSold."
    )
    orders_cancelled: int = strawberry.field(
        description="Orders that became CANCELLED" + _WINDOW + ": by cancelOrder, by the "
        "expiry of their reservation, or by a canceled payment (each order once)."
    )
    units_reserved_now: int = strawberry.field(
        description="Units held by ACTIVE reservations now, over every stock level (today's "
        "figure, whatever the window)."
    )
    units_unavailable_by_state: UnitsByStateType = strawberry.field(
        description="Units on hand but not for sale now, per state, over every stock level "
        "(today's figures, whatever the window)."
    )

    @classmethod
    def build(cls, r: domain.InventoryReport) -> InventoryReportType:
        """Map the domain report (money in minor units) to the GraphQL type."""
        return cls(
            from_=r.start,
            to=r.end,
            reservations_created=r.reservations_created,
            reservations_checked_out=r.reservations_checked_out,
            reservations_expired=r.reservations_expired,
            reservations_released=r.reservations_released,
            conversion_rate=r.conversion_rate,
            expiry_rate=r.expiry_rate,
            orders_paid=r.orders_paid,
            units_sold=r.units_sold,
            units_returned=r.units_returned,
            refund_rate=r.refund_rate,
            revenue=[MoneyType.from_minor(net, code) for code, net in r.revenue.items()],
            stockouts=r.stockouts,
            top_stockouts=[
                VariantStockoutsType(
                    stockouts=v.stockouts,
                    out_of_stock_seconds=v.out_of_stock_seconds,
                    variant_id=v.variant_id,
                )
                for v in r.top_stockouts
            ],
            count_discrepancy_units=r.count_discrepancy_units,
            orders_needing_attention=r.orders_needing_attention,
            top_sellers=[
                VariantSalesType(units_sold=v.units_sold, variant_id=v.variant_id)
                for v in r.top_sellers
            ],
            orders_cancelled=r.orders_cancelled,
            units_reserved_now=r.units_reserved_now,
            units_unavailable_by_state=UnitsByStateType.build(r.unavailable_now),
        )
