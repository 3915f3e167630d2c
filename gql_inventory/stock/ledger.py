"""The one way a stock level changes: a guarded UPDATE plus its ledger row, in one statement.

Every change to `stock_levels` goes through `apply_movement`, so DESIGN.md
invariant 3 (one ledger row per change, in the same transaction) holds by
construction. The guard is the CHECK constraints evaluated on the new figures,
so a refused change is reported as "no row" instead of aborting the
transaction with a constraint violation.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.uow import AppliedMovement as AppliedMovement
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind

_APPLY = text(
    """
    WITH level AS (
        UPDATE stock_levels
           SET on_hand = on_hand + :on_hand_delta,
               reserved = reserved + :reserved_delta,
               version = version + 1,
               updated_at = now()
         WHERE id = :level_id
           AND on_hand + :on_hand_delta >= 0
           AND reserved + :reserved_delta >= 0
           AND reserved + :reserved_delta <= on_hand + :on_hand_delta
        RETURNING id, variant_id, location_id, on_hand, reserved, version
    )
    INSERT INTO stock_movements (
        stock_level_id, variant_id, location_id, kind, on_hand_delta, reserved_delta,
        on_hand_after, reserved_after, version, reason, reference, actor)
    SELECT id, variant_id, location_id, :kind, :on_hand_delta, :reserved_delta,
           on_hand, reserved, version, :reason, :reference, :actor
      FROM level
    RETURNING id, stock_level_id, variant_id, location_id, kind, on_hand_delta, reserved_delta,
              on_hand_after, reserved_after, version, reason, reference, actor, txid,
              occurred_at
    """
)


async def apply_movement(
    uow: UnitOfWork,
    *,
    level_id: int,
    kind: MovementKind,
    on_hand_delta: int = 0,
    reserved_delta: int = 0,
    reason: str | None = None,
    reference: str | None = None,
) -> AppliedMovement | None:
    """Change one stock level and write its ledger row, or change nothing.

    Deltas are in units. Returns the written movement, or None when the change
    would break a CHECK constraint (`on_hand >= 0`, `reserved >= 0`,
    `reserved <= on_hand`), e.g. reserving more than is available. The caller
    decides what a refusal means. Takes the level's row lock until the
    transaction ends; callers touching several levels call in ascending
    `level_id` order so two transactions can never deadlock. The row's `actor` is
    `uow.actor` (who caused the change).
    """
    session = uow.session
    if on_hand_delta == 0 and reserved_delta == 0:
        raise ValueError("a movement must change on hand or reserved")
    result = await session.execute(
        _APPLY,
        {
            "level_id": level_id,
            "kind": kind.value,
            "on_hand_delta": on_hand_delta,
            "reserved_delta": reserved_delta,
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


_ENSURE_LEVEL = text(
    """
    WITH ins AS (
        INSERT INTO stock_levels (variant_id, location_id)
        VALUES (:variant_id, :location_id)
        ON CONFLICT (variant_id, location_id) DO NOTHING
        RETURNING id
    )
    SELECT id FROM ins
    UNION ALL
    SELECT id FROM stock_levels WHERE variant_id = :variant_id AND location_id = :location_id
    LIMIT 1
    """
)


async def ensure_level(session: AsyncSession, *, variant_id: int, location_id: int) -> int:
    """The id of the (variant, location) stock level, created at zero if missing."""
    result = await session.execute(
        _ENSURE_LEVEL, {"variant_id": variant_id, "location_id": location_id}
    )
    level_id = result.scalar_one_or_none()
    if level_id is None:  # a concurrent insert not yet visible to our snapshot
        result = await session.execute(
            _ENSURE_LEVEL, {"variant_id": variant_id, "location_id": location_id}
        )
        level_id = result.scalar_one()
    return int(level_id)


_LOCK_LEVEL = text("SELECT on_hand, reserved FROM stock_levels WHERE id = :level_id FOR UPDATE")


async def set_on_hand(
    uow: UnitOfWork,
    *,
    level_id: int,
    on_hand: int,
    kind: MovementKind,
    reason: str | None = None,
    reference: str | None = None,
    expected_on_hand: int | None = None,
) -> tuple[AppliedMovement | None, int, int]:
    """Set a level's on-hand figure to an absolute `on_hand` (a count).

    Locks the row, then applies the difference through `apply_movement`.
    Returns ``(movement, on_hand_before, reserved)``; movement is None when the
    figure already matches (no change, no ledger row), when `expected_on_hand`
    differs from the current figure (caller reports STOCK_CHANGED), or when
    `on_hand` is below `reserved` (caller reports INSUFFICIENT_STOCK).
    """
    session = uow.session
    row = (await session.execute(_LOCK_LEVEL, {"level_id": level_id})).one()
    before, reserved = int(row.on_hand), int(row.reserved)
    if expected_on_hand is not None and expected_on_hand != before:
        return None, before, reserved
    if on_hand == before or on_hand < reserved:
        return None, before, reserved
    movement = await apply_movement(
        uow,
        level_id=level_id,
        kind=kind,
        on_hand_delta=on_hand - before,
        reason=reason,
        reference=reference,
    )
    return movement, before, reserved
