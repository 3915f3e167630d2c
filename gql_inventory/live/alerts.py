"""Low-stock alerts: one per crossing of a variant's threshold or of zero, from stock events."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gql_inventory.domain.rows import VARIANT_COLUMNS, VariantRow, variant_row
from gql_inventory.live.wire import StockEvent
from gql_inventory.models import Variant
from gql_inventory.stock.low_stock import LowStockState as LowStockState
from gql_inventory.stock.low_stock import crossing


@dataclass(frozen=True, slots=True)
class LowStockAlertEvent:
    """A variant's summed availability crossed a boundary (threshold or zero)."""

    position: int
    variant: VariantRow
    available: int
    threshold: int
    state: str
    occurred_at: datetime


@dataclass
class _VariantStock:
    variant: VariantRow
    levels: dict[int, int]
    loaded_at: float


_LEVELS_BEFORE = text(
    """
    SELECT s.id,
           coalesce((SELECT m.on_hand_after - m.reserved_after - m.damaged_after
                            - m.quality_control_after - m.safety_stock_after
                            - m.backordered_after
                       FROM stock_movements m
                      WHERE m.stock_level_id = s.id AND m.position < :before
                      ORDER BY m.version DESC
                      LIMIT 1), 0) AS available
      FROM stock_levels s
     WHERE s.variant_id = :variant_id
    """
)


class AlertTracker:
    """Per-variant availability (summed over locations) as of the last dispatched event.

    Entries are loaded from the ledger as of the event's position, then kept up
    to date by every event; they are reloaded after `ttl` seconds. The variant's
    threshold is re-read with every event (one primary-key read), so a
    setLowStockThreshold applies from the next event on.
    """

    def __init__(self, engine: AsyncEngine, *, ttl: float = 60.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._variants: dict[int, _VariantStock] = {}

    def clear(self) -> None:
        """Forget everything (no alert subscribers left)."""
        self._variants.clear()

    async def _load(self, variant_id: int, before: int) -> _VariantStock | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(*VARIANT_COLUMNS).where(Variant.id == variant_id))
            ).first()
            if row is None:
                return None
            levels = await conn.execute(
                _LEVELS_BEFORE, {"variant_id": variant_id, "before": before}
            )
            return _VariantStock(
                variant=variant_row(row._mapping),
                levels={int(r.id): int(r.available) for r in levels},
                loaded_at=time.monotonic(),
            )

    async def _threshold(self, variant_id: int) -> int | None:
        async with self._engine.connect() as conn:
            stmt = select(Variant.low_stock_threshold).where(Variant.id == variant_id)
            found = (await conn.execute(stmt)).scalar_one_or_none()
        return None if found is None else int(found)

    async def apply(self, event: StockEvent) -> LowStockAlertEvent | None:
        """Update with `event`; the alert when the variant changed band."""
        entry = self._variants.get(event.variant_id)
        if entry is None or time.monotonic() - entry.loaded_at > self._ttl:
            entry = await self._load(event.variant_id, event.position)
            if entry is None:
                return None
            self._variants[event.variant_id] = entry
        else:
            threshold_now = await self._threshold(event.variant_id)
            if threshold_now is None:
                return None
            if threshold_now != entry.variant.low_stock_threshold:
                entry.variant = replace(entry.variant, low_stock_threshold=threshold_now)
        threshold = entry.variant.low_stock_threshold
        before = sum(entry.levels.values())
        entry.levels[event.stock_level_id] = event.available
        after = sum(entry.levels.values())
        state = crossing(before, after, threshold)
        if state is None:
            return None
        return LowStockAlertEvent(
            position=event.position,
            variant=entry.variant,
            available=after,
            threshold=threshold,
            state=state,
            occurred_at=event.occurred_at,
        )
