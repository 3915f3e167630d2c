"""The stock formula in one place: what is unavailable and available at one level (ADR 0017)."""

from __future__ import annotations


class StockFigures:
    """Derived figures of anything with a level's `on_hand`, `reserved`, `damaged`,
    `quality_control` and `safety_stock` (units): mixed into frozen, slotted dataclasses
    (`domain.rows.LevelRow`, `live.wire.StockEvent`), so it adds no instance state."""

    __slots__ = ()
    on_hand: int
    reserved: int
    damaged: int
    quality_control: int
    safety_stock: int

    @property
    def unavailable(self) -> int:
        """`damaged + quality_control + safety_stock`: on hand, never reserved or sold."""
        return self.damaged + self.quality_control + self.safety_stock

    @property
    def available(self) -> int:
        """`on_hand - reserved - unavailable`: what a new buyer may reserve."""
        return self.on_hand - self.reserved - self.unavailable
