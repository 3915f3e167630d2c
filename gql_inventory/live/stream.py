"""The stock event stream: positioned ledger rows, their wire format and ledger reads.

A `StockEvent` is one committed `stock_movements` row that the relay has given a
`position`. Positions are gap-free and only ever appended, so "everything after
position p" is a well-defined, stable set: that is what a resume cursor means.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gql_inventory.errors import BadCursor
from gql_inventory.live.cursors import decode_cursor, encode_cursor

#: Cursor kind of stock events: ``encode_cursor("stock", position)``.
CURSOR_KIND = "stock"

#: Keep each broadcast message under PostgreSQL's NOTIFY limit (8000 bytes).
MESSAGE_BUDGET = 7000


def channel_for(database_url: str) -> str:
    """The broadcast channel of one database (Redis may be shared by many deployments)."""
    name = urlsplit(database_url).path.strip("/") or "default"
    return ("gqlinv_" + re.sub(r"[^A-Za-z0-9_]", "_", name))[:63]


@dataclass(frozen=True, slots=True)
class StockEvent:
    """A positioned ledger row with the level's figures after the change."""

    position: int
    movement_id: int
    stock_level_id: int
    variant_id: int
    sku: str
    location_id: int
    kind: str
    on_hand_delta: int
    reserved_delta: int
    on_hand: int
    reserved: int
    version: int
    occurred_at: datetime

    @property
    def available(self) -> int:
        """`on_hand - reserved` after the change."""
        return self.on_hand - self.reserved

    @property
    def available_before(self) -> int:
        """The level's available units before the change."""
        return (self.on_hand - self.on_hand_delta) - (self.reserved - self.reserved_delta)

    @property
    def cursor(self) -> str:
        """Opaque resume cursor (pass as `after`)."""
        return encode_cursor(CURSOR_KIND, self.position)

    @classmethod
    def from_row(cls, row: Any) -> StockEvent:
        """From a row of `EVENT_COLUMNS`."""
        m = row._mapping
        return cls(
            position=m["position"],
            movement_id=m["id"],
            stock_level_id=m["stock_level_id"],
            variant_id=m["variant_id"],
            sku=m["sku"],
            location_id=m["location_id"],
            kind=m["kind"],
            on_hand_delta=m["on_hand_delta"],
            reserved_delta=m["reserved_delta"],
            on_hand=m["on_hand_after"],
            reserved=m["reserved_after"],
            version=m["version"],
            occurred_at=m["occurred_at"],
        )

    def to_wire(self) -> list[Any]:
        """Compact JSON-able form."""
        return [
            self.position,
            self.movement_id,
            self.stock_level_id,
            self.variant_id,
            self.sku,
            self.location_id,
            self.kind,
            self.on_hand_delta,
            self.reserved_delta,
            self.on_hand,
            self.reserved,
            self.version,
            self.occurred_at.isoformat(),
        ]

    @classmethod
    def from_wire(cls, item: Sequence[Any]) -> StockEvent:
        """Inverse of `to_wire`."""
        (pos, mid, level, variant, sku, loc, kind, ohd, rd, oh, r, version, at) = item
        return cls(
            position=int(pos),
            movement_id=int(mid),
            stock_level_id=int(level),
            variant_id=int(variant),
            sku=str(sku),
            location_id=int(loc),
            kind=str(kind),
            on_hand_delta=int(ohd),
            reserved_delta=int(rd),
            on_hand=int(oh),
            reserved=int(r),
            version=int(version),
            occurred_at=datetime.fromisoformat(str(at)),
        )


# ---------------------------------------------------------------- wire messages


@dataclass(frozen=True, slots=True)
class StockMessage:
    """Consecutive positioned events (a relay batch, or part of one)."""

    events: list[StockEvent]


@dataclass(frozen=True, slots=True)
class OrdersMessage:
    """Orders whose status changed in a committed transaction."""

    order_ids: list[uuid.UUID]


@dataclass(frozen=True, slots=True)
class PingMessage:
    """A hub's heartbeat; `nonce` tells the sender its own echo."""

    nonce: str


Message = StockMessage | OrdersMessage | PingMessage


