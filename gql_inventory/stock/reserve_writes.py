"""The in-memory side of writing new reservations: each locked level's running figures
(`ReserveLocks`, filled by `ledger.lock_for_reserve`) and the rows the accepted
reservations will write (`ReservationWrites`, written by `ledger.write_reservations`).
No SQL here: the statements live in `stock.ledger` (ADR 0013)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gql_inventory.domain.uow import VariantStock
from gql_inventory.stock.levels import LockedLevel

if TYPE_CHECKING:
    from gql_inventory.stock.allocation import Take


@dataclass(slots=True)
class RunningLevel:
    """A level locked for new reservations, with its figures as the reservations planned
    so far leave them (`level`), its next `version`, and what they add (units covered by
    stock to `reserved`, units promised beyond it to `backordered`, ADR 0018)."""

    level: LockedLevel
    version: int
    movements: int = 0
    added: int = 0
    added_backordered: int = 0


@dataclass(frozen=True, slots=True)
class ReserveLocks:
    """What `lock_for_reserve` found: ``{sku: variant_id}`` of the SKUs that exist,
    ``{variant_id: [level_id ...]}`` and each locked level's running figures; `now` is
    the transaction's time (the new rows' ``created_at``); each variant's low-stock
    `thresholds` and each level's `locations` (id, name), for the outbox events."""

    variant_ids: dict[str, int]
    per_variant: dict[int, list[int]]
    levels: dict[int, RunningLevel]
    now: datetime | None
    thresholds: dict[int, int] = field(default_factory=dict)
    locations: dict[int, tuple[int, str]] = field(default_factory=dict)

    def variant_stock(self, variant_ids: Iterable[int]) -> dict[int, VariantStock]:
        """These variants as the reservations planned so far leave them (`VariantStock`:
        available units summed over every level the lock read, all of the variant's)."""
        skus = {vid: sku for sku, vid in self.variant_ids.items()}
        out: dict[int, VariantStock] = {}
        for vid in variant_ids:
            level_ids = self.per_variant.get(vid, [])
            out[vid] = VariantStock(
                sku=skus[vid],
                low_stock_threshold=self.thresholds[vid],
                available=sum(self.levels[i].level.available for i in level_ids),
                locations={i: self.locations[i] for i in level_ids},
            )
        return out

    def current(self, variant_ids: Iterable[int]) -> dict[int, list[LockedLevel]]:
        """The running figures of these variants' levels (`allocation.plan_reservation`'s
        `per_variant`)."""
        return {
            vid: [self.levels[i].level for i in self.per_variant.get(vid, ())]
            for vid in variant_ids
        }


@dataclass
class ReservationWrites:
    """The rows new reservations will write (`write_reservations`), built one accepted
    reservation at a time (`add`) against the running figures of `locks`."""

    locks: ReserveLocks
    reservations: tuple[list[uuid.UUID], list[datetime], list[int], list[str | None]] = field(
        default_factory=lambda: ([], [], [], [])
    )
    rows: tuple[list[Any], ...] = field(default_factory=lambda: tuple([] for _ in range(12)))

    def add(
        self,
        reservation_id: uuid.UUID,
        expires_at: datetime,
        ttl: int,
        idempotency_key: str | None,
        changes: dict[int, Take],
        actor: str,
    ) -> None:
        """Record one accepted reservation (`changes` is ``{level_id: (level, units,
        backordered)}``, `allocation.Take`) and move the running figures on.

        Ledger rows in level-id order (lock order), each with the level's figures after
        this reservation and its next version, exactly as applying the reservations
        one transaction after another would write them; lines in the plan's order.
        """
        line_ord = {level_id: n for n, level_id in enumerate(changes, len(self.rows[0]))}
        ids, expiries, ttls, keys = self.reservations
        ids.append(reservation_id)
        expiries.append(expires_at)
        ttls.append(ttl)
        keys.append(idempotency_key)
        for level_id, (level, units, backordered) in sorted(changes.items()):
            state = self.locks.levels[level_id]
            covered = units - backordered
            state.level = replace(
                state.level,
                reserved=state.level.reserved + covered,
                backordered=state.level.backordered + backordered,
            )
            state.version += 1
            state.movements += 1
            state.added += covered
            state.added_backordered += backordered
            after = state.level
            values = (
                reservation_id,
                level_id,
                level.variant_id,
                level.location_id,
                units,
                backordered,
                after.on_hand,
                after.reserved,
                after.backordered,
                state.version,
                actor,
                line_ord[level_id],
            )
            for column, value in zip(self.rows, values, strict=True):
                column.append(value)
