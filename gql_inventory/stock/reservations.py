"""Reservations (carts): update, release; and the release step shared with expiry. New
reservations are made by `stock.reserve` (`reserve` is re-exported here).

Lock order everywhere in the domain: reservation row, then order row, then
stock levels by ascending id. Every level change goes through `stock.ledger`,
whose guard is the CHECK constraints, so even a bug here cannot oversell.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain.errors import (
    RESERVATION_ID_ARGUMENT,
    DomainError,
    FieldPath,
    InvalidOrderState,
    ReservationNotActive,
    ReservationNotFound,
    argument,
    in_input,
    raise_all,
)
from gql_inventory.domain.uow import Happened, UnitOfWork
from gql_inventory.models import (
    MovementKind,
    Order,
    Reservation,
    ReservationLine,
    ReservationStatus,
    WebhookTopic,
)
from gql_inventory.orders.orders import cancel_pending_order_of
from gql_inventory.stock.allocation import ReservationLimits as ReservationLimits
from gql_inventory.stock.allocation import Take, plan_increase
from gql_inventory.stock.ledger import apply_movement, lock_levels_by_variant
from gql_inventory.stock.levels import (
    LineRequest,
    by_priority,
    merge_lines,
    variant_ids_by_sku,
)
from gql_inventory.stock.locks import ensure_active, lock_reservation
from gql_inventory.stock.reserve import reserve as reserve


def parse_reservation_id(raw: str, *, field: FieldPath = RESERVATION_ID_ARGUMENT) -> uuid.UUID:
    """A reservation id as issued (a UUID). Anything else is `ReservationNotFound`."""
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise ReservationNotFound("no such reservation", field=field) from exc


def reference_of(reservation_id: uuid.UUID) -> str:
    """Ledger `reference` of a reservation's movements."""
    return f"reservation:{reservation_id}"


def _now() -> datetime:
    return datetime.now(UTC)


async def _apply_plan(
    uow: UnitOfWork,
    reservation_id: uuid.UUID,
    changes: dict[int, Take],
    kind: MovementKind,
) -> None:
    """Apply line changes ``{level_id: (level, units, of which backordered)}`` (negative:
    given back) in level-id order: covered units change `reserved`, the rest
    `backordered` (ADR 0018)."""
    for level_id in sorted(changes):
        _, delta, backordered = changes[level_id]
        if delta == 0:
            continue
        movement = await apply_movement(
            uow,
            level_id=level_id,
            kind=kind if delta > 0 else MovementKind.RELEASE,
            reserved_delta=delta - backordered,
            backordered_delta=backordered,
            reference=reference_of(reservation_id),
        )
        if movement is None:  # locked rows cannot change under us: this is a bug
            raise RuntimeError(f"level {level_id} refused a planned change of {delta}")


async def _held_lines(
    session: AsyncSession, reservation_id: uuid.UUID
) -> dict[int, tuple[int, int]]:
    """``{stock_level_id: (quantity, backordered_quantity)}`` held by a reservation."""
    rows = await session.execute(
        select(
            ReservationLine.stock_level_id,
            ReservationLine.quantity,
            ReservationLine.backordered_quantity,
        ).where(ReservationLine.reservation_id == reservation_id)
    )
    return {int(r.stock_level_id): (int(r.quantity), int(r.backordered_quantity)) for r in rows}


