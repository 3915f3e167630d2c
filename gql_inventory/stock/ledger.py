"""The one module whose SQL locks stock levels for a change and changes them, each change
with its ledger row in the same statement (ADR 0013).

Two forms of one statement family:

- `apply_movement`: one level, one guarded UPDATE plus its ledger row (adjustments,
  counts, releases, sales, state moves and adjustments naming a state...). The guard
  is the CHECK constraints on the new figures, so a refused change is "no row", not a
  constraint violation aborting the transaction.
- `ReservationWrites` + `write_reservations`: new reservations, as arrays: their
  rows, lines, one UPDATE per touched level and one ledger row per (reservation,
  level), in one statement. A lone reservation is a batch of one; the group commit
  (`gql_inventory.reserving`) writes N with the same statement.

Every lock taken on levels to change them is here too (`lock_levels_by_variant`,
`lock_for_reserve`, `lock_level`, `lock_level_ids`, `lock_levels_held_by`), always in
ascending id order (the global lock order). So DESIGN.md invariant 3 holds by
construction, and `tests/test_layout.py` checks no other module writes a level.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import MOVEMENT_COLUMNS, UnitOfWork
from gql_inventory.domain.uow import AppliedMovement as AppliedMovement
from gql_inventory.models import STATE_COLUMNS, MovementKind, ReservationStatus, StockState
from gql_inventory.stock.levels import LockedLevel
from gql_inventory.stock.levels import ensure_level as ensure_level
from gql_inventory.stock.reserve_writes import ReservationWrites, ReserveLocks, RunningLevel

#: Each unavailable state's column changes by its own parameter (``:damaged_delta``...);
#: names come from `STATE_COLUMNS`, never from input.
_STATE_SETS = "".join(f"{c} = {c} + :{c}_delta, " for c in STATE_COLUMNS.values())
_STATE_GUARDS = "".join(f" AND {c} + :{c}_delta >= 0" for c in STATE_COLUMNS.values())
_HELD_AFTER = " + ".join(f"{c} + :{c}_delta" for c in STATE_COLUMNS.values())
#: What every level-changing statement returns of the level, and the ledger row's columns
#: of the level's figures after the change (ADR 0017, ADR 0018).
_LEVEL_AFTER = """id, variant_id, location_id, on_hand, reserved, version, damaged,
                  quality_control, safety_stock, backordered"""
_ROW_AFTER = """on_hand_after, reserved_after, damaged_after, quality_control_after,
        safety_stock_after, backordered_after"""

_APPLY = text(
    f"""
    WITH level AS (
        UPDATE stock_levels
           SET on_hand = on_hand + :on_hand_delta,
               reserved = reserved + :reserved_delta,
               {_STATE_SETS}
               backordered = backordered + :backordered_delta,
               version = version + 1,
               updated_at = now()
         WHERE id = :level_id
           AND on_hand + :on_hand_delta >= 0
           AND reserved + :reserved_delta >= 0{_STATE_GUARDS}
           AND backordered + :backordered_delta >= 0
           AND reserved + :reserved_delta + {_HELD_AFTER} <= on_hand + :on_hand_delta
        RETURNING {_LEVEL_AFTER}
    )
    INSERT INTO stock_movements (
        stock_level_id, variant_id, location_id, kind, on_hand_delta, reserved_delta,
        backordered_delta, {_ROW_AFTER}, from_state, to_state, quantity, version, reason,
        reference, actor)
    SELECT id, variant_id, location_id, :kind, :on_hand_delta, :reserved_delta,
           :backordered_delta, on_hand, reserved, damaged, quality_control, safety_stock,
           backordered, :from_state, :to_state, :quantity, version, :reason, :reference, :actor
      FROM level
    RETURNING {MOVEMENT_COLUMNS}
    """
)


def into_state(state: StockState, delta: int) -> dict[str, Any]:
    """`apply_movement`'s state arguments for `delta` on-hand units (+ arriving, - leaving)
    in `state`: none for AVAILABLE, else ``to_state`` or ``from_state`` and ``quantity``."""
    if state is StockState.AVAILABLE or delta == 0:
        return {}
    side = "to_state" if delta > 0 else "from_state"
    return {side: state, "quantity": abs(delta)}


async def apply_movement(
    uow: UnitOfWork,
    *,
    level_id: int,
    kind: MovementKind,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    backordered_delta: int = 0,
    from_state: StockState | None = None,
    to_state: StockState | None = None,
    quantity: int | None = None,
    reason: str | None = None,
    reference: str | None = None,
) -> AppliedMovement | None:
    """Change one stock level and write its ledger row, or change nothing.

    Deltas are in units. `quantity` units leave `from_state` and enter `to_state` (either
    may be None: units arriving or leaving on hand, `into_state`); an unavailable state's
    column changes by them, AVAILABLE has no column. The row records the three, so each
    state = its rows' units in minus out (ADR 0017). Returns the written movement, or None
    when the change would break a CHECK (every figure >= 0, ``reserved + unavailable <=
    on_hand``; `backordered` is a promise, not units here: ADR 0018), e.g. reserving more
    than is available. The caller decides what a refusal
    means. Takes the level's row lock until the transaction ends; callers touching
    several levels call in ascending `level_id` order so two transactions can never
    deadlock. The row's `actor` is `uow.actor` (who caused the change).
    """
    moved = quantity or 0
    states = {
        f"{column}_delta": (moved if to_state is state else 0)
        - (moved if from_state is state else 0)
        for state, column in STATE_COLUMNS.items()
    }
    changes = (on_hand_delta, reserved_delta, backordered_delta, *states.values())
    if not any(changes):
        raise ValueError("a movement must change on hand, reserved, backordered or a state")
    result = await uow.session.execute(
        _APPLY,
        {
            "level_id": level_id,
            "kind": kind.value,
            "on_hand_delta": on_hand_delta,
            "reserved_delta": reserved_delta,
            **states,
            "from_state": from_state.value if from_state is not None else None,
            "to_state": to_state.value if to_state is not None else None,
            "backordered_delta": backordered_delta,
            "quantity": quantity,
            "reason": reason,
            "reference": reference,
            "actor": uow.actor,
        },
    )
    row = result.first()
    if row is None:
        return None
    movement = AppliedMovement.from_row(row)
    uow.movements.append(movement)
    return movement


_LOCK_LEVEL = text(
    "SELECT on_hand, reserved, damaged + quality_control + safety_stock AS unavailable"
    " FROM stock_levels WHERE id = :level_id FOR UPDATE"
)


async def lock_level(session: AsyncSession, level_id: int) -> tuple[int, int, int]:
    """Lock one level for a change (until the transaction ends); its ``(on_hand,
    reserved, unavailable)`` in units."""
    row = (await session.execute(_LOCK_LEVEL, {"level_id": level_id})).one()
    return int(row.on_hand), int(row.reserved), int(row.unavailable)


_LOCK_HELD_LEVELS = text(
    "SELECT id FROM stock_levels WHERE id IN (SELECT stock_level_id FROM reservation_lines"
    " WHERE reservation_id = ANY(:ids)) ORDER BY id FOR UPDATE"
)


async def lock_levels_held_by(session: AsyncSession, reservation_ids: Sequence[uuid.UUID]) -> None:
    """Lock every level these reservations hold units of, in ascending id order."""
    if reservation_ids:
        await session.execute(_LOCK_HELD_LEVELS, {"ids": list(reservation_ids)})


_LOCK_LEVEL_IDS = text(
    """
    SELECT l.id, l.on_hand, l.reserved,
           l.damaged + l.quality_control + l.safety_stock AS unavailable, l.backordered,
           EXISTS (SELECT 1 FROM stock_movements m WHERE m.stock_level_id = l.id) AS has_movements
      FROM stock_levels l
     WHERE l.id = ANY(:ids)
     ORDER BY l.id
       FOR UPDATE OF l
    """
).bindparams(bindparam("ids", type_=ARRAY(BigInteger())))


async def lock_level_ids(session: AsyncSession, level_ids: Iterable[int]) -> list[Row[Any]]:
    """Lock these levels for a change in ascending id order; rows ``(id, on_hand, reserved,
    unavailable, backordered, has_movements)`` (whether the level has any ledger row yet)."""
    ids = sorted(set(level_ids))
    if not ids:
        return []
    return list((await session.execute(_LOCK_LEVEL_IDS, {"ids": ids})).all())


_LOCK_LEVELS = text(
    """
    SELECT sl.id, sl.variant_id, sl.location_id, l.priority, sl.on_hand, sl.reserved,
           sl.damaged + sl.quality_control + sl.safety_stock AS unavailable, sl.backordered,
           v.inventory_policy = 'CONTINUE' AS continue_selling, v.backorder_limit,
           v.max_per_order
      FROM stock_levels sl
      JOIN locations l ON l.id = sl.location_id
      JOIN variants v ON v.id = sl.variant_id
     WHERE sl.variant_id = ANY(:variant_ids)
     ORDER BY sl.id
       FOR UPDATE OF sl
    """
)


async def lock_levels_by_variant(
    session: AsyncSession, variant_ids: Iterable[int]
) -> defaultdict[int, list[LockedLevel]]:
    """Lock every level of these variants in ascending id order (the global lock order: two
    transactions lock the levels they share in the same order, so they never deadlock);
    ``{variant_id: [level, ...]}`` (missing variants: ``[]``). Each level carries its
    variant's inventory policy, backorder limit (ADR 0018) and `max_per_order`, read under
    the same locks."""
    grouped: defaultdict[int, list[LockedLevel]] = defaultdict(list)
    ids = sorted(set(variant_ids))
    for r in (await session.execute(_LOCK_LEVELS, {"variant_ids": ids})).all() if ids else []:
        level = LockedLevel(**r._mapping)  # the columns are named as its fields
        grouped[level.variant_id].append(level)
    return grouped


# ---------------------------------------------------------------- new reservations
# Raw asyncpg statements ($n parameters, cached by asyncpg unless DB_STATEMENT_CACHE is
# off): the group commit runs them on its own connection, a lone `reserve` on its session's.

_LOCK_FOR_RESERVE = """
WITH locked AS MATERIALIZED (
    SELECT sl.id, sl.variant_id, sl.location_id, l.priority, sl.on_hand, sl.reserved,
           sl.damaged + sl.quality_control + sl.safety_stock AS unavailable, sl.backordered,
           sl.version, l.name AS location_name
      FROM stock_levels sl
      JOIN locations l ON l.id = sl.location_id
     WHERE sl.variant_id IN (SELECT id FROM variants WHERE sku = ANY($1::text[]))
     ORDER BY sl.id
       FOR UPDATE OF sl
)
SELECT v.sku, v.id AS variant_id, k.id, k.location_id, k.priority, k.on_hand, k.reserved,
       k.unavailable, k.backordered, v.inventory_policy = 'CONTINUE' AS continue_selling,
       v.backorder_limit, k.version, now() AS tx_now, v.max_per_order, v.low_stock_threshold,
       k.location_name
  FROM variants v
  LEFT JOIN locked k ON k.variant_id = v.id
 WHERE v.sku = ANY($1::text[])
 ORDER BY k.id
