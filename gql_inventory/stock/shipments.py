"""Inbound shipments: create one with its lines, receive all or part of it (RECEIPT
movements referencing ``shipment:<id>``), cancel what is left (docs/stock.md,
"Inbound shipments"). Never commits.

Lock order: the shipment row first (``SELECT ... FOR UPDATE``), then its levels in
ascending id order through `stock.ledger`. Two receipts of one shipment therefore run
one after the other, and the second sees what the first received: no unit is received
twice (the CHECK ``quantity_received <= quantity_expected`` backs it up).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from gql_inventory.domain import idempotency
from gql_inventory.domain.errors import (
    LINES,
    DomainError,
    DomainErrors,
    FieldPath,
    InvalidInput,
    InvalidShipmentState,
    ShipmentNotFound,
    in_input,
    raise_all,
)
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.domain.uow import Happened, UnitOfWork
from gql_inventory.models import (
    InboundShipment,
    InboundShipmentLine,
    InboundShipmentStatus,
    MovementKind,
    WebhookTopic,
)
from gql_inventory.stock.adjust import MAX_ADJUSTMENT, location_for
from gql_inventory.stock.backorders import fill_backorders
from gql_inventory.stock.ledger import apply_movement, ensure_level, lock_level_ids
from gql_inventory.stock.levels import LineRequest, variant_ids_by_sku

#: The most lines one shipment may carry (GraphQL input and CSV file alike).
MAX_SHIPMENT_LINES = 1000
#: Longest `reference` (the supplier's or shop's own number), in characters.
MAX_REFERENCE_LENGTH = 255
#: Statuses in which units are still expected (`incoming`).
OPEN_STATUSES = (InboundShipmentStatus.OPEN, InboundShipmentStatus.PARTIALLY_RECEIVED)

SHIPMENT_ID = in_input("shipment_id")
_CREATE, _RECEIVE = "createInboundShipment", "receiveInboundShipment"


def shipment_reference(shipment_id: uuid.UUID) -> str:
    """Ledger `reference` of a shipment's RECEIPT movements."""
    return f"shipment:{shipment_id}"


def parse_shipment_id(raw: str, *, field: FieldPath = SHIPMENT_ID) -> uuid.UUID:
    """A shipment id as issued (a UUID). Anything else is `ShipmentNotFound`."""
    try:
        return uuid.UUID(str(raw))
    except ValueError as exc:
        raise ShipmentNotFound("no such inbound shipment", field=field) from exc


def _line_errors(lines: Sequence[LineRequest], path: FieldPath = LINES) -> list[DomainError]:
    """Input refusals of shipment lines: none or too many, a blank SKU, a quantity not in
    1..1,000,000, a SKU given twice (one line per SKU)."""
    if not 1 <= len(lines) <= MAX_SHIPMENT_LINES:
        return [InvalidInput(f"give 1 to {MAX_SHIPMENT_LINES} lines", field=path)]
    errors: list[DomainError] = []
    seen: dict[str, int] = {}
    for i, line in enumerate(lines):
        if not line.sku.strip():
            errors.append(InvalidInput("SKU must not be blank", field=path / i / "sku"))
        elif line.sku in seen:
            errors.append(
                InvalidInput(
                    f"SKU {line.sku!r} is already on line {seen[line.sku]}: one line per SKU",
                    field=path / i / "sku",
                )
            )
        seen.setdefault(line.sku, i)
        if not 1 <= line.quantity <= MAX_ADJUSTMENT:
            errors.append(
                InvalidInput(
                    f"quantity must be between 1 and {MAX_ADJUSTMENT}",
                    field=path / i / "quantity",
                )
            )
    return errors


async def check_shipment_lines(session: AsyncSession, lines: Sequence[LineRequest]) -> list[int]:
    """The variant id of each line, in line order. Raises every refusal at once (as
    `DomainErrors` when several): `InvalidInput` (see `_line_errors`), `UnknownSku`; field
    paths ``("lines", i, ...)``."""
    errors = _line_errors(lines)
    if len(errors) == 1 and errors[0].field == LINES:
        raise errors[0]
    positions = {ln.sku: i for i, ln in reversed(list(enumerate(lines))) if ln.sku.strip()}
    found: dict[str, int] = {}
    try:
        found = await variant_ids_by_sku(session, list(positions), positions=positions)
    except DomainErrors as unknown:
        errors.extend(unknown.errors)
    except DomainError as unknown:
        errors.append(unknown)
    errors.sort(key=lambda e: e.field.parts if e.field is not None else ())
    raise_all(errors)
    return [found[line.sku] for line in lines]


