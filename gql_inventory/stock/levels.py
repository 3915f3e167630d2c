"""Shared steps of the stock use cases: input checks, SKU lookup, allocation (levels are
locked by `stock.ledger`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, text
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.errors import (
    LINES,
    DomainError,
    FieldPath,
    InvalidInput,
    UnknownSku,
    raise_all,
)
from gql_inventory.domain.figures import available_of
from gql_inventory.models import STATE_COLUMNS, StockLevel, StockState


def available_units() -> ColumnElement[int]:
    """SQL for a level's available units: ``on_hand - reserved - damaged - quality_control
    - safety_stock - backordered`` (ADR 0017, ADR 0018)."""
    return (
        StockLevel.on_hand
        - StockLevel.reserved
        - StockLevel.damaged
        - StockLevel.quality_control
        - StockLevel.safety_stock
        - StockLevel.backordered
    )


@dataclass(frozen=True, slots=True)
class LineRequest:
    """A requested line: `quantity` units of `sku`."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class LockedLevel:
    """A stock level locked FOR UPDATE by this transaction (`stock.ledger`); figures in units.

    `continue_selling` and `backorder_limit` are its variant's inventory policy (CONTINUE)
    and limit (None: no limit), read under the same lock (ADR 0018).
    """

    id: int
    variant_id: int
    location_id: int
    priority: int
    on_hand: int
    reserved: int
    #: damaged + quality_control + safety_stock: on hand, never reserved (ADR 0017).
    unavailable: int = 0
    #: The variant's `max_per_order` (units in one reservation; None: no limit), read by
    #: the statement that locked the level.
    max_per_order: int | None = None
    #: Units promised beyond stock at this level (ADR 0018).
    backordered: int = 0
    continue_selling: bool = False
    backorder_limit: int | None = None

    @property
    def available(self) -> int:
        """`on_hand - reserved - unavailable - backordered` (`domain.figures`)."""
        return available_of(self.on_hand, self.reserved, self.unavailable, self.backordered)


def merge_lines(
    lines: Sequence[LineRequest],
    *,
    max_lines: int,
    max_quantity: int,
    allow_zero: bool = False,
    path: FieldPath = LINES,
) -> dict[str, int]:
    """Validate lines and merge repeated SKUs, keeping first-seen order: ``{sku: quantity}``.

    Raises `InvalidInput` (with every bad line's field path) for no lines, too
    many lines, a blank SKU, or a quantity below 1 (0 allowed with `allow_zero`)
    or above `max_quantity` (per line and once merged).
    """
    errors: list[DomainError] = []
    if not lines:
        raise InvalidInput("at least one line is required", field=path)
    if len(lines) > max_lines:
        raise InvalidInput(f"at most {max_lines} lines", field=path)
    merged: dict[str, int] = {}
    lowest = 0 if allow_zero else 1
    for i, line in enumerate(lines):
        sku = line.sku.strip()
        if not sku:
            errors.append(InvalidInput("SKU must not be blank", field=path / i / "sku"))
            continue
        if not lowest <= line.quantity <= max_quantity:
            errors.append(
                InvalidInput(
                    f"quantity must be between {lowest} and {max_quantity}",
                    field=path / i / "quantity",
                )
            )
            continue
        if allow_zero and sku in merged:
            errors.append(
                InvalidInput("SKU given twice; quantities are absolute", field=path / i / "sku")
            )
            continue
        merged[sku] = merged.get(sku, 0) + line.quantity
        if merged[sku] > max_quantity:
            errors.append(
                InvalidInput(
                    f"quantity of {sku!r} over all its lines exceeds {max_quantity}",
                    field=path / i / "quantity",
                )
            )
    raise_all(errors)
    return merged


def line_positions(lines: Sequence[LineRequest]) -> dict[str, int]:
    """``{sku: index of its first input line}`` (SKUs stripped as `merge_lines` does).

    After merging, a SKU's position among the merged SKUs is not its input line's
    index; field paths use this instead.
    """
    positions: dict[str, int] = {}
    for i, line in enumerate(lines):
        positions.setdefault(line.sku.strip(), i)
    return positions


