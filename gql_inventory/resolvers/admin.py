"""Admin mutations and queries: adjustStock, setStock, moveStockState, transferStock,
refundOrder, cancelOrder, stockMovements.

Their fields declare the `IsAdmin` permission (`schema.query`, `schema.mutation`):
without an admin token, a FORBIDDEN GraphQL error before any of this runs.
"""

from __future__ import annotations

from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.errors import DomainError
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.kit import metrics
from gql_inventory.orders import orders, refunds
from gql_inventory.resolvers.cursors import decode_cursor
from gql_inventory.resolvers.payloads import level_payload, order_payload
from gql_inventory.schema.connections import (
    StockMovementConnection,
    StockMovementEdge,
    forward_page,
)
from gql_inventory.schema.errors import BadRequest
from gql_inventory.schema.inputs import (
    AdjustStockInput,
    CancelOrderInput,
    MoveStockStateInput,
    RefundOrderInput,
    SetStockInput,
    TransferStockInput,
)
from gql_inventory.schema.orders import StockMovementType
from gql_inventory.schema.payloads import (
    AdjustStockPayload,
    CancelOrderPayload,
    RefundOrderPayload,
    TransferStockPayload,
    user_errors,
)
from gql_inventory.stock import adjust, states, transfers
from gql_inventory.stock.adjust import AdjustResult
from gql_inventory.stock.levels import LineRequest
from gql_inventory.stock.movements import movement_by_id, movement_page
from gql_inventory.uow import run_in_transaction

MAX_MOVEMENTS_PAGE = 250


async def _adjust_payload(info: Info[Context, None], result: AdjustResult) -> AdjustStockPayload:
    movement = None
    if result.movement_id is not None:
        async with info.context.engine.connect() as conn:
            entry = await movement_by_id(conn, result.movement_id)
        if entry is not None:
            movement = StockMovementType.build(entry.movement, entry.sku)
    return AdjustStockPayload(
        stock_level=await level_payload(info, result.level_id), movement=movement, user_errors=[]
    )


