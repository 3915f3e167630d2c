"""Backorders of paid orders (ADR 0018): filling them from stock as it arrives, and letting
refunded ones go.

A paid order's units not covered by stock wait at a level as
`order_allocations.backordered_quantity`; they are part of the level's `backordered`.
`fill_backorders` is called after every receipt, in the receipt's transaction: the units
on hand and not held (``on_hand - reserved - unavailable``) go to the waiting allocations,
oldest paid order first, one BACKORDER_FILL ledger row per fill (on hand and backordered
both drop by the units filled; available is unchanged by a fill). `release_waiting` gives
up the waiting units a refund covers (a RELEASE row, backordered only), before any sold
unit is returned.

Lock order: levels (ascending id), then their waiting allocations, as the receipt holds
its level already; the refund path locks the order, then the levels, then the
allocations. Level changes go through `stock.ledger.apply_movement`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import AppliedMovement, UnitOfWork
from gql_inventory.models import MovementKind
from gql_inventory.orders.orders import order_reference
from gql_inventory.stock.ledger import apply_movement, lock_level_ids

_LOCK_WAITING = text(
    """
    SELECT a.id, a.quantity, a.backordered_quantity, o.id AS order_id
      FROM order_allocations a
      JOIN order_lines ol ON ol.id = a.order_line_id
      JOIN orders o ON o.id = ol.order_id
     WHERE a.stock_level_id = :level_id AND a.backordered_quantity > 0
     ORDER BY o.payment_applied_at NULLS LAST, o.created_at, o.id, a.id
       FOR UPDATE OF a
    """
)

_WAITING_LEVELS_OF_ORDER = text(
    """
    SELECT DISTINCT a.stock_level_id
      FROM order_allocations a JOIN order_lines ol ON ol.id = a.order_line_id
     WHERE ol.order_id = :order_id
    """
)

_LOCK_WAITING_OF_LINE = text(
    """
    SELECT id, stock_level_id, quantity, backordered_quantity
      FROM order_allocations
     WHERE order_line_id = :line_id AND backordered_quantity > 0
     ORDER BY stock_level_id, id
       FOR UPDATE
    """
)

_SETTLE = text(
    "UPDATE order_allocations SET quantity = quantity + :filled,"
    " backordered_quantity = backordered_quantity - :filled - :dropped WHERE id = :id"
)
_DROP = text("DELETE FROM order_allocations WHERE id = :id")


async def fill_backorders(uow: UnitOfWork, level_ids: Iterable[int]) -> list[AppliedMovement]:
    """Give the units on hand and not held at these levels to paid orders waiting there,
    oldest paid order first (`orders.payment_applied_at`, then `created_at`, then id).

    Call it in the transaction of every receipt (adjustments and counts raising on hand,
    transfers in, bulk adjustments, returns, shipments received), after the receipt's
    ledger row. Locks the levels in ascending id order, then their waiting allocations.
    Per fill of `f` units: one BACKORDER_FILL ledger row (``on_hand_delta = -f``,
    ``backordered_delta = -f``, reference ``order:<id>``), and the allocation's
    `quantity` grows by `f` while its `backordered_quantity` drops by `f`. Units fillable
    at a level: ``min(on_hand - reserved - unavailable, units waiting)``. Returns the
    BACKORDER_FILL rows written (none for levels without backorders, e.g. DENY variants).
    """
    session = uow.session
    fills: list[AppliedMovement] = []
    for level in await lock_level_ids(session, level_ids):
        if level.backordered == 0:
            continue
        free = int(level.on_hand) - int(level.reserved) - int(level.unavailable)
        for waiting in await _lock_waiting(session, int(level.id)) if free > 0 else []:
            if free <= 0:
                break
            units = min(free, int(waiting.backordered_quantity))
            movement = await apply_movement(
                uow,
                level_id=int(level.id),
                kind=MovementKind.BACKORDER_FILL,
                on_hand_delta=-units,
                backordered_delta=-units,
                reference=order_reference(waiting.order_id),
            )
            if movement is None:  # locked and counted above: this is a bug
                raise RuntimeError(f"level {level.id} refused a fill of {units}")
            await _settle(session, waiting, filled=units)
            fills.append(movement)
            free -= units
    return fills


async def lock_levels_of_order(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Lock every level an order has allocations at, in ascending id order (before its
    allocations are locked: the order of `fill_backorders`)."""
    rows = await session.execute(_WAITING_LEVELS_OF_ORDER, {"order_id": order_id})
    await lock_level_ids(session, [int(r.stock_level_id) for r in rows])


async def release_waiting(
    uow: UnitOfWork, order_id: uuid.UUID, units: Mapping[int, int], *, reason: str | None
) -> dict[int, int]:
    """Give up units of a locked order still waiting for stock: up to `units[line_id]` per
    order line, by level id. Each level gets one RELEASE row (``backordered_delta = -n``,
    reference ``order:<id>``); nothing is restocked (these units never arrived). An
    allocation left with nothing is deleted. Returns ``{line_id: units released}``.
    Call `lock_levels_of_order` first.
    """
    session = uow.session
    released: dict[int, int] = {}
    per_level: dict[int, int] = {}
    for line_id, wanted in units.items():
        left = wanted
        for waiting in (await session.execute(_LOCK_WAITING_OF_LINE, {"line_id": line_id})).all():
            if left == 0:
                break
            take = min(left, int(waiting.backordered_quantity))
            await _settle(session, waiting, dropped=take)
            per_level[int(waiting.stock_level_id)] = per_level.get(waiting.stock_level_id, 0) + take
            released[line_id] = released.get(line_id, 0) + take
            left -= take
    for level_id in sorted(per_level):
        movement = await apply_movement(
            uow,
            level_id=level_id,
            kind=MovementKind.RELEASE,
            backordered_delta=-per_level[level_id],
            reference=order_reference(order_id),
            reason=reason,
        )
        if movement is None:  # the level counts these units: this is a bug
            raise RuntimeError(f"level {level_id} refused to release {per_level[level_id]}")
    return released


async def _lock_waiting(session: AsyncSession, level_id: int) -> list[Row[Any]]:
    return list((await session.execute(_LOCK_WAITING, {"level_id": level_id})).all())


async def _settle(
    session: AsyncSession, waiting: Any, *, filled: int = 0, dropped: int = 0
) -> None:
    """Move `filled` waiting units to sold and give up `dropped`; an allocation left with
    neither sold nor waiting units is deleted (its CHECK wants one of them)."""
    if int(waiting.quantity) + filled == 0 and int(waiting.backordered_quantity) == dropped:
        await session.execute(_DROP, {"id": waiting.id})
    else:
        await session.execute(_SETTLE, {"id": waiting.id, "filled": filled, "dropped": dropped})
