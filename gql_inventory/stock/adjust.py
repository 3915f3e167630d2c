"""Admin stock changes: adjust by a delta, or set an absolute figure (cycle count)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain import idempotency
from gql_inventory.domain.errors import (
    InvalidInput,
    StockChanged,
    UnknownLocation,
    UnknownSku,
    in_input,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.shortages import (
    OnHandBelowReserved,
    RemovalExceedsAvailable,
    StateShort,
)
from gql_inventory.domain.uow import UnitOfWork
from gql_inventory.models import Location, MovementKind, StockState, Variant
from gql_inventory.stock.backorders import fill_backorders
from gql_inventory.stock.ledger import (
    AppliedMovement,
    apply_movement,
    ensure_level,
    into_state,
    lock_level,
)
from gql_inventory.stock.levels import level_states

MAX_ADJUSTMENT = 1_000_000


async def set_on_hand(
    uow: UnitOfWork,
    *,
    level_id: int,
    on_hand: int,
    kind: MovementKind,
    state: StockState = StockState.AVAILABLE,
    reason: str | None = None,
    reference: str | None = None,
    expected_on_hand: int | None = None,
) -> tuple[AppliedMovement | None, int, int]:
    """Set a level's figure to an absolute `on_hand` (a count): its on hand, or with an
    unavailable `state` that state's units (on hand changes by the same difference).

    Locks the row, then applies the difference through `apply_movement`.
    Returns ``(movement, before, held)``: the figure before, and `held`, what it may not
    go below (on hand: reserved + unavailable units, ADR 0017; a state: 0); movement is
    None when the figure already matches (no change, no ledger row), when
    `expected_on_hand` differs from the figure before (caller reports STOCK_CHANGED), or
    when `on_hand` is below `held` (caller reports INSUFFICIENT_STOCK).
    """
    before, reserved, unavailable = await lock_level(uow.session, level_id)
    held = reserved + unavailable
    if state is not StockState.AVAILABLE:
        before, held = (await level_states(uow.session, level_id))[state], 0
    if expected_on_hand is not None and expected_on_hand != before:
        return None, before, held
    if on_hand == before or on_hand < held:
        return None, before, held
    movement = await apply_movement(
        uow,
        level_id=level_id,
        kind=kind,
        on_hand_delta=on_hand - before,
        **into_state(state, on_hand - before),
        reason=reason,
        reference=reference,
    )
    return movement, before, held


class AdjustmentReason(enum.StrEnum):
    """Why an admin changed stock (contract enum `AdjustmentReason`)."""

    RECEIVED = "RECEIVED"
    CORRECTION = "CORRECTION"
    DAMAGED = "DAMAGED"
    LOST = "LOST"
    FOUND = "FOUND"
    CYCLE_COUNT = "CYCLE_COUNT"


def movement_kind(reason: AdjustmentReason) -> MovementKind:
    """RECEIVED -> RECEIPT, CYCLE_COUNT -> COUNT, every other reason -> ADJUSTMENT."""
    if reason is AdjustmentReason.RECEIVED:
        return MovementKind.RECEIPT
    if reason is AdjustmentReason.CYCLE_COUNT:
        return MovementKind.COUNT
    return MovementKind.ADJUSTMENT


@dataclass(frozen=True, slots=True)
class AdjustResult:
    """The level changed (its id) and the movement written (None when nothing changed)."""

    level_id: int
    movement_id: int | None


def _is_id(raw: str) -> bool:
    """True for a possible row id: ASCII digits within BIGINT (not "²" or 20 digits)."""
    return raw.isascii() and raw.isdigit() and int(raw) < 2**63


@dataclass(frozen=True, slots=True)
class AdminLevel:
    """The stock level an admin change is about, and its location (for messages)."""

    id: int
    location_id: int
    location: str


async def location_for(
    session: AsyncSession, location_id: str | None, *, field: str = "location_id"
) -> tuple[int, str]:
    """``(id, name)`` of a location named by its id as sent (None: the default one).
    Raises `UnknownLocation` (naming the input `field`)."""
    columns = select(Location.id, Location.name)
    if location_id is None:
        loc = (await session.execute(columns.where(Location.is_default.is_(True)))).first()
        if loc is None:
            raise UnknownLocation("no default location", field=in_input(field))
    else:
        loc = (
            (await session.execute(columns.where(Location.id == int(location_id)))).first()
            if _is_id(location_id)
            else None
        )
        if loc is None:
            raise UnknownLocation(f"unknown location {location_id!r}", field=in_input(field))
    return int(loc.id), str(loc.name)


async def level_for(
    session: AsyncSession, sku: str, location_id: str | None, *, field: str = "location_id"
) -> AdminLevel:
    """The level of `sku` at a location (None: the default one), created at zero if missing.
    Raises `UnknownSku`, `UnknownLocation` (naming the input `field`)."""
    variant_id = (await session.execute(select(Variant.id).where(Variant.sku == sku))).scalar()
    if variant_id is None:
        raise UnknownSku(sku, field=in_input("sku"))
    loc_id, loc_name = await location_for(session, location_id, field=field)
    level_id = await ensure_level(session, variant_id=int(variant_id), location_id=loc_id)
    return AdminLevel(id=level_id, location_id=loc_id, location=loc_name)


async def level_id_for(session: AsyncSession, sku: str, location_id: str | None) -> int:
    """The id of `sku`'s level at a location (None: the default one), created at zero if
    missing. Raises `UnknownSku`, `UnknownLocation`."""
    return (await level_for(session, sku, location_id)).id


def _reason_text(reason: AdjustmentReason, note: str | None) -> str:
    return f"{reason.value}: {note}" if note else reason.value


async def adjust_stock(
    uow: UnitOfWork,
    *,
    sku: str,
    location_id: str | None,
    delta: int,
    reason: AdjustmentReason,
    note: str | None = None,
    expected_on_hand: int | None = None,
    idempotency_key: IdempotencyKey | None = None,
    state: StockState = StockState.AVAILABLE,
) -> AdjustResult:
    """Add `delta` units (negative removes) to on hand at a location (default: the default one).

    The units are in `state`: +3 DAMAGED are 3 units arriving damaged (on hand and damaged
    +3), -3 DAMAGED writes 3 damaged units off (ADR 0017). With `expected_on_hand`, refuses
    with `StockChanged` unless on hand is exactly that (compare-and-set). Removing more
    than is available (on hand minus reserved minus unavailable) is
    `RemovalExceedsAvailable`, more than an unavailable `state` holds `StateShort` (both
    `InsufficientStock`): reserved units are promised, unavailable ones held back.
    Per-level refusals name the location.
    Raises `InvalidInput` (delta 0 or beyond 1,000,000), `UnknownSku`,
    `UnknownLocation`, `IdempotencyConflict`.
    """
    session = uow.session
    if delta == 0 or abs(delta) > MAX_ADJUSTMENT:
        raise InvalidInput(
            f"delta must be non-zero and within ±{MAX_ADJUSTMENT}", field=in_input("delta")
        )
    if idempotency_key is not None:
        replay = await idempotency.claim(
            session,
            scope="adjustStock",
            key=idempotency_key,
            payload=[sku, location_id, delta, reason.value, note, expected_on_hand]
            + ([] if state is StockState.AVAILABLE else [state.value]),
        )
        if replay is not None:
            return AdjustResult(level_id=replay["level_id"], movement_id=replay["movement_id"])
    level = await level_for(session, sku, location_id)
    level_id = level.id
    on_hand, reserved, unavailable = await lock_level(session, level_id)
    if expected_on_hand is not None and expected_on_hand != on_hand:
        raise StockChanged(
            sku=sku,
            location_id=level.location_id,
            location=level.location,
            expected=expected_on_hand,
            actual=on_hand,
            field=in_input("expected_on_hand"),
        )
    movement = await apply_movement(
        uow,
        level_id=level_id,
        kind=movement_kind(reason),
        on_hand_delta=delta,
        **into_state(state, delta),
        reason=_reason_text(reason, note),
    )
    if movement is None and state is not StockState.AVAILABLE:
        raise StateShort(
            sku=sku,
            location=level.location,
            state=state.value,
            requested=-delta,
            available=(await level_states(session, level_id))[state],
            field=in_input("delta"),
        )
    if movement is None:
        raise RemovalExceedsAvailable(
            sku=sku,
            location_id=level.location_id,
            location=level.location,
            remove=-delta,
            on_hand=on_hand,
            reserved=reserved,
            unavailable=unavailable,
            field=in_input("delta"),
        )
    if delta > 0:
        await fill_backorders(uow, [level_id])  # a receipt fills backorders first (ADR 0018)
    result = AdjustResult(level_id=level_id, movement_id=movement.id)
    if idempotency_key is not None:
        await idempotency.record(
            session,
            scope="adjustStock",
            key=idempotency_key,
            result={"level_id": level_id, "movement_id": movement.id},
        )
    return result


async def set_stock(
    uow: UnitOfWork,
    *,
    sku: str,
    location_id: str | None,
    on_hand: int,
    reason: AdjustmentReason = AdjustmentReason.CYCLE_COUNT,
    expected_on_hand: int | None = None,
    idempotency_key: IdempotencyKey | None = None,
    state: StockState = StockState.AVAILABLE,
) -> AdjustResult:
    """Set on hand to an absolute figure (a count). No change writes no movement.

    With an unavailable `state`, `on_hand` and `expected_on_hand` are that state's units:
    the count sets them and on hand moves by the same difference (ADR 0017).

    Raises `InvalidInput` (negative or huge figure), `UnknownSku`,
    `UnknownLocation`, `StockChanged` (compare-and-set), `OnHandBelowReserved`
    (an `InsufficientStock`: below what is reserved plus unavailable, ADR 0017),
    `IdempotencyConflict`.
    """
    session = uow.session
    if not 0 <= on_hand <= MAX_ADJUSTMENT:
        raise InvalidInput(
            f"onHand must be between 0 and {MAX_ADJUSTMENT}", field=in_input("on_hand")
        )
    if idempotency_key is not None:
        replay = await idempotency.claim(
            session,
            scope="setStock",
            key=idempotency_key,
            payload=[sku, location_id, on_hand, reason.value, expected_on_hand]
            + ([] if state is StockState.AVAILABLE else [state.value]),
        )
        if replay is not None:
            return AdjustResult(level_id=replay["level_id"], movement_id=replay["movement_id"])
    level = await level_for(session, sku, location_id)
    level_id = level.id
    movement: AppliedMovement | None
    movement, before, reserved = await set_on_hand(
        uow,
        level_id=level_id,
        on_hand=on_hand,
        kind=movement_kind(reason),
        state=state,
        reason=reason.value,
        expected_on_hand=expected_on_hand,
    )
    if expected_on_hand is not None and expected_on_hand != before:
        raise StockChanged(
            sku=sku,
            location_id=level.location_id,
            location=level.location,
            expected=expected_on_hand,
            actual=before,
            field=in_input("expected_on_hand"),
        )
    if on_hand < reserved:
        raise OnHandBelowReserved(
            sku=sku,
            location_id=level.location_id,
            location=level.location,
            on_hand=on_hand,
            on_hand_before=before,
            reserved=reserved,
            field=in_input("on_hand"),
        )
    if movement is not None and movement.on_hand_delta > 0:
        await fill_backorders(uow, [level_id])  # a receipt fills backorders first (ADR 0018)
    result = AdjustResult(level_id=level_id, movement_id=movement.id if movement else None)
    if idempotency_key is not None:
        await idempotency.record(
            session,
            scope="setStock",
            key=idempotency_key,
            result={"level_id": level_id, "movement_id": result.movement_id},
        )
    return result
