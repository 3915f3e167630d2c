"""transferStock: move units of one variant between two locations in one transaction
(two TRANSFER movements with one reference), docs/adr/0017-stock-states.md."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from gql_inventory.domain import idempotency
from gql_inventory.domain.errors import (
    InvalidInput,
    in_input,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.shortages import (
    RemovalExceedsAvailable,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import MovementKind
from gql_inventory.stock.adjust import MAX_ADJUSTMENT, level_for
from gql_inventory.stock.backorders import fill_backorders
from gql_inventory.stock.ledger import apply_movement, lock_level_ids

_SCOPE = "transferStock"


@dataclass(frozen=True, slots=True)
class TransferResult:
    """The source and destination level ids and the two ledger rows written (source's
    first)."""

    from_level_id: int
    to_level_id: int
    movement_ids: list[int]


async def transfer_stock(
    uow: UnitOfWork,
    *,
    sku: str,
    from_location_id: str,
    to_location_id: str,
    quantity: int,
    reason: str | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> TransferResult:
    """Move `quantity` available units of `sku` from one location to another: on hand
    -quantity at the source, +quantity at the destination (its level created at 0 if
    missing), two TRANSFER ledger rows sharing the reference ``transfer:<uuid>``.

    Both levels are locked in ascending id order (`ledger.lock_level_ids`) before either
    changes, so two transfers in opposite directions never deadlock. Raises
    `InvalidInput` (quantity not in 1..1,000,000, or the same location twice),
    `UnknownSku`, `UnknownLocation`, `RemovalExceedsAvailable` (an `InsufficientStock`:
    the source has fewer available units, ``on_hand - reserved - unavailable``),
    `IdempotencyConflict`. The same key replays the first result.
    """
    session = uow.session
    if not 1 <= quantity <= MAX_ADJUSTMENT:
        raise InvalidInput(
            f"quantity must be between 1 and {MAX_ADJUSTMENT}", field=in_input("quantity")
        )
    if from_location_id == to_location_id:
        raise InvalidInput("the two locations must differ", field=in_input("to_location_id"))
    if idempotency_key is not None:
        replay = await idempotency.claim(
            session,
            scope=_SCOPE,
            key=idempotency_key,
            payload=[sku, from_location_id, to_location_id, quantity, reason],
        )
        if replay is not None:
            return TransferResult(
                replay["from_level_id"], replay["to_level_id"], replay["movement_ids"]
            )
    source = await level_for(session, sku, from_location_id, field="from_location_id")
    target = await level_for(session, sku, to_location_id, field="to_location_id")
    if source.id == target.id:
        raise InvalidInput("the two locations must differ", field=in_input("to_location_id"))
    locked = {int(r.id): r for r in await lock_level_ids(session, [source.id, target.id])}
    reference = f"transfer:{uuid.uuid4()}"
    taken = await apply_movement(
        uow,
        level_id=source.id,
        kind=MovementKind.TRANSFER,
        on_hand_delta=-quantity,
        reason=reason,
        reference=reference,
    )
    if taken is None:
        level = locked[source.id]
        raise RemovalExceedsAvailable(
            sku=sku,
            location_id=source.location_id,
            location=source.location,
            remove=quantity,
            on_hand=int(level.on_hand),
            reserved=int(level.reserved),
            unavailable=int(level.unavailable),
            field=in_input("quantity"),
        )
    given = await apply_movement(
        uow,
        level_id=target.id,
        kind=MovementKind.TRANSFER,
        on_hand_delta=quantity,
        reason=reason,
        reference=reference,
    )
    if given is None:  # pragma: no cover - a receipt always fits
        raise RuntimeError(f"transfer refused on stock level {target.id}")
    await fill_backorders(uow, [target.id])  # units in fill backorders first (ADR 0018)
    result = TransferResult(source.id, target.id, [taken.id, given.id])
    if idempotency_key is not None:
        await idempotency.record(
            session,
            scope=_SCOPE,
            key=idempotency_key,
            result={
                "from_level_id": source.id,
                "to_level_id": target.id,
                "movement_ids": result.movement_ids,
            },
        )
    return result
