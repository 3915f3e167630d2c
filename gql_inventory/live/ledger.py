"""Reads of the positioned ledger (`stock_movements`): events after a position, its bounds,
and the check of a resume cursor against them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gql_inventory.live.cursors import InvalidCursor, decode_cursor
from gql_inventory.live.wire import CURSOR_KIND, StockEvent

#: Events read from the ledger per query (catch-up and replay).
LEDGER_PAGE = 500

EVENT_COLUMNS = """m.position, m.id, m.stock_level_id, m.variant_id, v.sku, m.location_id,
    m.kind, m.on_hand_delta, m.reserved_delta, m.on_hand_after, m.reserved_after,
    m.version, m.occurred_at, m.damaged_after, m.quality_control_after, m.safety_stock_after,
    m.backordered_after"""

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

    Raises `InvalidCursor` for a cursor that is malformed, ahead of the ledger (not
    issued by this database: "ahead"), or older than the oldest retained event
    ("expired").
    """
    return (await check_cursor_at_head(conn, cursor))[0]


async def check_cursor_at_head(conn: AsyncConnection, cursor: str) -> tuple[int, int]:
    """``(position inside the cursor, the ledger's last position)``; raises like
    `check_cursor`."""
    position = decode_cursor(CURSOR_KIND, cursor)
    low, high = await position_bounds(conn)
    if position > high:
        raise InvalidCursor(CURSOR_KIND, "ahead", position=position, bound=high)
    if low and position < low - 1:
        raise InvalidCursor(CURSOR_KIND, "expired", position=position, bound=low)
    return position, high


async def pages_after(
    engine: AsyncEngine, after: int, variant_ids: frozenset[int] | None
) -> AsyncIterator[list[StockEvent]]:
    """Pages (of up to `LEDGER_PAGE` events) after position `after`, optionally for some
    variants, each read on its own connection; ends after the first short page."""
    ids = sorted(variant_ids) if variant_ids is not None else None
    while True:
        async with engine.connect() as conn:
            page = await read_after(conn, after, limit=LEDGER_PAGE, variant_ids=ids)
        if page:
            yield page
            after = page[-1].position
        if len(page) < LEDGER_PAGE:
            return
