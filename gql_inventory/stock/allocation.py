"""Planning a new reservation in memory: input checks, purchase limits and allocation,
no SQL.

Shared by new reservations (`stock.reserve`) and `reservations.update_reservation`, so
both refuse the same input with the same errors, field paths and figures, and take units
from the same levels. The figures and limits come from the levels as locked
(`stock.ledger`), so a check holds until the transaction ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gql_inventory.domain.errors import (
    DomainError,
    InvalidInput,
    in_input,
    raise_all,
)
from gql_inventory.domain.shortages import (
    PurchaseLimitExceeded,
    ShortAcrossLocations,
)
from gql_inventory.stock.levels import (
    LineRequest,
    LockedLevel,
    by_priority,
    merge_lines,
    take_available,
)


@dataclass(frozen=True, slots=True)
class ReservationLimits:
    """Server limits on reservations (from settings). TTLs in seconds."""

    default_ttl_seconds: int = 900
    max_ttl_seconds: int = 7200
    max_lines: int = 100
    max_quantity: int = 10_000


def reservation_ttl(ttl_seconds: int | None, limits: ReservationLimits) -> int:
    """The TTL (seconds) a reservation gets: `ttl_seconds`, or the default.

    Raises `InvalidInput` outside ``1..limits.max_ttl_seconds``.
    """
    ttl = limits.default_ttl_seconds if ttl_seconds is None else ttl_seconds
    if not 1 <= ttl <= limits.max_ttl_seconds:
        raise InvalidInput(
            f"ttlSeconds must be between 1 and {limits.max_ttl_seconds}",
            field=in_input("ttl_seconds"),
        )
    return ttl


def checked_request(
    lines: Sequence[LineRequest], ttl_seconds: int | None, limits: ReservationLimits
) -> tuple[int, dict[str, int]]:
    """``(ttl seconds, {sku: merged quantity})`` of a reserveStock input, checked in the
    order the single path checks (TTL, then lines). Raises `InvalidInput`."""
    ttl = reservation_ttl(ttl_seconds, limits)
    return ttl, merge_lines(lines, max_lines=limits.max_lines, max_quantity=limits.max_quantity)


def check_purchase_limit(
    sku: str, levels: list[LockedLevel], quantity: int, index: int, *, held: int = 0
) -> PurchaseLimitExceeded | None:
    """The refusal for line `index` when a reservation would hold `quantity` units of
    `sku` in all (`held` now) past the variant's `max_per_order`, else None.

    The limit is the one its locked `levels` carry (a variant without any level has none
    to give and no unit to reserve). Only an increase can be refused: a reservation that
    holds more than a limit lowered since keeps them (`quantity <= held` passes).
    """
    limit = levels[0].max_per_order if levels else None
    if limit is None or quantity <= max(limit, held):
        return None
    return PurchaseLimitExceeded(
        sku=sku,
        requested=quantity,
        limit=limit,
        held=held,
        field=in_input("lines", index, "quantity"),
    )


#: One level's part of a reservation line: ``(level, units, of which backordered)``; the
#: units not backordered are covered by stock on hand (ADR 0018).
Take = tuple[LockedLevel, int, int]


def plan_increase(
    sku: str,
    levels: list[LockedLevel],
    quantity: int,
    index: int,
    *,
    held: int = 0,
    enforce_limit: bool = True,
) -> list[Take] | ShortAcrossLocations | PurchaseLimitExceeded:
    """Allocate `quantity` more units of `sku`, or the refusal for line `index`: past
    the variant's purchase limit (`check_purchase_limit`, checked first unless
    `enforce_limit` is False: a paid order re-reserving is not a new purchase), or short.

    Units are covered from available stock in location order. A variant selling past zero
    (`continue_selling`) backorders the rest at its first level in that order, unless its
    levels' backordered units plus the rest would exceed `backorder_limit` (None: no
    limit); the refusal's `available` then counts what the limit still allows. A variant
    without levels is refused. `held` is what the reservation already holds of `sku`
    (updateReservation): the refusal then counts it in both the requested and the
    available units.
    """
    over = check_purchase_limit(sku, levels, held + quantity, index, held=held)
    if over is not None and enforce_limit:
        return over
    plan, rest = take_available(levels, quantity)
    room = sum(max(lv.available, 0) for lv in levels)
    if rest and levels and levels[0].continue_selling:
        limit = levels[0].backorder_limit
        promised = sum(lv.backordered for lv in levels)
        if limit is None or promised + rest <= limit:
            first = by_priority(levels)[0]
            covered = {lv.id: units for lv, units in plan}
            takes = [(lv, units, 0) for lv, units in plan if lv.id != first.id]
            return [(first, covered.get(first.id, 0) + rest, rest), *takes]
        room += max(limit - promised, 0)
    if rest:
        return ShortAcrossLocations(
            sku=sku,
            requested=held + quantity,
            available=held + room,
            held=held,
            field=in_input("lines", index, "quantity"),
        )
    return [(lv, units, 0) for lv, units in plan]


def plan_reservation(
    wanted: Mapping[str, int],
    positions: Mapping[str, int],
    variant_ids: Mapping[str, int],
    per_variant: Mapping[int, list[LockedLevel]],
) -> dict[int, Take]:
    """Where a new reservation's units come from: ``{level_id: (level, units,
    backordered)}``, in SKU order then allocation order.

    `wanted` is ``{sku: quantity}`` (`merge_lines`), `positions` each SKU's first input
    line (`line_positions`), `variant_ids` ``{sku: variant_id}`` of every SKU and
    `per_variant` the current figures of each variant's levels (missing: no levels).
    Raises `PurchaseLimitExceeded` for each SKU past its variant's `max_per_order` and
    `ShortAcrossLocations` for each other SKU that does not fit (all of them together,
    through `raise_all`).
    """
    errors: list[DomainError] = []
    changes: dict[int, Take] = {}
    for sku, quantity in wanted.items():
        levels = per_variant.get(variant_ids[sku], [])
        plan = plan_increase(sku, levels, quantity, positions[sku])
        if isinstance(plan, DomainError):
            errors.append(plan)
            continue
        for take in plan:
            changes[take[0].id] = take
    raise_all(errors)
    return changes
