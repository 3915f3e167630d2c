"""Admin: lowStockVariants, setLowStockThreshold, updateVariantInventory and bulkAdjustStock
(thin: the logic is in `stock.low_stock`, `stock.variant_settings` and `stock.bulk_adjust`).

Their fields declare the `IsAdmin` permission (`schema.query`, `schema.mutation`).
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from gql_inventory.context import Context
from gql_inventory.domain.errors import DomainError
from gql_inventory.domain.idempotency import IdempotencyKey
from gql_inventory.kit.logs import get_logger
from gql_inventory.resolvers.cursors import decode_cursor
from gql_inventory.schema.catalog import VariantType
from gql_inventory.schema.connections import forward_page
from gql_inventory.schema.errors import BadRequest
from gql_inventory.schema.low_stock import (
    BulkAdjustStockInput,
    BulkAdjustStockPayload,
    SetLowStockThresholdInput,
    SetLowStockThresholdPayload,
    VariantConnection,
    VariantEdge,
)
from gql_inventory.schema.orders import StockMovementType
from gql_inventory.schema.payloads import UserError, user_errors
from gql_inventory.schema.variant_inventory import (
    UpdateVariantInventoryInput,
    UpdateVariantInventoryPayload,
)
from gql_inventory.stock import bulk_adjust, low_stock, variant_settings
from gql_inventory.stock.adjust import AdjustResult
from gql_inventory.stock.bulk_adjust import BulkLine
from gql_inventory.stock.movements import movements_by_ids
from gql_inventory.stock.variant_settings import KEEP, InventorySettings
from gql_inventory.uow import run_in_transaction

log = get_logger(__name__)

MAX_LOW_STOCK_PAGE = 250
CURSOR_KIND = "lowstock"


def _location(location_id: strawberry.ID | None) -> int | None:
    if location_id is None:
        return None
    raw = str(location_id)
    if not (raw.isascii() and raw.isdigit() and int(raw) < 2**63):
        raise BadRequest(f"unknown location {raw!r}")
    return int(raw)


async def low_stock_variants(
    info: Info[Context, None],
    location_id: strawberry.ID | None = None,
    first: int | None = 50,
    after: str | None = None,
) -> VariantConnection:
    """Low variants, fewest available first (admin)."""
    first = 50 if first is None else first
    if not 0 <= first <= MAX_LOW_STOCK_PAGE:
        raise BadRequest(f"first must be between 0 and {MAX_LOW_STOCK_PAGE}")
    location = _location(location_id)
    after_key = decode_cursor(CURSOR_KIND, after) if after is not None else None
    async with info.context.engine.connect() as conn:
        page = await low_stock.low_stock_page(
            conn, location_id=location, first=first, after=after_key
        )
    edges, page_info = forward_page(
        page.rows,
        kind=CURSOR_KIND,
        key=lambda row: row.key,
        node=lambda row: VariantType.from_row(row.variant),
        edge=VariantEdge,
        has_next_page=page.has_next_page,
        after_given=after_key is not None,
    )
    return VariantConnection(edges=edges, page_info=page_info, total_count=page.total_count)


async def set_low_stock_threshold(
    info: Info[Context, None], input: SetLowStockThresholdInput
) -> SetLowStockThresholdPayload:
    """Set a variant's low-stock threshold (admin)."""
    try:
        variant_id = await run_in_transaction(
            info.context.services,
            lambda uow: low_stock.set_low_stock_threshold(
                uow, sku=input.sku, threshold=input.threshold
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return SetLowStockThresholdPayload(variant=None, user_errors=user_errors(error))
    log.info("variant.threshold_set", sku=input.sku, threshold=input.threshold)
    row = await info.context.loaders.variant_by_id.load(variant_id)
    variant = VariantType.from_row(row) if row is not None else None
    return SetLowStockThresholdPayload(variant=variant, user_errors=[])


def _setting(value: Any) -> Any:
    """A GraphQL input field as the domain takes it: left out (UNSET) is `KEEP`."""
    return KEEP if value is strawberry.UNSET else value


async def update_variant_inventory(
    info: Info[Context, None], input: UpdateVariantInventoryInput
) -> UpdateVariantInventoryPayload:
    """Set a variant's inventory policy, backorder limit, per-order limit and low-stock
    threshold in one call (admin)."""
    settings = InventorySettings(
        inventory_policy=_setting(input.inventory_policy),
        backorder_limit=_setting(input.backorder_limit),
        max_per_order=_setting(input.max_per_order),
        low_stock_threshold=_setting(input.low_stock_threshold),
    )
    try:
        variant_id = await run_in_transaction(
            info.context.services,
            lambda uow: variant_settings.update_variant_inventory(
                uow,
                sku=input.sku,
                settings=settings,
                idempotency_key=IdempotencyKey.of(input.idempotency_key, owner=info.context.actor),
            ),
            actor=info.context.actor,
        )
    except DomainError as error:
        return UpdateVariantInventoryPayload(variant=None, user_errors=user_errors(error))
    log.info("variant.inventory_updated", sku=input.sku, **settings.given())
    row = await info.context.loaders.variant_by_id.load(variant_id)
    variant = VariantType.from_row(row) if row is not None else None
    return UpdateVariantInventoryPayload(variant=variant, user_errors=[])


async def _movements(
    info: Info[Context, None], results: list[AdjustResult]
) -> list[StockMovementType]:
    ids = [r.movement_id for r in results if r.movement_id is not None]
    async with info.context.engine.connect() as conn:
        entries = await movements_by_ids(conn, ids)
    return [StockMovementType.build(e.movement, e.sku) for e in entries]


async def bulk_adjust_stock(
    info: Info[Context, None], input: BulkAdjustStockInput
) -> BulkAdjustStockPayload:
    """Many adjustments: all or none (atomic, the default), or each on its own (admin)."""
    lines = [
        BulkLine(
            sku=ln.sku,
            location_id=ln.location_id,
            delta=ln.delta,
            reason=ln.reason,
            note=ln.note,
            expected_on_hand=ln.expected_on_hand,
            has_idempotency_key=ln.idempotency_key is not None,
            state=ln.state,
        )
        for ln in input.lines
    ]
    services = info.context.services
    actor = info.context.actor
    errors: list[UserError] = []
    try:
        if input.atomic is not False:
            results = await run_in_transaction(
                services, lambda uow: bulk_adjust.bulk_adjust_atomic(uow, lines), actor=actor
            )
        else:
            outcomes = await bulk_adjust.bulk_adjust_each(
                lambda work: run_in_transaction(services, work, actor=actor), lines
            )
            results = [o.result for o in outcomes if o.result is not None]
            for outcome in outcomes:
                for e in outcome.errors:
                    errors.extend(user_errors(e, under_input=False))
    except DomainError as error:
        return BulkAdjustStockPayload(
            movements=[], user_errors=user_errors(error, under_input=False)
        )
    log.info(
        "stock.bulk_adjusted",
        atomic=input.atomic is not False,
        lines=len(lines),
        applied=len(results),
        refused_lines=len(lines) - len(results),
    )
    return BulkAdjustStockPayload(movements=await _movements(info, results), user_errors=errors)
