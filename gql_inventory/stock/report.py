"""The operator's inventory report over a window ``[from, to)``, every figure in SQL.

Windows are half-open: an event exactly at `from` counts, one exactly at `to` does not.
Definitions (what each figure counts):

- reservationsCreated: reservations whose ``created_at`` is in the window.
- reservationsCheckedOut / Expired / Released: reservations that became COMPLETED (their
  order was paid) / EXPIRED / RELEASED in the window (``updated_at`` of the final status;
  a final status never changes again).
- conversionRate: reservations created in the window that became COMPLETED before `to`,
  divided by reservationsCreated. expiryRate: reservationsExpired / reservationsCreated.
- ordersPaid: orders whose payment was received and applied in the window
  (``payment_applied_at``). unitsSold: units of SALE movements in the window (ledger).
- unitsReturned: units of refunds made in the window that did not fail or get cancelled
  (status pending, requires_action or succeeded), from the refunds' lines (restocked or
  not). refundRate: unitsReturned / unitsSold.
- revenue, per currency: totals of the orders paid in the window minus the amounts of those
  refunds; one entry per currency with either, ordered by code. Minor units.
- Any rate whose denominator is 0 is 0.0.
- A stockout: a movement in the window after which a variant's available units, summed
  over every location (sum of ``on_hand_after - reserved_after``), are 0 while they were
  above 0 just before. Movements with the same ``occurred_at`` (one transaction) count as
  one step, so a transient 0 inside a transaction is no stockout. Availability at `from`
  is read from each level's last movement before it (``on_hand_after - reserved_after``);
  a variant whose levels have no movement yet has no availability to lose (not counted).
- outOfStockSeconds (per variant, all locations): seconds in the window during which the
  variant's summed available units were 0 (a variant at 0 since before `from` counts from
  `from`). topStockouts: variants with a stockout or out-of-stock time in the window, most
  stockouts first, then most seconds, then SKU; at most `TOP_STOCKOUTS`.
- countDiscrepancyUnits: sum of ``|on_hand_delta|`` of COUNT movements and of ADJUSTMENT
  movements whose reason is LOST, DAMAGED or FOUND, in the window.
- ordersNeedingAttention: orders NEEDS_ATTENTION now that were created before `to`
  (status history is not kept, so "at `to`" reads today's status).
- topSellers: units of SALE movements in the window per variant (gross: a later refund or
  RETURN does not lower them, so they add up to unitsSold; returns are unitsReturned),
  most units first, then SKU; at most `TOP_SELLERS`.
- ordersCancelled: orders that became CANCELLED in the window: the first cancellation
  event of each order (``order.cancelled``: cancelOrder or its reservation's expiry;
  ``payment_intent.canceled``: the payment was canceled) lies in the window.
- unitsReservedNow and unavailableNow: today's figures (not the window's), summed over
  every stock level: reserved units, and damaged / quality_control / safety_stock units.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.domain.errors import InvalidInput, argument

#: Longest window a report covers (a bound on the work one report does).
MAX_WINDOW = timedelta(days=366)
#: Variants listed in `topStockouts`.
TOP_STOCKOUTS = 10
#: Variants listed in `topSellers`.
TOP_SELLERS = 10


@dataclass(frozen=True, slots=True)
class VariantStockouts:
    """One variant's stockouts (count) and seconds at 0 available in the window."""

    variant_id: int
    sku: str
    stockouts: int
    out_of_stock_seconds: int


@dataclass(frozen=True, slots=True)
class VariantSales:
    """One variant's units sold in the window (SALE movements, gross of returns)."""

    variant_id: int
    sku: str
    units_sold: int


@dataclass(frozen=True, slots=True)
class UnitsByState:
    """Units on hand but not for sale, per state, summed over every level (ADR 0017)."""

    damaged: int = 0
    quality_control: int = 0
    safety_stock: int = 0

    @property
    def total(self) -> int:
        """All unavailable units: damaged + quality_control + safety_stock."""
        return self.damaged + self.quality_control + self.safety_stock


