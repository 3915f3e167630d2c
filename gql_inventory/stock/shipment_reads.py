"""Reads of inbound shipments: a page of them (newest first), shipments and their lines by
id, and per variant what open shipments still expect (`incoming`, `nextIncomingAt`).

Reads only; the writes are `stock.shipments`. Each function is one statement, batched
over the ids it is given (the request's DataLoaders call them, `readmodel.shipments`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import RowMapping, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.models import InboundShipment, InboundShipmentLine
from gql_inventory.orders.lists import Keyset, ListPage, keyset_page
from gql_inventory.stock.shipments import OPEN_STATUSES


async def shipment_page(
    conn: AsyncConnection,
    *,
    first: int,
    after: Keyset | None,
    statuses: Collection[str] | None,
) -> ListPage:
    """Inbound shipments newest first (`created_at`, then id, descending), after the
    cursor's row, with their total count. `statuses` None: all (empty: none)."""
    filtered = select(InboundShipment.__table__)
    if statuses is not None:
        filtered = filtered.where(InboundShipment.status.in_(list(statuses)))
    return await keyset_page(
        conn, filtered, first=first, after=after, sort_column="created_at", descending=True
    )


async def shipments_by_id(
    conn: AsyncConnection, ids: Sequence[uuid.UUID]
) -> list[RowMapping | None]:
    """`inbound_shipments` rows in the order of `ids` (None where there is none)."""
    rows = await conn.execute(select(InboundShipment.__table__).where(InboundShipment.id.in_(ids)))
    found = {r.id: r._mapping for r in rows}
    return [found.get(i) for i in ids]


async def shipment_lines(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> list[list[RowMapping]]:
    """Each shipment's `inbound_shipment_lines` rows in their created order."""
    rows = await conn.execute(
        select(InboundShipmentLine.__table__)
        .where(InboundShipmentLine.shipment_id.in_(ids))
        .order_by(InboundShipmentLine.shipment_id, InboundShipmentLine.position)
    )
    grouped: dict[uuid.UUID, list[RowMapping]] = defaultdict(list)
    for r in rows:
        grouped[r.shipment_id].append(r._mapping)
    return [grouped[i] for i in ids]


@dataclass(frozen=True, slots=True)
class Incoming:
    """What open shipments (OPEN, PARTIALLY_RECEIVED) still expect of one variant:
    units per location id, and the earliest `expected_at` among them (None: no date)."""

    by_location: dict[int, int] = field(default_factory=dict)
    next_at: datetime | None = None

    @property
    def total(self) -> int:
        """Units expected over every location."""
        return sum(self.by_location.values())


async def incoming_by_variant(conn: AsyncConnection, variant_ids: Sequence[int]) -> list[Incoming]:
    """`Incoming` of each variant in `variant_ids` (units not yet received on open
    shipments' lines; a cancelled or received shipment expects nothing)."""
    line, shipment = InboundShipmentLine, InboundShipment
    rows = await conn.execute(
        select(
            line.variant_id,
            shipment.location_id,
            func.sum(line.quantity_expected - line.quantity_received).label("units"),
            func.min(shipment.expected_at).label("next_at"),
        )
        .join(shipment, shipment.id == line.shipment_id)
        .where(
            line.variant_id.in_(variant_ids),
            shipment.status.in_([s.value for s in OPEN_STATUSES]),
            line.quantity_received < line.quantity_expected,
        )
        .group_by(line.variant_id, shipment.location_id)
    )
    by_location: dict[int, dict[int, int]] = defaultdict(dict)
    next_at: dict[int, datetime] = {}
    for r in rows:
        by_location[r.variant_id][r.location_id] = int(r.units)
        earliest = next_at.get(r.variant_id)
        if r.next_at is not None and (earliest is None or r.next_at < earliest):
            next_at[r.variant_id] = r.next_at
    return [Incoming(by_location.get(v, {}), next_at.get(v)) for v in variant_ids]