"""

_WRITE_RESERVATIONS = f"""
WITH reservations_in AS (
    INSERT INTO reservations (id, status, expires_at, ttl_seconds, idempotency_key)
    SELECT r.id, '{ReservationStatus.ACTIVE.value}', r.expires_at, r.ttl, r.key
      FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::text[])
           AS r(id, expires_at, ttl, key)
), levels AS (
    UPDATE stock_levels sl
       SET reserved = sl.reserved + d.delta, backordered = sl.backordered + d.backordered,
           version = sl.version + d.n, updated_at = now()
      FROM unnest($5::bigint[], $6::int[], $7::int[], $8::bigint[]) AS d(id, delta, backordered, n)
     WHERE sl.id = d.id
), rows AS (
    SELECT * FROM unnest($9::uuid[], $10::bigint[], $11::bigint[], $12::bigint[], $13::int[],
                         $14::int[], $15::int[], $16::int[], $17::int[], $18::bigint[],
                         $19::text[], $20::int[])
           WITH ORDINALITY
           AS m(reservation_id, level_id, variant_id, location_id, quantity, backordered,
                on_hand, reserved, backordered_after, version, actor, line_ord, ord)
), lines_in AS (
    INSERT INTO reservation_lines (reservation_id, stock_level_id, variant_id, location_id,
                                   quantity, backordered_quantity)
    SELECT reservation_id, level_id, variant_id, location_id, quantity, backordered FROM rows
     ORDER BY line_ord
)
INSERT INTO stock_movements (
    stock_level_id, variant_id, location_id, kind, on_hand_delta, reserved_delta,
    backordered_delta, {_ROW_AFTER}, version, reference, actor)
