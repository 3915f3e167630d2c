"""The in-process stock projection: every stock level's figures, kept current by live events.

Filled from `stock_levels` (one query, `gql_inventory.readmodel.catalog.load_snapshot`), then
updated from every stock event the hub dispatches and from every movement this process
commits (before the mutation's response is sent: read-your-writes). Each level keeps
the figures of the highest `version` seen: a figure is applied only when its version is
newer than the one held, so versions never go back whatever order the sources
deliver in, and applying the same figure twice changes nothing. When the projection is
trusted by readers is the read model's decision (`gql_inventory.readmodel.reads`,
docs/adr/0009-stock-projection.md). No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gql_inventory.domain.rows import LevelRow

#: ``location_id -> sort key`` of the levels of one variant: (priority, location id).
LocationOrder = Callable[[int], tuple[int, int]]


def _by_id(location_id: int) -> tuple[int, int]:
    return (0, location_id)


class StockProjection:
    """Stock levels by id (`LevelRow`, figures in units) and each variant's level ids.

    A variant's levels are kept in location order (`order`, lowest priority first,
    then location id: the order reservations draw from and `stockLevels` lists).
    """

    __slots__ = ("_by_variant", "_levels", "_order")

    def __init__(self, order: LocationOrder = _by_id) -> None:
        self._levels: dict[int, LevelRow] = {}
        self._by_variant: dict[int, list[int]] = {}
        self._order = order

    def __len__(self) -> int:
        return len(self._levels)

    def apply(
        self,
        level_id: int,
        variant_id: int,
        location_id: int,
        on_hand: int,
        reserved: int,
        version: int,
        damaged: int = 0,
        quality_control: int = 0,
        safety_stock: int = 0,
        backordered: int = 0,
    ) -> bool:
        """Take the level's figures at `version` unless a version as new is held.

        A level not seen before is added. Returns True when the figures were taken.
        """
        held = self._levels.get(level_id)
        if held is not None and version <= held.version:
            return False
        if held is not None:  # a level keeps its variant and location
            variant_id, location_id = held.variant_id, held.location_id
        self._levels[level_id] = LevelRow(
            level_id,
            variant_id,
            location_id,
            on_hand,
            reserved,
            version,
            damaged,
            quality_control,
            safety_stock,
            backordered,
        )
        if held is not None:
            return True
        ids = self._by_variant.setdefault(variant_id, [])
        ids.append(level_id)
        if len(ids) > 1:
            self._sort(ids)
        return True

    def merge(self, rows: Iterable[LevelRow]) -> int:
        """Apply many levels' figures (a load from `stock_levels`); returns how many taken."""
        taken = 0
        for row in rows:
            if self.apply(
                row.id,
                row.variant_id,
                row.location_id,
                row.on_hand,
                row.reserved,
                row.version,
                row.damaged,
                row.quality_control,
                row.safety_stock,
                row.backordered,
            ):
                taken += 1
        return taken

    def level(self, level_id: int) -> LevelRow | None:
        """One level's figures, or None when the projection does not hold it."""
        return self._levels.get(level_id)

    def levels_of(self, variant_id: int) -> list[LevelRow]:
        """The variant's levels in location order (empty when it holds none)."""
        ids = self._by_variant.get(variant_id)
        if not ids:
            return []
        levels = self._levels
        return [levels[i] for i in ids]

    def reorder(self, order: LocationOrder) -> None:
        """Locations' priorities may have changed: sort every variant's levels by `order`."""
        self._order = order
        for ids in self._by_variant.values():
            if len(ids) > 1:
                self._sort(ids)

    def _sort(self, ids: list[int]) -> None:
        levels, order = self._levels, self._order
        ids.sort(key=lambda i: order(levels[i].location_id))