async def create_shipment(
    uow: UnitOfWork,
    *,
    location_id: str | None,
    lines: Sequence[LineRequest],
    reference: str | None = None,
    expected_at: datetime | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> uuid.UUID:
    """Create an OPEN inbound shipment to a location (None: the default one) expecting
    `lines` (units of each SKU, one line per SKU); its units count as `incoming` until
    received or cancelled. Returns its id. Writes no stock movement.

    Raises `InvalidInput` (1 to 1,000 lines, quantity 1..1,000,000, a SKU twice, a blank
    SKU, a reference over 255 characters), `UnknownSku`, `UnknownLocation`,
    `IdempotencyConflict`, every line's refusal at once. The same key replays the first
    result.
    """
    session = uow.session
    if reference is not None and len(reference) > MAX_REFERENCE_LENGTH:
        raise InvalidInput(
            f"reference is longer than {MAX_REFERENCE_LENGTH} characters",
            field=in_input("reference"),
        )
    if idempotency_key is not None:
        replay = await idempotency.claim(
            session,
            scope=_CREATE,
            key=idempotency_key,
            payload=[location_id, reference, expected_at, [(ln.sku, ln.quantity) for ln in lines]],
        )
        if replay is not None:
            return uuid.UUID(replay["shipment_id"])
    variant_ids = await check_shipment_lines(session, lines)
    location, _ = await location_for(session, location_id)
    shipment_id = uuid.uuid4()
    await session.execute(
        insert(InboundShipment).values(
            id=shipment_id,
            reference=reference,
            location_id=location,
            expected_at=expected_at,
            actor=uow.actor,
        )
    )
    await session.execute(
        insert(InboundShipmentLine),
        [
            {
                "shipment_id": shipment_id,
                "variant_id": variant_id,
                "position": i,
                "quantity_expected": line.quantity,
            }
            for i, (line, variant_id) in enumerate(zip(lines, variant_ids, strict=True))
        ],
    )
    if idempotency_key is not None:
        await idempotency.record(
            session, scope=_CREATE, key=idempotency_key, result={"shipment_id": str(shipment_id)}
        )
    return shipment_id


_LOCK_SHIPMENT = text("SELECT status, location_id FROM inbound_shipments WHERE id = :id FOR UPDATE")
_OPEN_LINES = text(
    """
    SELECT l.id, l.variant_id, v.sku, l.quantity_expected - l.quantity_received AS remaining
      FROM inbound_shipment_lines l JOIN variants v ON v.id = l.variant_id
     WHERE l.shipment_id = :id
     ORDER BY l.position
    """
)


async def _lock_shipment(
    session: AsyncSession, shipment_id: uuid.UUID, action: str
) -> tuple[int, list[Any]]:
    """Lock an open shipment's row (until the transaction ends); ``(location_id, lines)``.
    Raises `ShipmentNotFound`, `InvalidShipmentState` (RECEIVED or CANCELLED)."""
    row = (await session.execute(_LOCK_SHIPMENT, {"id": shipment_id})).first()
    if row is None:
        raise ShipmentNotFound("no such inbound shipment", field=SHIPMENT_ID)
    if row.status not in OPEN_STATUSES:
        raise InvalidShipmentState(row.status, action, field=SHIPMENT_ID)
    lines = list((await session.execute(_OPEN_LINES, {"id": shipment_id})).all())
    return int(row.location_id), lines


def _receipt(lines: Sequence[Any], wanted: Sequence[LineRequest] | None) -> dict[int, int]:
    """``{shipment line id: units to receive}``: everything still expected (`wanted`
    None), or `wanted`, each SKU on the shipment and within what it still expects.
    Raises every refusal at once (`InvalidInput`, field paths ``("lines", i, ...)``)."""
    if wanted is None:
        return {int(ln.id): int(ln.remaining) for ln in lines if ln.remaining > 0}
    errors = _line_errors(wanted)
    by_sku = {ln.sku: ln for ln in lines}
    plan: dict[int, int] = {}
    for i, request in enumerate(wanted):
        line = by_sku.get(request.sku)
        if line is None:
            if request.sku.strip():
                errors.append(
                    InvalidInput(
                        f"SKU {request.sku!r} is not on this shipment", field=LINES / i / "sku"
                    )
                )
        elif request.quantity > line.remaining:
            errors.append(
                InvalidInput(
                    f"only {line.remaining} of {request.sku!r} still expected, "
                    f"{request.quantity} received",
                    field=LINES / i / "quantity",
                )
            )
        elif request.quantity > 0:
            plan[int(line.id)] = plan.get(int(line.id), 0) + request.quantity
    errors.sort(key=lambda e: e.field.parts if e.field is not None else ())
    raise_all(errors)
    return plan


_RECEIVE_LINE = text(
    "UPDATE inbound_shipment_lines SET quantity_received = quantity_received + :units"
    " WHERE id = :id"
)
_STATUS_AFTER = text(
    f"""
    UPDATE inbound_shipments
       SET status = CASE WHEN (SELECT bool_and(quantity_received = quantity_expected)
                                 FROM inbound_shipment_lines WHERE shipment_id = :id)
                         THEN '{InboundShipmentStatus.RECEIVED.value}'
                         ELSE '{InboundShipmentStatus.PARTIALLY_RECEIVED.value}' END,
           updated_at = now()
     WHERE id = :id
    """
)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one receipt wrote: the shipment, the levels it received into (ascending id)
    and its RECEIPT movements' ids (one per level)."""

    shipment_id: uuid.UUID
    level_ids: list[int]
    movement_ids: list[int]


async def receive_shipment(
    uow: UnitOfWork,
    *,
    shipment_id: uuid.UUID,
    lines: Sequence[LineRequest] | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> Receipt:
    """Receive units of an OPEN or PARTIALLY_RECEIVED shipment at its location: `lines`
    (units per SKU, each at most what its line still expects) or, None, everything
    still expected. One RECEIPT movement per level (on hand +units, reference
    ``shipment:<id>``, levels created at 0 when missing), the lines' `quantity_received`
    raised, the status PARTIALLY_RECEIVED, or RECEIVED once every line is in; an
    INBOUND_SHIPMENT_RECEIVED outbox event (not on a replay).

    Locks the shipment row, then the levels in ascending id order. Raises
    `ShipmentNotFound`, `InvalidShipmentState` (RECEIVED or CANCELLED), `InvalidInput`
    (a SKU not on the shipment, more than still expected, quantity not in 1..1,000,000,
    a SKU twice; every line's refusal at once), `IdempotencyConflict`. The same key
    replays the first result without receiving again.
    """
    session = uow.session
    if idempotency_key is not None:
        replay = await idempotency.claim(
            session,
            scope=_RECEIVE,
            key=idempotency_key,
            payload=[
                str(shipment_id),
                None if lines is None else [(ln.sku, ln.quantity) for ln in lines],
            ],
        )
        if replay is not None:
            return Receipt(shipment_id, replay["level_ids"], replay["movement_ids"])
    location_id, open_lines = await _lock_shipment(session, shipment_id, "receive")
    plan = _receipt(open_lines, lines)
    variant_of = {int(ln.id): int(ln.variant_id) for ln in open_lines}
    level_of: dict[int, int] = {}
    for line_id in sorted(plan, key=lambda i: variant_of[i]):
        variant_id = variant_of[line_id]
        level_of[line_id] = await ensure_level(
            session, variant_id=variant_id, location_id=location_id
        )
    await lock_level_ids(session, level_of.values())
    movement_ids: list[int] = []
    for line_id in sorted(plan, key=lambda i: level_of[i]):
        movement = await apply_movement(
            uow,
            level_id=level_of[line_id],
            kind=MovementKind.RECEIPT,
            on_hand_delta=plan[line_id],
            reference=shipment_reference(shipment_id),
        )
        if movement is None:  # pragma: no cover - a receipt always fits the CHECKs
            raise RuntimeError(f"receipt refused on stock level {level_of[line_id]}")
        movement_ids.append(movement.id)
        await session.execute(_RECEIVE_LINE, {"id": line_id, "units": plan[line_id]})
    received_level_ids = sorted(level_of.values())
    await fill_backorders(uow, received_level_ids)  # a receipt fills backorders first (ADR 0018)
    await session.execute(_STATUS_AFTER, {"id": shipment_id})
    uow.happened.append(Happened(WebhookTopic.INBOUND_SHIPMENT_RECEIVED, shipment_id))
    receipt = Receipt(shipment_id, received_level_ids, movement_ids)
    if idempotency_key is not None:
        await idempotency.record(
            session,
            scope=_RECEIVE,
            key=idempotency_key,
            result={"level_ids": receipt.level_ids, "movement_ids": receipt.movement_ids},
        )
    return receipt


async def cancel_shipment(uow: UnitOfWork, *, shipment_id: uuid.UUID) -> uuid.UUID:
    """Cancel an OPEN or PARTIALLY_RECEIVED shipment: what it still expects is no longer
    `incoming`; units already received stay on hand. Returns its id. Raises
    `ShipmentNotFound`, `InvalidShipmentState` (RECEIVED or already CANCELLED)."""
    session = uow.session
    await _lock_shipment(session, shipment_id, "cancel")
    await session.execute(
        update(InboundShipment)
        .where(InboundShipment.id == shipment_id)
        .values(status=InboundShipmentStatus.CANCELLED.value, updated_at=func.now())
    )
    return shipment_id
