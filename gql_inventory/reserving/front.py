"""reserveStock for the GraphQL layer: group commit when the process batches, the
one-transaction path otherwise (ADR 0008)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.reserving.batcher import BatchAborted, Reserved
from gql_inventory.services import Services
from gql_inventory.stock import reservations
from gql_inventory.stock.levels import LineRequest
from gql_inventory.uow import run_in_transaction


async def reserve_stock(
    services: Services,
    lines: Sequence[LineRequest],
    *,
    ttl_seconds: int | None,
    idempotency_key: IdempotencyKey | None,
    actor: str,
) -> Reserved | uuid.UUID:
    """Reserve every line or none for `actor`: the new reservation (`Reserved`, its id and
    committed row, from a group commit) or its id (from the one-transaction path).

    Without an idempotency key, and while `services.reserve_batcher` is set, the request
    joins the next group commit; a batch that failed before its commit is retried here
    alone. Keyed requests, or every request when batching is off, run in their own
    transaction (`reservations.reserve` in `run_in_transaction`). Raises what
    `reservations.reserve` raises.
    """
    batcher = services.reserve_batcher
    if batcher is not None and idempotency_key is None:
        try:
            return await batcher.reserve_row(lines, ttl_seconds=ttl_seconds, actor=actor)
        except BatchAborted:
            pass  # nothing of it was applied: try it on its own
    return await run_in_transaction(
        services,
        lambda uow: reservations.reserve(
            uow,
            lines,
            limits=services.reservation_limits,
            ttl_seconds=ttl_seconds,
            idempotency_key=idempotency_key,
        ),
        actor=actor,
    )