async def adjust_stock(info: Info[Context, None], input: AdjustStockInput) -> AdjustStockPayload:
    """Add or remove units at a location (admin)."""
    try:
        result = await run_in_transaction(
            info.context.services,
            lambda s: adjust.adjust_stock(
                s,
                sku=input.sku,
                location_id=input.location_id,
                delta=input.delta,
                reason=input.reason,
                note=input.note,
                expected_on_hand=input.expected_on_hand,
                idempotency_key=IdempotencyKey.of(input.idempotency_key, owner=info.context.actor),
                state=input.state,
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return AdjustStockPayload(stock_level=None, movement=None, user_errors=user_errors(error))
    return await _adjust_payload(info, result)


async def set_stock(info: Info[Context, None], input: SetStockInput) -> AdjustStockPayload:
    """Set the on-hand figure of a level (admin; default reason CYCLE_COUNT)."""
    reason = input.reason
    try:
        result = await run_in_transaction(
            info.context.services,
            lambda s: adjust.set_stock(
                s,
                sku=input.sku,
                location_id=input.location_id,
                on_hand=input.on_hand,
                reason=reason or adjust.AdjustmentReason.CYCLE_COUNT,
                expected_on_hand=input.expected_on_hand,
                idempotency_key=IdempotencyKey.of(input.idempotency_key, owner=info.context.actor),
                state=input.state,
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return AdjustStockPayload(stock_level=None, movement=None, user_errors=user_errors(error))
    return await _adjust_payload(info, result)


async def move_stock_state(
    info: Info[Context, None], input: MoveStockStateInput
) -> AdjustStockPayload:
    """Move on-hand units between states at a location (admin; ADR 0017)."""
    try:
        result = await run_in_transaction(
            info.context.services,
            lambda s: states.move_stock_state(
                s,
                sku=input.sku,
                location_id=input.location_id,
                quantity=input.quantity,
                source=input.from_,
                target=input.to,
                reason=input.reason,
                idempotency_key=IdempotencyKey.of(input.idempotency_key, owner=info.context.actor),
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return AdjustStockPayload(stock_level=None, movement=None, user_errors=user_errors(error))
    return await _adjust_payload(info, result)


async def transfer_stock(
    info: Info[Context, None], input: TransferStockInput
) -> TransferStockPayload:
    """Move units between two locations in one transaction (admin)."""
    try:
        result = await run_in_transaction(
            info.context.services,
            lambda s: transfers.transfer_stock(
                s,
                sku=input.sku,
                from_location_id=input.from_location_id,
                to_location_id=input.to_location_id,
                quantity=input.quantity,
                reason=input.reason,
                idempotency_key=IdempotencyKey.of(input.idempotency_key, owner=info.context.actor),
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return TransferStockPayload(
            from_=None, to=None, movements=[], user_errors=user_errors(error)
        )
    movements = []
    async with info.context.engine.connect() as conn:
        for movement_id in result.movement_ids:
            entry = await movement_by_id(conn, movement_id)
            if entry is not None:
                movements.append(StockMovementType.build(entry.movement, entry.sku))
    return TransferStockPayload(
        from_=await level_payload(info, result.from_level_id),
        to=await level_payload(info, result.to_level_id),
        movements=movements,
        user_errors=[],
    )


async def refund_order(info: Info[Context, None], input: RefundOrderInput) -> RefundOrderPayload:
    """Refund lines of a paid order, restocking by default (admin)."""
    services = info.context.services
    try:
        order_id = orders.parse_order_id(input.order_id)
        lines = (
            None
            if input.lines is None
            else [LineRequest(sku=ln.sku, quantity=ln.quantity) for ln in input.lines]
        )
        await run_in_transaction(
            services,
            lambda s: refunds.refund_order(
                s,
                order_id,
                provider=services.payments,
                lines=lines,
                restock=input.restock is not False,
                reason=input.reason,
                idempotency_key=IdempotencyKey.of(input.idempotency_key, owner=info.context.actor),
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return RefundOrderPayload(order=None, user_errors=user_errors(error))
    metrics.ORDERS.labels("refunded").inc()
    return RefundOrderPayload(order=await order_payload(info, order_id), user_errors=[])


async def cancel_order(info: Info[Context, None], input: CancelOrderInput) -> CancelOrderPayload:
    """Cancel an order (admin)."""
    services = info.context.services
    try:
        order_id = orders.parse_order_id(input.order_id)
        await run_in_transaction(
            services,
            lambda s: refunds.cancel_order(
                s, order_id, provider=services.payments, reason=input.reason
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return CancelOrderPayload(order=None, user_errors=user_errors(error))
    metrics.ORDERS.labels("cancelled").inc()
    return CancelOrderPayload(order=await order_payload(info, order_id), user_errors=[])


async def stock_movements(
    info: Info[Context, None],
    sku: str | None = None,
    first: int | None = 50,
    after: str | None = None,
    reference: str | None = None,
) -> StockMovementConnection:
    """The ledger, newest first (admin). `reference` filters, e.g. ``order:<id>``."""
    first = 50 if first is None else first
    if not 0 <= first <= MAX_MOVEMENTS_PAGE:
        raise BadRequest(f"first must be between 0 and {MAX_MOVEMENTS_PAGE}")
    before_id = decode_cursor("movement", after) if after is not None else None
    async with info.context.engine.connect() as conn:
        page = await movement_page(
            conn, first=first, before_id=before_id, sku=sku, reference=reference
        )
    edges, page_info = forward_page(
        page.rows,
        kind="movement",
        key=lambda entry: entry.movement.id,
        node=lambda entry: StockMovementType.build(entry.movement, entry.sku),
        edge=StockMovementEdge,
        has_next_page=page.has_next_page,
        after_given=before_id is not None,
    )
    return StockMovementConnection(edges=edges, page_info=page_info)
