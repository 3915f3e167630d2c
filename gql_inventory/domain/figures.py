"""The stock formula in one place: what is unavailable and available at one level (ADR 0017,
ADR 0018)."""

from __future__ import annotations


def available_of(on_hand: int, reserved: int, unavailable: int, backordered: int) -> int:
    """`on_hand - reserved - unavailable - backordered` (units): what a new buyer may
    reserve from stock; below 0 only by backorders (units promised beyond stock, ADR 0018)."""
    return on_hand - reserved - unavailable - backordered


class StockFigures:
    """Derived figures of anything with a level's `on_hand`, `reserved`, `damaged`,
    `quality_control`, `safety_stock` and `backordered` (units): mixed into frozen, slotted
    dataclasses (`domain.rows.LevelRow`, `live.wire.StockEvent`, `stock.levels.LockedLevel`),
    so it adds no instance state."""

    __slots__ = ()
    on_hand: int
    reserved: int
    damaged: int
    quality_control: int
    safety_stock: int
    backordered: int

    @property
    def unavailable(self) -> int:
        """`damaged + quality_control + safety_stock`: on hand, never reserved or sold."""
        return self.damaged + self.quality_control + self.safety_stock

    @property
    def available(self) -> int:
        """`on_hand - reserved - unavailable - backordered`: what a new buyer may reserve
        from stock; below 0 only by backorders (units promised beyond stock, ADR 0018)."""
        return available_of(self.on_hand, self.reserved, self.unavailable, self.backordered)
