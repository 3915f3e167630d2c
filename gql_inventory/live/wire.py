"""Stock events and the broadcast wire format: what travels between processes.

A `StockEvent` is one committed `stock_movements` row that the relay has given a
`position`. Positions are gap-free and only ever appended, so "everything after
position p" is a well-defined, stable set: that is what a resume cursor means
(reading and checking positions against the ledger: `gql_inventory.live.ledger`).
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

from gql_inventory.domain.figures import StockFigures
from gql_inventory.live.cursors import encode_cursor

#: Cursor kind of stock events: ``encode_cursor("stock", position)``.
CURSOR_KIND = "stock"

#: Keep each broadcast message under PostgreSQL's NOTIFY limit (8000 bytes).
MESSAGE_BUDGET = 7000


def channel_for(database_url: str) -> str:
    """The broadcast channel of one database (Redis may be shared by many deployments)."""
    name = urlsplit(database_url).path.strip("/") or "default"
    return ("gqlinv_" + re.sub(r"[^A-Za-z0-9_]", "_", name))[:63]


@dataclass(frozen=True, slots=True)
class StockEvent(StockFigures):
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
    #: The level's unavailable states after the change (ADR 0017).
    damaged: int = 0
    quality_control: int = 0
    safety_stock: int = 0
    #: Units promised beyond stock after the change (ADR 0018).
    backordered: int = 0

    @property
    def cursor(self) -> str:
        """Opaque resume cursor (pass as `after`)."""
        return encode_cursor(CURSOR_KIND, self.position)

    @classmethod
    def from_row(cls, row: Any) -> StockEvent:
        """From a row of `gql_inventory.live.ledger.EVENT_COLUMNS`."""
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
            damaged=m["damaged_after"],
            quality_control=m["quality_control_after"],
            safety_stock=m["safety_stock_after"],
            backordered=m["backordered_after"],
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
            self.damaged,
            self.quality_control,
            self.safety_stock,
            self.backordered,
        ]

    @classmethod
    def from_wire(cls, item: Sequence[Any]) -> StockEvent:
        """Inverse of `to_wire`."""
        (pos, mid, level, variant, sku, loc, kind, ohd, rd, oh, r, version, at, *states) = item
        damaged, quality_control, safety_stock, backordered = (
            [int(n) for n in states] + [0, 0, 0, 0]
        )[:4]
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
            damaged=damaged,
            quality_control=quality_control,
            safety_stock=safety_stock,
            backordered=backordered,
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