async def update_reservation(
    uow: UnitOfWork,
    reservation_id: uuid.UUID,
    lines: Sequence[LineRequest],
    *,
    limits: ReservationLimits,
) -> uuid.UUID:
    """Set absolute quantities per SKU (0 removes the SKU); other SKUs stay as they are.

    Increases reserve more (by location priority), decreases release (lowest
    priority location first). The expiry moves to now + the reservation's TTL.
    All or nothing. Raises `ReservationNotFound`, `ReservationNotActive`,
    `InvalidOrderState` (checked out: its order's lines and amount are frozen),
    `InvalidInput`, `UnknownSku`, `PurchaseLimitExceeded` (an increase past the
    variant's `max_per_order`; a reservation above a limit lowered since keeps its units
    and may decrease), `ShortAcrossLocations` (an `InsufficientStock` whose figures count
    the units the reservation already holds).
    """
    session = uow.session
    wanted = merge_lines(
        lines, max_lines=limits.max_lines, max_quantity=limits.max_quantity, allow_zero=True
    )
    reservation = await lock_reservation(session, reservation_id, field=in_input("reservation_id"))
    assert reservation is not None
    now = _now()
    ensure_active(reservation, now, field=in_input("reservation_id"))
    order_status = (
        await session.execute(select(Order.status).where(Order.reservation_id == reservation_id))
    ).scalar_one_or_none()
    if order_status is not None:  # checked out: the order's lines and amount are frozen
        raise InvalidOrderState(
            order_status.value, "change the reservation of", field=in_input("reservation_id")
        )
    skus = list(wanted)
    variant_ids = await variant_ids_by_sku(session, skus)
    held = await _held_lines(session, reservation_id)
    per_variant = await lock_levels_by_variant(session, variant_ids.values())

    errors: list[DomainError] = []
    changes: dict[int, Take] = {}
    for index, sku in enumerate(skus):
        variant_levels = per_variant[variant_ids[sku]]
        current = sum(held[lv.id][0] for lv in variant_levels if lv.id in held)
        diff = wanted[sku] - current
        if diff > 0:
            plan = plan_increase(sku, variant_levels, diff, index, held=current)
            if isinstance(plan, DomainError):
                errors.append(plan)
                continue
            for part in plan:
                changes[part[0].id] = part
        elif diff < 0:
            to_release = -diff
            for level in reversed(by_priority(lv for lv in variant_levels if lv.id in held)):
                quantity, backordered = held[level.id]
                take = min(quantity, to_release)
                if take:  # promised units go back before covered ones
                    changes[level.id] = (level, -take, -min(backordered, take))
                    to_release -= take
    raise_all(errors)

    await _apply_plan(uow, reservation_id, changes, MovementKind.RESERVATION)
    for level_id, (level, delta, backordered) in changes.items():
        quantity, backordered_before = held.get(level_id, (0, 0))
        new_quantity = quantity + delta
        if level_id not in held:
            await session.execute(
                insert(ReservationLine).values(
                    reservation_id=reservation_id,
                    stock_level_id=level_id,
                    variant_id=level.variant_id,
                    location_id=level.location_id,
                    quantity=new_quantity,
                    backordered_quantity=backordered,
                )
            )
        elif new_quantity == 0:
            await session.execute(
                delete(ReservationLine).where(
                    ReservationLine.reservation_id == reservation_id,
                    ReservationLine.stock_level_id == level_id,
                )
            )
        else:
            await session.execute(
                update(ReservationLine)
                .where(
                    ReservationLine.reservation_id == reservation_id,
                    ReservationLine.stock_level_id == level_id,
                )
                .values(
                    quantity=new_quantity, backordered_quantity=backordered_before + backordered
                )
            )
    await session.execute(
        update(Reservation)
        .where(Reservation.id == reservation_id)
        .values(expires_at=now + timedelta(seconds=reservation.ttl_seconds), updated_at=now)
    )
    return reservation_id


async def end_reservation(
    uow: UnitOfWork,
    reservation: Reservation,
    *,
    status: ReservationStatus,
    kind: MovementKind,
) -> None:
    """Release every unit an ACTIVE, locked reservation holds (covered units leave
    `reserved`, promised ones `backordered`) and give it a final `status`.

    `kind` is RELEASE (buyer, cancel) or EXPIRY (the sweeper). The lines are
    kept as a record; with a non-ACTIVE status they no longer count as reserved. An
    EXPIRED reservation is a RESERVATION_EXPIRED outbox event.
    """
    session = uow.session
    if reservation.status is not ReservationStatus.ACTIVE:
        raise ReservationNotActive(reservation.status.value)
    held = await _held_lines(session, reservation.id)
    for level_id in sorted(held):
        quantity, backordered = held[level_id]
        movement = await apply_movement(
            uow,
            level_id=level_id,
            kind=kind,
            reserved_delta=backordered - quantity,
            backordered_delta=-backordered,
            reference=reference_of(reservation.id),
        )
        if movement is None:  # reserved always covers the lines: invariant 2
            raise RuntimeError(f"level {level_id} holds less than reservation {reservation.id}")
    await session.execute(
        update(Reservation)
        .where(Reservation.id == reservation.id)
        .values(status=status, updated_at=_now())
    )
    reservation.status = status
    if status is ReservationStatus.EXPIRED:
        uow.happened.append(Happened(WebhookTopic.RESERVATION_EXPIRED, reservation.id))


async def release_reservation(uow: UnitOfWork, reservation_id: uuid.UUID) -> uuid.UUID:
    """The buyer gives the stock back (RELEASE). A pending order on it is cancelled
    (its payment too, after the commit).

    Raises `ReservationNotFound`, `ReservationNotActive`.
    """
    session = uow.session
    reservation = await lock_reservation(session, reservation_id)
    assert reservation is not None
    if reservation.status is not ReservationStatus.ACTIVE:
        raise ReservationNotActive(reservation.status.value, field=argument("reservation_id"))
    await end_reservation(
        uow, reservation, status=ReservationStatus.RELEASED, kind=MovementKind.RELEASE
    )
    await cancel_pending_order_of(uow, reservation_id, reason="reservation released")
    return reservation_id


async def extend_for_payment(
    session: AsyncSession, reservation: Reservation, *, hold_seconds: int, not_after: datetime
) -> datetime:
    """Keep a locked ACTIVE reservation's stock while its payment is in progress.

    The expiry moves to now + `hold_seconds`, never past `not_after` (the cap) and
    never earlier than it already is. Returns the expiry. Raises `ReservationNotActive`.
    """
    if reservation.status is not ReservationStatus.ACTIVE:
        raise ReservationNotActive(reservation.status.value)
    now = _now()
    target = min(now + timedelta(seconds=hold_seconds), not_after)
    if target <= reservation.expires_at:
        return reservation.expires_at
    await session.execute(
        update(Reservation)
        .where(Reservation.id == reservation.id)
        .values(expires_at=target, updated_at=now)
    )
    reservation.expires_at = target
    return target
