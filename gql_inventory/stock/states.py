"""moveStockState: move on-hand units of one location between AVAILABLE and the
unavailable states (DAMAGED, QUALITY_CONTROL, SAFETY_STOCK), docs/adr/0017-stock-states.md."""

from __future__ import annotations

from gql_inventory.domain import idempotency
from gql_inventory.domain.errors import (
    InvalidInput,
    in_input,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.shortages import (
    StateShort,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind, StockState
from gql_inventory.stock.adjust import MAX_ADJUSTMENT, AdjustResult, level_for
from gql_inventory.stock.ledger import apply_movement
from gql_inventory.stock.levels import level_states

_SCOPE = "moveStockState"


async def move_stock_state(
    uow: UnitOfWork,
    *,
    sku: str,
    location_id: str | None,
    quantity: int,
    source: StockState,
    target: StockState,
    reason: str | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> AdjustResult:
    """Move `quantity` units of `sku` at a location (None: the default one) from state
    `source` to `target`: one STATE_CHANGE ledger row, on hand and reserved unchanged.

    Raises `InvalidInput` (quantity not in 1..1,000,000, or `source == target`),
    `UnknownSku`, `UnknownLocation`, `StateShort` (an `InsufficientStock`: the source
    state holds fewer units; AVAILABLE's are ``on_hand - reserved - unavailable``),
    `IdempotencyConflict`. The same key replays the first result.
    """
    session = uow.session
    if not 1 <= quantity <= MAX_ADJUSTMENT:
        raise InvalidInput(
            f"quantity must be between 1 and {MAX_ADJUSTMENT}", field=in_input("quantity")
        )
    if source is target:
        raise InvalidInput("from and to must be different states", field=in_input("to"))
    if idempotency_key is not None:
        replay = await idempotency.claim(
            session,
            scope=_SCOPE,
            key=idempotency_key,
            payload=[sku, location_id, quantity, source.value, target.value, reason],
        )
        if replay is not None:
            return AdjustResult(level_id=replay["level_id"], movement_id=replay["movement_id"])
    level = await level_for(session, sku, location_id)
    movement = await apply_movement(
        uow,
        level_id=level.id,
        kind=MovementKind.STATE_CHANGE,
        from_state=source,
        to_state=target,
        quantity=quantity,
        reason=reason,
    )
    if movement is None:
        states = await level_states(session, level.id)
        raise StateShort(
            sku=sku,
            location=level.location,
            state=source.value,
            requested=quantity,
            available=max(states[source], 0),
            field=in_input("quantity"),
        )
    result = AdjustResult(level_id=level.id, movement_id=movement.id)
    if idempotency_key is not None:
        await idempotency.record(
            session,
            scope=_SCOPE,
            key=idempotency_key,
            result={"level_id": level.id, "movement_id": movement.id},
        )
    return result
