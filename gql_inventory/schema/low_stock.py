"""Shapes of the operator's low-stock and bulk-stock operations: lowStockVariants,
setLowStockThreshold and bulkAdjustStock (issue 10)."""

from __future__ import annotations

import strawberry

from gql_inventory.schema.catalog import VariantType
from gql_inventory.schema.connections import PageInfo
from gql_inventory.schema.inputs import AdjustStockInput
from gql_inventory.schema.orders import StockMovementType
from gql_inventory.schema.payloads import UserError


@strawberry.type(name="VariantEdge", description="A variant with its cursor.")
class VariantEdge:
    """A variant with its cursor."""

    cursor: str = strawberry.field(
        description="Opaque; pass as `lowStockVariants(after:)` to read on after this variant."
    )
    node: VariantType = strawberry.field(description="The variant.")


@strawberry.type(
    name="VariantConnection",
    description="A page of variants (lowStockVariants: fewest available first, then by id).",
)
class VariantConnection:
    """A page of variants and how many there are in all."""

    edges: list[VariantEdge] = strawberry.field(description="The variants of this page.")
    page_info: PageInfo = strawberry.field(description="Whether more pages follow.")
    total_count: int = strawberry.field(
        description="How many variants the whole list holds (every page, not just this one)."
    )


@strawberry.input(description="Admin: set the low-stock threshold of one variant.")
class SetLowStockThresholdInput:
    """Admin: a variant's new low-stock threshold."""

    sku: str = strawberry.field(description="The variant's SKU.")
    threshold: int = strawberry.field(
        description="Units, 0 to 1000000: the variant is low (isLowStock, lowStockVariants, "
        "lowStockAlerts) when available is at or under it. 0 turns low-stock alerts off for "
        "this variant: never low, never listed, no alert at all."
    )


@strawberry.type(description="The variant after setLowStockThreshold.")
class SetLowStockThresholdPayload:
    """The variant with its new threshold, or why not."""

    variant: VariantType | None = strawberry.field(
        description="The variant with its new threshold; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Why the operation was refused (INVALID_INPUT, UNKNOWN_SKU); empty on "
        "success. A refusal changes nothing."
    )


@strawberry.input(description="Admin: many stock adjustments in one call.")
class BulkAdjustStockInput:
    """Admin: adjustments, applied all or none (atomic) or each on its own."""

    lines: list[AdjustStockInput] = strawberry.field(
        description="1 to 500 adjustments, each as for adjustStock, at most one per SKU and "
        "location. Lines may not carry an idempotencyKey (INVALID_INPUT)."
    )
    atomic: bool | None = strawberry.field(
        default=True,
        description="true (default, also for null): one transaction, every line applies or "
        "none does, and every refused line is reported. false: each line in its own "
        "transaction; the lines that succeed are kept.",
    )


@strawberry.type(description="The movements written by bulkAdjustStock.")
class BulkAdjustStockPayload:
    """The movements written, in line order, and the refused lines."""

    movements: list[StockMovementType] = strawberry.field(
        description="One ledger row per line applied, in line order (atomic and refused: empty)."
    )
    user_errors: list[UserError] = strawberry.field(
        description='Refusals; each field path starts with ["lines", "<index>"] (["lines"] '
        "for the list itself). Atomic: any refusal means nothing changed. Not atomic: the "
        "refused lines changed nothing, the others were applied."
    )
