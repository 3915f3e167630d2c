"""reserveStock for the GraphQL layer: every call, keyed or not, goes through the group
commit (ADR 0008, ADR 0013)."""

from __future__ import annotations

from collections.abc import Sequence

from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.rows import ReservationRow
from gql_inventory.services import Services
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.reserve import ReserveRequest


async def reserve_stock(
    services: Services,
    lines: Sequence[LineRequest],
    *,
    ttl_seconds: int | None,
    idempotency_key: IdempotencyKey | None,
    actor: str,
) -> ReservationRow:
    """Reserve every line or none for `actor`, in the next group commit: the reservation
    as committed (or, for an `idempotency_key` used before with the same input, the
    first call's reservation as it is now).

    Raises what `ReserveBatcher.reserve` raises.
    """
    request = ReserveRequest(lines, ttl_seconds, actor, idempotency_key)
    return await services.reserve_batcher.reserve(request)