def encode_stock(events: Sequence[StockEvent]) -> Iterator[str]:
    """JSON messages of at most ~`MESSAGE_BUDGET` bytes, each a run of consecutive events."""
    chunk: list[str] = []
    size = 0
    for event in events:
        item = json.dumps(event.to_wire(), separators=(",", ":"))
        if chunk and size + len(item) > MESSAGE_BUDGET:
            yield '{"t":"s","e":[' + ",".join(chunk) + "]}"
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 1
    if chunk:
        yield '{"t":"s","e":[' + ",".join(chunk) + "]}"


def encode_orders(order_ids: Sequence[uuid.UUID]) -> Iterator[str]:
    """JSON messages naming orders whose status changed."""
    ids = [str(i) for i in dict.fromkeys(order_ids)]
    for start in range(0, len(ids), 150):
        yield json.dumps({"t": "o", "ids": ids[start : start + 150]}, separators=(",", ":"))


def encode_ping(nonce: str) -> str:
    """A heartbeat message."""
    return json.dumps({"t": "p", "n": nonce})


def decode(raw: str) -> Message | None:
    """Parse a broadcast message; None for anything unrecognised."""
    try:
        data = json.loads(raw)
        kind = data.get("t")
        if kind == "s":
            return StockMessage([StockEvent.from_wire(item) for item in data["e"]])
        if kind == "o":
            return OrdersMessage([uuid.UUID(i) for i in data["ids"]])
        if kind == "p":
            return PingMessage(str(data["n"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return None


# ---------------------------------------------------------------- ledger reads

EVENT_COLUMNS = """m.position, m.id, m.stock_level_id, m.variant_id, v.sku, m.location_id,
    m.kind, m.on_hand_delta, m.reserved_delta, m.on_hand_after, m.reserved_after,
    m.version, m.occurred_at"""

_READ_AFTER = text(
    f"""
    SELECT {EVENT_COLUMNS}
      FROM stock_movements m JOIN variants v ON v.id = m.variant_id
     WHERE m.position > :after
     ORDER BY m.position
     LIMIT :limit
    """
)

_READ_AFTER_FOR_VARIANTS = text(
    f"""
    SELECT {EVENT_COLUMNS}
      FROM stock_movements m JOIN variants v ON v.id = m.variant_id
     WHERE m.position > :after AND m.variant_id = ANY(:variant_ids)
     ORDER BY m.position
     LIMIT :limit
    """
)

_BOUNDS = text("SELECT min(position), max(position) FROM stock_movements")


async def read_after(
    conn: AsyncConnection,
    after: int,
    *,
    limit: int,
    variant_ids: Sequence[int] | None = None,
) -> list[StockEvent]:
    """Positioned events after `after`, in position order (optionally for some variants)."""
    if variant_ids is None:
        result = await conn.execute(_READ_AFTER, {"after": after, "limit": limit})
    else:
        result = await conn.execute(
            _READ_AFTER_FOR_VARIANTS,
            {"after": after, "limit": limit, "variant_ids": list(variant_ids)},
        )
    return [StockEvent.from_row(row) for row in result]


async def position_bounds(conn: AsyncConnection) -> tuple[int, int]:
    """``(min, max)`` position in the ledger; ``(0, 0)`` before anything is positioned."""
    row = (await conn.execute(_BOUNDS)).one()
    return int(row[0] or 0), int(row[1] or 0)


async def max_position(conn: AsyncConnection) -> int:
    """The highest position in the ledger (0 when none)."""
    return (await position_bounds(conn))[1]


async def check_cursor(conn: AsyncConnection, cursor: str) -> int:
    """The position inside a stock cursor, checked against the ledger.

    Raises `BadCursor` for a cursor that is malformed, ahead of the ledger (not
    issued by this database), or older than the oldest retained event.
    """
    position = decode_cursor(CURSOR_KIND, cursor)
    low, high = await position_bounds(conn)
    if position > high:
        raise BadCursor(
            f"unknown stock cursor: position {position} is beyond the ledger's last event "
            f"({high}); it was not issued by this service"
        )
    if low and position < low - 1:
        raise BadCursor(
            f"stock cursor too old: events before position {low} are no longer kept; "
            "subscribe without `after` and re-read current stock"
        )
    return position