SELECT m.level_id, m.variant_id, m.location_id, '{MovementKind.RESERVATION.value}', 0,
       m.quantity - m.backordered, m.backordered, m.on_hand, m.reserved, sl.damaged,
       sl.quality_control, sl.safety_stock, m.backordered_after, m.version,
       'reservation:' || m.reservation_id::text, m.actor
  FROM rows m
  JOIN stock_levels sl ON sl.id = m.level_id  -- states as locked: a reservation keeps them
 ORDER BY m.ord
RETURNING {MOVEMENT_COLUMNS}
"""


async def lock_for_reserve(conn: Any, skus: Iterable[str]) -> ReserveLocks:
    """In one statement on the asyncpg connection `conn` (in a transaction): resolve
    `skus` and lock every level of their variants FOR UPDATE in ascending id order, with
    each variant's inventory policy, backorder limit and `max_per_order` read under those
    locks (and, for the outbox events, its low-stock threshold and each level's location
    name)."""
    wanted = sorted(set(skus))
    rows = await conn.fetch(_LOCK_FOR_RESERVE, wanted) if wanted else []
    variant_ids: dict[str, int] = {}
    per_variant: dict[int, list[int]] = {}
    levels: dict[int, RunningLevel] = {}
    thresholds: dict[int, int] = {}
    locations: dict[int, tuple[int, str]] = {}
    for r in rows:
        variant_ids[r["sku"]] = r["variant_id"]
        thresholds[r["variant_id"]] = r["low_stock_threshold"]
        if r["id"] is None:  # a variant without any stock level
            continue
        locations[r["id"]] = (r["location_id"], r["location_name"])
        level = LockedLevel(
            id=r["id"],
            variant_id=r["variant_id"],
            location_id=r["location_id"],
            priority=r["priority"],
            on_hand=r["on_hand"],
            reserved=r["reserved"],
            unavailable=r["unavailable"],
            backordered=r["backordered"],
            continue_selling=r["continue_selling"],
            backorder_limit=r["backorder_limit"],
            max_per_order=r["max_per_order"],
        )
        levels[level.id] = RunningLevel(level=level, version=r["version"])
        per_variant.setdefault(level.variant_id, []).append(level.id)
    return ReserveLocks(
        variant_ids,
        per_variant,
        levels,
        rows[0]["tx_now"] if rows else None,
        thresholds,
        locations,
    )


async def write_reservations(conn: Any, writes: ReservationWrites) -> list[AppliedMovement]:
    """Write every reservation of `writes` in one statement on the asyncpg connection
    `conn` (in the transaction that locked the levels): the reservations and their
    lines, each touched level once (``reserved += covered``, ``backordered += promised``,
    ``version += movements``), one ledger row per (reservation, level). Returns the
    ledger rows, in ledger order.
    The CHECK constraints still guard every level."""
    if not writes.reservations[0]:
        return []
    touched = [(i, s) for i, s in sorted(writes.locks.levels.items()) if s.movements]
    written = await conn.fetch(
        _WRITE_RESERVATIONS,
        *writes.reservations,
        [i for i, _ in touched],
        [s.added for _, s in touched],
        [s.added_backordered for _, s in touched],
        [s.movements for _, s in touched],
        *writes.rows,
    )
    return [AppliedMovement.from_row(r) for r in written]