_VARIANTS_BY_SKU = text("SELECT sku, id FROM variants WHERE sku = ANY(:skus)")


async def variant_ids_by_sku(
    session: AsyncSession,
    skus: Sequence[str],
    *,
    path: FieldPath = LINES,
    positions: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """``{sku: variant_id}`` for every SKU; raises `UnknownSku` for each unknown one.

    The field path names line `positions[sku]` (see `line_positions`), or the
    SKU's index in `skus` when no positions are given.
    """
    rows = await session.execute(_VARIANTS_BY_SKU, {"skus": list(skus)})
    found = {r.sku: int(r.id) for r in rows}
    check_known(skus, found, path=path, positions=positions)
    return found


def check_known(
    skus: Sequence[str],
    found: Mapping[str, object],
    *,
    path: FieldPath = LINES,
    positions: Mapping[str, int] | None = None,
) -> None:
    """Raise `UnknownSku` for each of `skus` missing from `found` (all at once, through
    `raise_all`), naming line `positions[sku]`, or the SKU's index in `skus`."""
    raise_all(
        [
            UnknownSku(sku, field=path / (positions[sku] if positions else i) / "sku")
            for i, sku in enumerate(skus)
            if sku not in found
        ]
    )


def by_priority(levels: Iterable[LockedLevel]) -> list[LockedLevel]:
    """Levels in allocation order: location priority, then location id."""
    return sorted(levels, key=lambda lv: (lv.priority, lv.location_id))


def take_available(
    levels: Iterable[LockedLevel], quantity: int
) -> tuple[list[tuple[LockedLevel, int]], int]:
    """Take up to `quantity` available units from levels in priority order:
    ``([(level, units), ...], units left untaken)``. Documented order: the location with
    the lowest `priority` first (ties: lowest location id), each level drained before the
    next."""
    plan: list[tuple[LockedLevel, int]] = []
    remaining = quantity
    for level in by_priority(levels):
        if remaining == 0:
            break
        take = min(level.available, remaining)
        if take > 0:
            plan.append((level, take))
            remaining -= take
    return plan, remaining


def allocate(levels: Iterable[LockedLevel], quantity: int) -> list[tuple[LockedLevel, int]] | None:
    """Take `quantity` units from levels in priority order, splitting across locations
    (`take_available`). Returns ``[(level, units), ...]`` or None when the levels hold
    fewer available units in total."""
    plan, remaining = take_available(levels, quantity)
    return plan if remaining == 0 else None


_ENSURE_LEVEL = text(
    """
    WITH ins AS (
        INSERT INTO stock_levels (variant_id, location_id)
        VALUES (:variant_id, :location_id)
        ON CONFLICT (variant_id, location_id) DO NOTHING
        RETURNING id
    )
    SELECT id FROM ins
    UNION ALL
    SELECT id FROM stock_levels WHERE variant_id = :variant_id AND location_id = :location_id
    LIMIT 1
    """
)


async def ensure_level(session: AsyncSession, *, variant_id: int, location_id: int) -> int:
    """The id of the (variant, location) stock level, created at zero if missing."""
    result = await session.execute(
        _ENSURE_LEVEL, {"variant_id": variant_id, "location_id": location_id}
    )
    level_id = result.scalar_one_or_none()
    if level_id is None:  # a concurrent insert not yet visible to our snapshot
        result = await session.execute(
            _ENSURE_LEVEL, {"variant_id": variant_id, "location_id": location_id}
        )
        level_id = result.scalar_one()
    return int(level_id)


_LEVEL_STATES = text(
    "SELECT on_hand, reserved, damaged, quality_control, safety_stock, backordered"
    " FROM stock_levels WHERE id = :level_id"
)


async def level_states(session: AsyncSession, level_id: int) -> dict[StockState, int]:
    """Units of one level in each state (AVAILABLE: ``on_hand - reserved - unavailable -
    backordered``)."""
    r = (await session.execute(_LEVEL_STATES, {"level_id": level_id})).one()
    states = {state: int(getattr(r, column)) for state, column in STATE_COLUMNS.items()}
    states[StockState.AVAILABLE] = available_of(
        int(r.on_hand), int(r.reserved), sum(states.values()), int(r.backordered)
    )
    return states
