"""DESIGN.md invariants 1 and 2, checked from the database (CLI and every test scenario),
with the stock states of docs/adr/0017-stock-states.md and the backorders of
docs/adr/0018-backorders.md."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_CHECK = text(
    """
    WITH ledger AS (
        SELECT stock_level_id, sum(on_hand_delta) AS on_hand, sum(reserved_delta) AS reserved,
               sum(backordered_delta) AS backordered,
               count(*) AS movements, max(version) AS last_version,
               sum(CASE WHEN to_state = 'DAMAGED' THEN quantity ELSE 0 END)
                 - sum(CASE WHEN from_state = 'DAMAGED' THEN quantity ELSE 0 END) AS damaged,
               sum(CASE WHEN to_state = 'QUALITY_CONTROL' THEN quantity ELSE 0 END)
                 - sum(CASE WHEN from_state = 'QUALITY_CONTROL' THEN quantity ELSE 0 END)
                 AS quality_control,
               sum(CASE WHEN to_state = 'SAFETY_STOCK' THEN quantity ELSE 0 END)
                 - sum(CASE WHEN from_state = 'SAFETY_STOCK' THEN quantity ELSE 0 END)
                 AS safety_stock
          FROM stock_movements GROUP BY stock_level_id
    ), held AS (
        SELECT rl.stock_level_id, sum(rl.quantity - rl.backordered_quantity) AS reserved,
               sum(rl.backordered_quantity) AS backordered
          FROM reservation_lines rl JOIN reservations r ON r.id = rl.reservation_id
         WHERE r.status = 'ACTIVE'
         GROUP BY rl.stock_level_id
    ), waiting AS (
        SELECT stock_level_id, sum(backordered_quantity) AS backordered
          FROM order_allocations WHERE backordered_quantity > 0 GROUP BY stock_level_id
    )
    SELECT sl.id, v.sku, l.name AS location, sl.on_hand, sl.reserved, sl.version,
           sl.damaged, sl.quality_control, sl.safety_stock,
           coalesce(ledger.damaged, 0) AS ledger_damaged,
           coalesce(ledger.quality_control, 0) AS ledger_quality_control,
           coalesce(ledger.safety_stock, 0) AS ledger_safety_stock,
           coalesce(ledger.on_hand, 0) AS ledger_on_hand,
           coalesce(ledger.reserved, 0) AS ledger_reserved,
           coalesce(held.reserved, 0) AS held_reserved,
           coalesce(ledger.movements, 0) AS movements,
           coalesce(ledger.last_version, 0) AS last_version,
           sl.backordered, coalesce(ledger.backordered, 0) AS ledger_backordered,
           coalesce(held.backordered, 0) + coalesce(waiting.backordered, 0) AS promised
      FROM stock_levels sl
      JOIN variants v ON v.id = sl.variant_id
      JOIN locations l ON l.id = sl.location_id
      LEFT JOIN ledger ON ledger.stock_level_id = sl.id
      LEFT JOIN held ON held.stock_level_id = sl.id
      LEFT JOIN waiting ON waiting.stock_level_id = sl.id
     WHERE sl.on_hand < 0 OR sl.reserved < 0 OR sl.backordered < 0
        OR sl.damaged < 0 OR sl.quality_control < 0 OR sl.safety_stock < 0
        OR sl.reserved + sl.damaged + sl.quality_control + sl.safety_stock > sl.on_hand
        OR sl.damaged <> coalesce(ledger.damaged, 0)
        OR sl.quality_control <> coalesce(ledger.quality_control, 0)
        OR sl.safety_stock <> coalesce(ledger.safety_stock, 0)
        OR sl.on_hand <> coalesce(ledger.on_hand, 0)
        OR sl.reserved <> coalesce(ledger.reserved, 0)
        OR sl.reserved <> coalesce(held.reserved, 0)
        OR sl.version <> coalesce(ledger.movements, 0)
        OR sl.version <> coalesce(ledger.last_version, 0)
        OR sl.backordered <> coalesce(ledger.backordered, 0)
        OR sl.backordered <> coalesce(held.backordered, 0) + coalesce(waiting.backordered, 0)
     ORDER BY sl.id
    """
)


@dataclass(frozen=True, slots=True)
class Violation:
    """A level whose figures break a CHECK, or disagree with its ledger or with its active
    reservations. States (`damaged`, ...) are as held; `ledger_states` as the ledger's
    rows naming a state sum them (damaged, quality control, safety stock)."""

    level_id: int
    sku: str
    location: str
    on_hand: int
    reserved: int
    version: int
    ledger_on_hand: int
    ledger_reserved: int
    held_reserved: int
    movements: int
    states: tuple[int, int, int] = (0, 0, 0)
    ledger_states: tuple[int, int, int] = (0, 0, 0)
    #: Units promised beyond stock: as held, as the ledger sums them, and as the active
    #: reservation lines plus waiting order allocations count them (ADR 0018).
    backordered: int = 0
    ledger_backordered: int = 0
    promised: int = 0

    def describe(self) -> str:
        """One line for humans: what disagrees with what."""
        return (
            f"{self.sku} @ {self.location}: on hand {self.on_hand} (ledger {self.ledger_on_hand}), "
            f"reserved {self.reserved} (ledger {self.ledger_reserved}, active reservations "
            f"{self.held_reserved}), version {self.version} ({self.movements} movements), "
            f"damaged/quality control/safety stock {self.states} (ledger {self.ledger_states}), "
            f"backordered {self.backordered} (ledger {self.ledger_backordered}, reservations "
            f"and orders {self.promised})"
        )


async def find_violations(conn: AsyncConnection | AsyncSession) -> list[Violation]:
    """Every level breaking: CHECKs (every figure >= 0, reserved + unavailable <= on hand);
    on hand = ledger sum; reserved = ledger sum = active reservation lines' covered units
    (quantity - backordered_quantity); backordered = ledger sum = active reservation lines'
    backordered_quantity + waiting order allocations' backordered_quantity (ADR 0018);
    each state = its rows' units in minus out (`to_state`/`from_state`, any kind, ADR 0017);
    version = its number of movements (one row per change)."""
    rows = await conn.execute(_CHECK)
    return [
        Violation(
            level_id=r.id,
            sku=r.sku,
            location=r.location,
            on_hand=r.on_hand,
            reserved=r.reserved,
            version=r.version,
            ledger_on_hand=int(r.ledger_on_hand),
            ledger_reserved=int(r.ledger_reserved),
            held_reserved=int(r.held_reserved),
            movements=int(r.movements),
            states=(int(r.damaged), int(r.quality_control), int(r.safety_stock)),
            ledger_states=(
                int(r.ledger_damaged),
                int(r.ledger_quality_control),
                int(r.ledger_safety_stock),
            ),
            backordered=int(r.backordered),
            ledger_backordered=int(r.ledger_backordered),
            promised=int(r.promised),
        )
        for r in rows
    ]
