"""What a transaction's outbox events say beyond its ledger rows, read inside the
transaction in one statement: the changed variants (SKU, threshold, their levels'
locations and available units), and the orders, reservations and inbound shipments its
`Happened` events name, as the transaction leaves them (`outbound.events`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from gql_inventory.domain.uow import VariantStock

#: One statement, one row: the transaction's time and one JSON array per kind of subject.
#: `available` is `domain.figures.available_of` (on hand - reserved - unavailable -
#: backordered); order lines' `backordered` is `readmodel.order_loaders`' sum; reservation
#: lines are summed per variant in the order of their first line, as
#: `Reservation.lines` gives them.
_READ = """
SELECT now() AS tx_now,
  (SELECT coalesce(json_agg(json_build_object(
            'id', v.id, 'sku', v.sku, 'threshold', v.low_stock_threshold,
            'levels', (SELECT coalesce(json_agg(json_build_object(
                                 'id', s.id, 'location_id', s.location_id, 'location', l.name,
                                 'available', s.on_hand - s.reserved - s.damaged
                                     - s.quality_control - s.safety_stock - s.backordered)),
                               '[]')
                         FROM stock_levels s JOIN locations l ON l.id = s.location_id
                        WHERE s.variant_id = v.id))), '[]')
     FROM variants v WHERE v.id = ANY($1::bigint[])) AS variants,
  (SELECT coalesce(json_agg(json_build_object(
            'id', o.id, 'status', o.status, 'email', o.email, 'currency', o.currency_code,
            'total', o.total_amount, 'payment_intent_id', o.payment_intent_id,
            'attention_reason', o.attention_reason, 'last_payment_error', o.last_payment_error,
            'lines', (SELECT coalesce(json_agg(json_build_object(
                                'sku', v.sku, 'quantity', ol.quantity,
                                'refunded', ol.refunded_quantity,
                                'backordered', (SELECT coalesce(sum(a.backordered_quantity), 0)
                                                  FROM order_allocations a
                                                 WHERE a.order_line_id = ol.id),
                                'unit_price', ol.unit_price_amount,
                                'currency', ol.currency_code) ORDER BY ol.id), '[]')
                        FROM order_lines ol JOIN variants v ON v.id = ol.variant_id
                       WHERE ol.order_id = o.id))), '[]')
     FROM orders o WHERE o.id = ANY($2::uuid[])) AS orders,
  (SELECT coalesce(json_agg(json_build_object(
            'id', r.id, 'status', r.status,
            'lines', (SELECT coalesce(json_agg(json_build_object(
                                'sku', g.sku, 'quantity', g.quantity,
                                'backordered', g.backordered) ORDER BY g.first), '[]')
                        FROM (SELECT v.sku, sum(rl.quantity) AS quantity,
                                     sum(rl.backordered_quantity) AS backordered,
                                     min(rl.id) AS first
                                FROM reservation_lines rl JOIN variants v ON v.id = rl.variant_id
                               WHERE rl.reservation_id = r.id
                               GROUP BY v.sku) g))), '[]')
     FROM reservations r WHERE r.id = ANY($3::uuid[])) AS reservations,
  (SELECT coalesce(json_agg(json_build_object(
            'id', sh.id, 'reference', sh.reference, 'status', sh.status,
            'location_id', sh.location_id, 'location', l.name,
            'lines', (SELECT coalesce(json_agg(json_build_object(
                                'variant_id', sl.variant_id, 'sku', v.sku,
                                'expected', sl.quantity_expected,
                                'received', sl.quantity_received) ORDER BY sl.id), '[]')
                        FROM inbound_shipment_lines sl JOIN variants v ON v.id = sl.variant_id
                       WHERE sl.shipment_id = sh.id))), '[]')
     FROM inbound_shipments sh JOIN locations l ON l.id = sh.location_id
    WHERE sh.id = ANY($4::uuid[])) AS shipments
"""


@dataclass(slots=True)
class Facts:
    """What `read_facts` found: the transaction's time (`now`, None when nothing was read)
    and, by id, each changed variant (`VariantStock`) and each named order, reservation
    and shipment (JSON objects as `_READ` builds them; ids as strings)."""

    now: datetime | None = None
    variants: dict[int, VariantStock] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)
    shipments: dict[str, dict[str, Any]] = field(default_factory=dict)


def _json(raw: Any) -> list[dict[str, Any]]:
    """A JSON column as asyncpg gives it: text, or already decoded on connections with a
    json codec (SQLAlchemy's asyncpg dialect sets one)."""
    found: list[dict[str, Any]] = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    return found


def _by_id(raw: Any) -> dict[str, dict[str, Any]]:
    return {str(item["id"]): item for item in _json(raw)}


async def read_facts(
    conn: Any,
    *,
    variant_ids: Collection[int],
    orders: Collection[uuid.UUID],
    reservations: Collection[uuid.UUID],
    shipments: Collection[uuid.UUID],
) -> Facts:
    """Read these subjects in the open transaction of the asyncpg connection `conn`, in one
    statement (none when there is nothing to read)."""
    if not (variant_ids or orders or reservations or shipments):
        return Facts()
    row = await conn.fetchrow(
        _READ, list(variant_ids), list(orders), list(reservations), list(shipments)
    )
    variants: dict[int, VariantStock] = {}
    for item in _json(row["variants"]):
        levels = item["levels"]
        variants[int(item["id"])] = VariantStock(
            sku=item["sku"],
            low_stock_threshold=int(item["threshold"]),
            available=sum(int(level["available"]) for level in levels),
            locations={
                int(level["id"]): (int(level["location_id"]), level["location"]) for level in levels
            },
        )
    return Facts(
        now=row["tx_now"],
        variants=variants,
        orders=_by_id(row["orders"]),
        reservations=_by_id(row["reservations"]),
        shipments=_by_id(row["shipments"]),
    )