@dataclass(frozen=True, slots=True)
class InventoryReport:
    """The report's figures; money in minor units per ISO 4217 currency code."""

    start: datetime
    end: datetime
    reservations_created: int
    reservations_checked_out: int
    reservations_expired: int
    reservations_released: int
    reservations_converted: int
    orders_paid: int
    units_sold: int
    units_returned: int
    revenue: dict[str, int]
    stockouts: int
    top_stockouts: list[VariantStockouts]
    count_discrepancy_units: int
    orders_needing_attention: int
    top_sellers: list[VariantSales]
    orders_cancelled: int
    units_reserved_now: int
    unavailable_now: UnitsByState

    @property
    def conversion_rate(self) -> float:
        """Converted / created; 0.0 when none were created."""
        return _rate(self.reservations_converted, self.reservations_created)

    @property
    def expiry_rate(self) -> float:
        """Expired / created; 0.0 when none were created."""
        return _rate(self.reservations_expired, self.reservations_created)

    @property
    def refund_rate(self) -> float:
        """Units returned / units sold; 0.0 when none were sold."""
        return _rate(self.units_returned, self.units_sold)


def _rate(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


_COUNTS = text(
    """
WITH res AS (
  SELECT
    count(*) FILTER (WHERE created_at >= :start AND created_at < :end) AS created,
    count(*) FILTER (WHERE status = 'COMPLETED' AND updated_at >= :start
                     AND updated_at < :end) AS checked_out,
    count(*) FILTER (WHERE status = 'EXPIRED' AND updated_at >= :start
                     AND updated_at < :end) AS expired,
    count(*) FILTER (WHERE status = 'RELEASED' AND updated_at >= :start
                     AND updated_at < :end) AS released,
    count(*) FILTER (WHERE created_at >= :start AND created_at < :end
                     AND status = 'COMPLETED' AND updated_at < :end) AS converted
  FROM reservations
  WHERE created_at < :end AND (created_at >= :start OR updated_at >= :start)
), paid AS (
  SELECT count(*) AS orders_paid FROM orders
  WHERE payment_applied_at >= :start AND payment_applied_at < :end
), ledger AS (
  SELECT
    coalesce(-sum(on_hand_delta) FILTER (WHERE kind = 'SALE'), 0) AS units_sold,
    coalesce(sum(abs(on_hand_delta)) FILTER (
      WHERE kind = 'COUNT' OR (kind = 'ADJUSTMENT' AND split_part(reason, ':', 1)
                               IN ('LOST', 'DAMAGED', 'FOUND'))), 0) AS discrepancy
  FROM stock_movements WHERE occurred_at >= :start AND occurred_at < :end
), returned AS (
  SELECT coalesce(sum((line ->> 'quantity')::int), 0) AS units_returned
  FROM refunds, jsonb_array_elements(refunds.lines) AS line
  WHERE created_at >= :start AND created_at < :end
    AND status IN ('pending', 'requires_action', 'succeeded')
), attention AS (
  SELECT count(*) AS needing FROM orders
  WHERE status = 'NEEDS_ATTENTION' AND created_at < :end
), cancelled AS (
  SELECT count(*) AS orders_cancelled FROM (
    SELECT order_id FROM payment_events
    WHERE type IN ('order.cancelled', 'payment_intent.canceled') AND created_at < :end
    GROUP BY order_id HAVING min(created_at) >= :start
  ) first_cancel
), held AS (
  SELECT coalesce(sum(reserved), 0) AS reserved_now,
         coalesce(sum(damaged), 0) AS damaged_now,
         coalesce(sum(quality_control), 0) AS quality_control_now,
         coalesce(sum(safety_stock), 0) AS safety_stock_now
  FROM stock_levels
)
SELECT * FROM res, paid, ledger, returned, attention, cancelled, held
"""
)

_TOP_SELLERS = text(
    """
SELECT m.variant_id, v.sku, -sum(m.on_hand_delta) AS units
FROM stock_movements m JOIN variants v ON v.id = m.variant_id
WHERE m.kind = 'SALE' AND m.occurred_at >= :start AND m.occurred_at < :end
GROUP BY m.variant_id, v.sku
HAVING -sum(m.on_hand_delta) > 0
ORDER BY units DESC, v.sku
LIMIT :limit
"""
)

_REVENUE = text(
    """
WITH paid AS (
  SELECT currency_code, sum(total_amount) AS amount FROM orders
  WHERE payment_applied_at >= :start AND payment_applied_at < :end
  GROUP BY currency_code
), refunded AS (
  SELECT currency_code, sum(amount) AS amount FROM refunds
  WHERE created_at >= :start AND created_at < :end
    AND status IN ('pending', 'requires_action', 'succeeded')
  GROUP BY currency_code
)
SELECT coalesce(p.currency_code, r.currency_code) AS currency_code,
       coalesce(p.amount, 0) - coalesce(r.amount, 0) AS net
FROM paid p FULL JOIN refunded r ON r.currency_code = p.currency_code
ORDER BY 1
"""
)

# Per variant: its available units at `start` (each level's figures after its last
# movement before `start`, read through the (stock_level_id, version) index, summed), then
# after each step in the window (a distinct occurred_at) that baseline plus the running sum
# of the window's available deltas; each step's span is clipped to the window. Only the
# window's movements are sorted, whatever the ledger's length.
_STOCKOUTS = text(
    """
WITH base AS (
  SELECT l.variant_id, sum(last.available) AS available
  FROM stock_levels l
  JOIN LATERAL (
    SELECT m.on_hand_after - m.reserved_after - m.damaged_after - m.quality_control_after
           - m.safety_stock_after - m.backordered_after AS available
    FROM stock_movements m
    WHERE m.stock_level_id = l.id AND m.occurred_at < :start
    ORDER BY m.version DESC LIMIT 1
  ) last ON true
  GROUP BY l.variant_id
), moved AS (
  SELECT variant_id, occurred_at,
         sum(on_hand_delta - reserved_delta
             + CASE WHEN from_state = 'AVAILABLE' THEN -quantity
                    WHEN to_state = 'AVAILABLE' THEN quantity ELSE 0 END) AS delta
  FROM stock_movements
  WHERE occurred_at >= :start AND occurred_at < :end
  GROUP BY variant_id, occurred_at
), steps AS (
  SELECT variant_id, CAST(:start AS timestamptz) AS occurred_at, 0 AS seq, available
  FROM base
  UNION ALL
  SELECT m.variant_id, m.occurred_at, 1,
         coalesce(b.available, 0)
           + sum(m.delta) OVER (PARTITION BY m.variant_id ORDER BY m.occurred_at)
  FROM moved m LEFT JOIN base b ON b.variant_id = m.variant_id
), spans AS (
  SELECT variant_id, occurred_at, seq, available,
         lag(available) OVER w AS available_before,
         coalesce(lead(occurred_at) OVER w, CAST(:end AS timestamptz)) AS until
  FROM steps
  WINDOW w AS (PARTITION BY variant_id ORDER BY occurred_at, seq)
), per_variant AS (
  SELECT variant_id,
         count(*) FILTER (WHERE seq = 1 AND available = 0 AND available_before > 0)
           AS stockouts,
         coalesce(sum(extract(epoch FROM until - occurred_at))
                  FILTER (WHERE available = 0), 0)::bigint AS seconds
  FROM spans
  GROUP BY variant_id
)
SELECT p.variant_id, v.sku, p.stockouts, p.seconds
FROM per_variant p JOIN variants v ON v.id = p.variant_id
WHERE p.stockouts > 0 OR p.seconds > 0
ORDER BY p.stockouts DESC, p.seconds DESC, v.sku
"""
)


def check_window(start: datetime, end: datetime) -> None:
    """Refuse a window that is empty, reversed, naive or longer than `MAX_WINDOW`.

    Raises `InvalidInput` (field ``to`` or ``from``).
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput(
            "from and to need a time zone (ISO 8601 with an offset)", field=argument("to")
        )
    if end <= start:
        raise InvalidInput("to must be after from", field=argument("to"))
    if end - start > MAX_WINDOW:
        raise InvalidInput(f"the window is at most {MAX_WINDOW.days} days", field=argument("from"))


async def inventory_report(
    conn: AsyncConnection, start: datetime, end: datetime
) -> InventoryReport:
    """Every figure of the report for ``[start, end)`` (definitions: module docstring).

    Four read statements. Raises `InvalidInput` for a bad window (`check_window`).
    """
    check_window(start, end)
    params = {"start": start, "end": end}
    counts = (await conn.execute(_COUNTS, params)).mappings().one()
    revenue = {
        row.currency_code: int(row.net) for row in (await conn.execute(_REVENUE, params)).all()
    }
    variants = [
        VariantStockouts(
            variant_id=row.variant_id,
            sku=row.sku,
            stockouts=int(row.stockouts),
            out_of_stock_seconds=int(row.seconds),
        )
        for row in (await conn.execute(_STOCKOUTS, params)).all()
    ]
    sellers = [
        VariantSales(variant_id=row.variant_id, sku=row.sku, units_sold=int(row.units))
        for row in (await conn.execute(_TOP_SELLERS, {**params, "limit": TOP_SELLERS})).all()
    ]
    return InventoryReport(
        start=start,
        end=end,
        reservations_created=int(counts["created"]),
        reservations_checked_out=int(counts["checked_out"]),
        reservations_expired=int(counts["expired"]),
        reservations_released=int(counts["released"]),
        reservations_converted=int(counts["converted"]),
        orders_paid=int(counts["orders_paid"]),
        units_sold=int(counts["units_sold"]),
        units_returned=int(counts["units_returned"]),
        revenue=revenue,
        stockouts=sum(v.stockouts for v in variants),
        top_stockouts=variants[:TOP_STOCKOUTS],
        count_discrepancy_units=int(counts["discrepancy"]),
        orders_needing_attention=int(counts["needing"]),
        top_sellers=sellers,
        orders_cancelled=int(counts["orders_cancelled"]),
        units_reserved_now=int(counts["reserved_now"]),
        unavailable_now=UnitsByState(
            damaged=int(counts["damaged_now"]),
            quality_control=int(counts["quality_control_now"]),
            safety_stock=int(counts["safety_stock_now"]),
        ),
    )


@dataclass(frozen=True, slots=True)
class LowStock:
    """A variant at or under its low-stock threshold now (units summed over locations)."""

    sku: str
    available: int
    threshold: int


#: Most variants `low_stock_now` lists.
MAX_LOW_STOCK = 200

_LOW_STOCK = text(
    """
SELECT v.sku, coalesce(sum(l.on_hand - l.reserved - l.damaged - l.quality_control
                          - l.safety_stock), 0) AS available,
       v.low_stock_threshold AS threshold
FROM variants v LEFT JOIN stock_levels l ON l.variant_id = v.id
GROUP BY v.id
HAVING coalesce(sum(l.on_hand - l.reserved - l.damaged - l.quality_control
                    - l.safety_stock), 0) <= v.low_stock_threshold
ORDER BY available, v.sku
LIMIT :limit
"""
)


async def low_stock_now(conn: AsyncConnection, *, limit: int = MAX_LOW_STOCK) -> list[LowStock]:
    """Variants whose available units (all locations) are at or under their threshold now,
    fewest first, then by SKU; at most `limit` (the daily low-stock list of the CLI)."""
    rows = (await conn.execute(_LOW_STOCK, {"limit": limit})).all()
    return [
        LowStock(sku=r.sku, available=int(r.available), threshold=int(r.threshold)) for r in rows
    ]
